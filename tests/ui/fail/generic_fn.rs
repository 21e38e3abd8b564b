use lakeflow::prelude::*;

#[materialized_view]
fn silver<T: Into<String>>() -> Plan {
    read("bronze")
}

fn main() {}
