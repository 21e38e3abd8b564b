//! Compile-time errors of the attribute macros: every misuse in `tests/ui/fail` with its
//! expected message beside it, every accepted form in `tests/ui/pass`.
//! Regenerate the `.stderr` files with `TRYBUILD=overwrite cargo test --test it ui`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
