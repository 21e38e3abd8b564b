use lakeflow::prelude::*;

#[expect_or_drop("valid_id", "id IS NOT NULL")]
#[table]
fn silver() -> Plan {
    read("bronze")
}

#[lakeflow::expect_all({"positive_amount": "amount > 0"})]
#[materialized_view(name = "gold")]
fn gold_revenue() -> Plan {
    read("silver")
}

#[expect_or_warn("positive_amount", "amount > 0")]
#[streaming_table]
fn bronze() -> Plan {
    read("landing")
}

fn main() {}
