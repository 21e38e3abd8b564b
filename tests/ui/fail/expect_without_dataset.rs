use lakeflow::prelude::*;

#[expect_all({"valid_a": "a > 0", "valid_b": "b IS NOT NULL"})]
fn silver() -> Plan {
    read("bronze")
}

#[lakeflow::expect_unique_or_fail("pk", ["order_id"])]
fn gold() -> Plan {
    read("silver")
}

fn main() {}
