use lakeflow::prelude::*;

#[table]
#[lakeflow::expect("valid_amount", "amount >")]
#[expect_all_or_drop({
    "known_status": "status IN ('new', 'paid'",
    "valid_id": "id IS NOT NULL id",
})]
#[expect_or_fail("has_date", "")]
fn silver() -> Plan {
    read("bronze")
}

fn main() {}
