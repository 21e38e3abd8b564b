use lakeflow::prelude::*;

#[table]
fn silver() {
    let _ = read("bronze");
}

fn main() {}
