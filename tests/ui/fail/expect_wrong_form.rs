use lakeflow::prelude::*;

#[table]
#[expect_or_warn("only_name")]
#[lakeflow::expect(valid_amount, "amount > 0")]
#[expect_all_or_drop({"valid_id" = "id IS NOT NULL"})]
#[expect_unique("pk", "order_id")]
fn silver() -> Plan {
    read("bronze")
}

fn main() {}
