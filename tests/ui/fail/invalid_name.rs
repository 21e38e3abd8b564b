use lakeflow::prelude::*;

#[table(name = "silver-orders")]
fn silver() -> Plan {
    read("bronze")
}

#[table(name = "")]
fn gold() -> Plan {
    read("silver")
}

fn main() {}
