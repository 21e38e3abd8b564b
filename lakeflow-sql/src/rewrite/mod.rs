//! The rewrites of a parsed Spark SQL statement, in the order they run: path tables, Spark's
//! output names, the names of a time window (`window.start`), Spark's expressions, lower-cased
//! names, then struct stars (`s.*`), joins and stars (which plan parts of the statement to
//! learn their columns and types).

pub(crate) mod exprs;
pub(crate) mod joins;
pub(crate) mod names;
pub(crate) mod paths;
pub(crate) mod structs;
pub(crate) mod windows;
