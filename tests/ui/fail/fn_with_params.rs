use lakeflow::prelude::*;

#[table]
fn silver(_upstream: Plan, _limit: usize) -> Plan {
    read("bronze")
}

fn main() {}
