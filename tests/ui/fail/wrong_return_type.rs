use lakeflow::prelude::*;

#[table]
fn silver() -> String {
    String::from("bronze")
}

#[materialized_view]
async fn gold() -> usize {
    0
}

fn main() {}
