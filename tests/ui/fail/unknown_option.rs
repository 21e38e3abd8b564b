use lakeflow::prelude::*;

#[table(partition_by = ["order_date"])]
fn silver() -> Plan {
    read("bronze")
}

fn main() {}
