use lakeflow::prelude::*;

#[table]
#[expect_or_warn("valid_amount", "amount > 0")]
#[expect_all_or_drop({"valid_id": "id IS NOT NULL", "valid_amount": "amount < 1000000"})]
#[expect_unique_or_fail("valid_id", ["id"])]
fn silver() -> Plan {
    read("bronze")
}

fn main() {}
