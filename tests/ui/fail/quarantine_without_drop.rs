use lakeflow::prelude::*;

#[table(quarantine = true)]
#[expect_or_warn("valid_amount", "amount > 0")]
#[expect_or_fail("valid_id", "id IS NOT NULL")]
fn silver() -> Plan {
    read("bronze")
}

fn main() {}
