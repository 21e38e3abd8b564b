use lakeflow::prelude::*;

#[table]
#[materialized_view]
fn silver() -> Plan {
    read("bronze")
}

fn main() {}
