use lakeflow::prelude::*;

struct Pipeline;

impl Pipeline {
    #[table]
    fn silver(&self) -> Plan {
        read("bronze")
    }
}

fn main() {}
