use lakeflow::prelude::*;

#[table]
struct Silver;

fn main() {}
