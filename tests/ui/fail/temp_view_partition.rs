use lakeflow::prelude::*;

#[temporary_view(partition_cols = ["order_date"], table_properties = {"k": "v"})]
fn eu_orders() -> Plan {
    read("silver")
}

fn main() {}
