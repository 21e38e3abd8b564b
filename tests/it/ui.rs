//! Compile-time errors of the attribute macros: every misuse in `tests/ui/fail` with its
//! expected message beside it. Regenerate the `.stderr` files with
//! `TRYBUILD=overwrite cargo test --test it ui`.
//!
//! The accepted forms (`tests/ui/pass/all_forms.rs`) compile as a module of this test binary
//! instead of through trybuild: a trybuild pass case would build the whole dependency stack a
//! second time, where compile-fail cases only need `cargo check`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
}
