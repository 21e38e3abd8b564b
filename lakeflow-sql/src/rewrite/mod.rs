//! The rewrites of a parsed Spark SQL statement, in the order they run: path tables, Spark's
//! output names, the names of a time window (`window.start`), Spark's expressions, lower-cased
//! names, then joins and stars (which plan parts of the statement to learn their columns).

pub(crate) mod exprs;
pub(crate) mod joins;
pub(crate) mod names;
pub(crate) mod paths;
pub(crate) mod windows;
