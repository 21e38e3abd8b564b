use lakeflow::prelude::*;

#[table(partition_cols = ["order_date", "", "order date", "order_date"])]
fn silver() -> Plan {
    read("bronze")
}

fn main() {}
