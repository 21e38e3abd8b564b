use lakeflow::prelude::*;

#[table(name = "silver", comment = "Orders", name = "silver_orders")]
fn silver() -> Plan {
    read("bronze")
}

fn main() {}
