use lakeflow::prelude::*;

#[table(name = 5)]
fn silver() -> Plan {
    read("bronze")
}

#[materialized_view(partition_cols = "order_date")]
fn gold() -> Plan {
    read("silver")
}

#[streaming_table(table_properties = {"delta.appendOnly" = "true"})]
fn bronze() -> Plan {
    read("landing")
}

fn main() {}
