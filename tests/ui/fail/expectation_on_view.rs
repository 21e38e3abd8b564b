use lakeflow::prelude::*;

#[temporary_view]
#[expect_or_warn("valid_amount", "amount > 0")]
#[expect_unique_or_drop("pk", ["order_id"])]
fn eu_orders() -> Plan {
    read("silver")
}

fn main() {}
