//! The integration tests of the `lakeflow` package, in one binary so linking happens once.

mod delta;
mod errors;
mod execution;
mod registry;
mod sources;
mod support;
mod testing;
mod ui;
