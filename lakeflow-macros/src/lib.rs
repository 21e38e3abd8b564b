//! The attribute macros of lakeflow: `#[table]`, `#[materialized_view]`,
//! `#[streaming_table]` and `#[temporary_view]`. Use them through `lakeflow::prelude`.
//!
//! Each macro turns a query function — a free function with no parameters that returns
//! `Plan` — into a dataset definition: it emits the function untouched and one const record
//! (name, kind, options, source location, fn pointer) submitted with `inventory`, which
//! `Pipeline::from_registry()` collects at run time. The macros only parse (`attr.rs`),
//! check (`valid.rs`) and generate (`expand.rs`); all behaviour lives in `lakeflow-core`.
//! The generated code names only `::lakeflow::__private` items.
//!
//! This crate must not depend on `lakeflow-core`, DataFusion or anything beyond
//! `syn`/`quote`/`proc-macro2`: it runs in the compiler.

#![warn(missing_docs)]

use proc_macro::TokenStream;

use crate::attr::Kind;

mod attr;
mod expand;
mod valid;

/// Defines a dataset that lakeflow stores as a Delta table: a streaming table when its query
/// reads a stream (`read_stream`), a materialized view otherwise.
///
/// Place it on a function with no parameters that returns `Plan`; the function may be
/// `async`, `pub` or private, in any module. Read upstream datasets inside the body with
/// `read("name")`, `read_stream("name")` or `sql("...")`; that is how lakeflow finds the
/// dependencies.
///
/// # Options
///
/// All optional, in any order, separated by commas:
///
/// - `name = "silver_orders"`: the dataset name (default: the function's name). It matches
///   `[A-Za-z_][A-Za-z0-9_]*` and has at most 255 characters.
/// - `comment = "..."`: a description stored with the table.
/// - `partition_cols = ["order_date", "country"]`: the columns the table is partitioned by;
///   distinct, each a name like the dataset name.
/// - `table_properties = {"delta.appendOnly": "true"}`: properties of the Delta table,
///   string keys and values.
///
/// # Example
///
/// ```ignore
/// use lakeflow::prelude::*;
///
/// #[table(
///     comment = "Orders without test rows",
///     partition_cols = ["order_date"],
///     table_properties = {"delta.appendOnly": "true"},
/// )]
/// fn silver_orders() -> Plan {
///     Ok(read_stream("bronze_orders")?.filter(col("status").not_eq(lit("test")))?)
/// }
/// ```
#[proc_macro_attribute]
pub fn table(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::dataset(Kind::Table, args.into(), item.into()).into()
}

/// Defines a materialized view: a dataset recomputed from its inputs on each run (skipped
/// when no input changed) and stored as a Delta table.
///
/// Place it on a function with no parameters that returns `Plan`; the function may be
/// `async`, `pub` or private, in any module.
///
/// # Options
///
/// The same as [`macro@table`], all optional, in any order: `name = "..."`,
/// `comment = "..."`, `partition_cols = ["a", "b"]`,
/// `table_properties = {"key": "value"}`.
///
/// # Example
///
/// ```ignore
/// use lakeflow::prelude::*;
///
/// #[materialized_view(name = "gold_daily_revenue", comment = "Revenue per day and country")]
/// fn revenue() -> Plan {
///     sql("SELECT order_date, country, sum(amount) AS revenue FROM silver_orders GROUP BY 1, 2")
/// }
/// ```
#[proc_macro_attribute]
pub fn materialized_view(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::dataset(Kind::MaterializedView, args.into(), item.into()).into()
}

/// Defines a streaming table: a Delta table that each run appends only the input rows not
/// seen before to.
///
/// Place it on a function with no parameters that returns `Plan`; the function may be
/// `async`, `pub` or private, in any module.
///
/// # Options
///
/// The same as [`macro@table`], all optional, in any order: `name = "..."`,
/// `comment = "..."`, `partition_cols = ["a", "b"]`,
/// `table_properties = {"key": "value"}`.
///
/// # Example
///
/// ```ignore
/// use lakeflow::prelude::*;
///
/// #[streaming_table(partition_cols = ["order_date"])]
/// fn bronze_orders() -> Plan {
///     read_stream_files("data/landing/orders", csv())
/// }
/// ```
#[proc_macro_attribute]
pub fn streaming_table(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::dataset(Kind::StreamingTable, args.into(), item.into()).into()
}

/// Defines a temporary view: a named query that is never stored, but inlined into the
/// datasets that read it.
///
/// Place it on a function with no parameters that returns `Plan`; the function may be
/// `async`, `pub` or private, in any module.
///
/// # Options
///
/// All optional, in any order: `name = "..."` (default: the function's name) and
/// `comment = "..."`. The storage options of [`macro@table`] (`partition_cols`,
/// `table_properties`) are a compile error here, since nothing is stored.
///
/// # Example
///
/// ```ignore
/// use lakeflow::prelude::*;
///
/// #[temporary_view(comment = "Orders placed in Europe")]
/// fn eu_orders() -> Plan {
///     Ok(read("silver_orders")?.filter(col("region").eq(lit("EU")))?)
/// }
/// ```
#[proc_macro_attribute]
pub fn temporary_view(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::dataset(Kind::TemporaryView, args.into(), item.into()).into()
}
