//! The attribute macros of lakeflow: the dataset attributes `#[table]`,
//! `#[materialized_view]`, `#[streaming_table]` and `#[temporary_view]`, and the data-quality
//! expectations written below them: `#[expect]`, `#[expect_all]` and `#[expect_unique]`,
//! each also as `_or_drop` and `_or_fail`. Use them through `lakeflow::prelude`.
//!
//! Each dataset macro turns a query function — a free function with no parameters that
//! returns `Plan` — into a dataset definition: it emits the function and one const record
//! (name, kind, options, expectations, source location, fn pointer) submitted with
//! `inventory`, which `Pipeline::from_registry()` collects at run time. The expectation
//! attributes below it are read by the dataset macro, removed from the function and put in
//! the record; an expectation macro that expands by itself is misplaced and says so. The
//! macros only parse (`attr.rs`), check (`valid.rs`) and generate (`expand.rs`); all
//! behaviour lives in `lakeflow-core`. The generated code names only `::lakeflow::__private`
//! items.
//!
//! ```ignore
//! use lakeflow::prelude::*;
//!
//! #[table(quarantine = true)]                 // dropped rows go to `silver_orders_quarantine`
//! #[expect_or_drop("valid_customer", "customer_id IS NOT NULL")]
//! #[expect("positive_amount", "amount > 0")]
//! #[expect_unique_or_fail("pk", ["order_id"])]
//! fn silver_orders() -> Plan {
//!     read_stream("bronze_orders")
//! }
//! ```
//!
//! This crate must not depend on `lakeflow-core`, DataFusion or anything beyond
//! `syn`/`quote`/`proc-macro2` and `sqlparser` (to check expectation SQL at compile time):
//! it runs in the compiler.

#![warn(missing_docs)]

use proc_macro::TokenStream;

use crate::attr::{Action, ExpectKind, Form, Kind};

mod attr;
mod expand;
mod valid;

/// Defines an append flow: a query whose new rows are appended each run to a streaming table
/// that other flows may write too, with a checkpoint of its own (Spark's
/// `@dp.append_flow(target=...)`).
///
/// Place it on a function with no parameters that returns `Plan`; the function may be
/// `async`, `pub` or private, in any module. The query reads a stream (`read_stream`,
/// `read_stream_files`), unless the flow is `once`.
///
/// # Options
///
/// - `target = "all_orders"` (required): the streaming table the flow writes, made with
///   [`create_streaming_table!`](macro@create_streaming_table) or `#[streaming_table]`.
/// - `name = "..."`: the flow name (default: the function's name); flow and dataset names
///   share one namespace. The flow's checkpoint is kept under this name.
/// - `once = true`: run the query a single time, reading its inputs whole (a backfill); it
///   runs again only after a full refresh of the target.
/// - `comment = "..."`: a description.
///
/// Expectations below the attribute apply to this flow's rows, besides the target's own.
///
/// # Example
///
/// ```ignore
/// use lakeflow::prelude::*;
///
/// create_streaming_table!("all_orders", comment = "Orders from every region");
///
/// #[append_flow(target = "all_orders")]
/// fn eu_orders() -> Plan {
///     read_stream_files("landing/eu/", csv())
/// }
///
/// #[append_flow(target = "all_orders", once = true)]
/// fn orders_backfill() -> Plan {
///     read_parquet("archive/orders.parquet")
/// }
/// ```
#[proc_macro_attribute]
pub fn append_flow(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::dataset(Kind::AppendFlow, args.into(), item.into()).into()
}

/// Declares a streaming table without a query, for append flows to write (Spark's
/// `dp.create_streaming_table(name)`). Its schema is the union of its flows' columns; a
/// column two flows share must have one type.
///
/// Write it at module level: the name first, then any of `comment = "..."`,
/// `partition_cols = ["a"]`, `table_properties = {"k": "v"}`. Data-quality rules go on the
/// flows ([`macro@append_flow`]), or on the table through the builder
/// (`Dataset::create_streaming_table(..).expect(..)`).
///
/// ```ignore
/// use lakeflow::prelude::*;
///
/// create_streaming_table!("all_orders", partition_cols = ["region"]);
/// ```
#[proc_macro]
pub fn create_streaming_table(input: TokenStream) -> TokenStream {
    expand::create_streaming_table(input.into()).into()
}

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
/// - `quarantine = true`: keep the rows that drop rules (`#[expect_or_drop]`,
///   `#[expect_all_or_drop]`, `#[expect_unique_or_drop]`) remove, in a companion table named
///   `<dataset>_quarantine`; `quarantine = "orders_rejected"` names the table (a name like
///   the dataset name); `quarantine = false` keeps none, as when left out. It needs at least
///   one drop rule.
///
/// # Expectations
///
/// Data-quality rules go below the attribute, in any number: [`macro@expect`],
/// [`macro@expect_all`] and [`macro@expect_unique`], each also as `_or_drop` and `_or_fail`.
/// Their names are distinct within the dataset.
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
/// `table_properties = {"key": "value"}`, `quarantine = true` (or a table name).
///
/// Expectations go below the attribute, as on [`macro@table`].
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
/// `table_properties = {"key": "value"}`, `quarantine = true` (or a table name).
///
/// Expectations go below the attribute, as on [`macro@table`].
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
/// `table_properties`, `quarantine`) are a compile error here, since nothing is stored.
///
/// [`macro@expect`] and [`macro@expect_all`] rules may go below the attribute; they are
/// checked where the view is read. [`macro@expect_unique`] may not: put it on the table that
/// reads the view.
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

/// Checks each row of the dataset against a SQL condition and records how many rows break
/// it; the rows are kept.
///
/// Written `#[lakeflow::expect("name", "sql expression")]` below a dataset attribute
/// (`#[table]`, `#[materialized_view]`, `#[streaming_table]` or `#[temporary_view]`), which
/// reads it — as Spark's `@dp.expect`. The name matches `[A-Za-z_][A-Za-z0-9_]*` and is
/// distinct among the dataset's expectations; the expression is one SQL expression, checked
/// at compile time, true for a good row.
///
/// The bare name `expect` is Rust's own lint attribute (`#[expect(dead_code)]`), which the
/// compiler checks before any macro runs, so write the path `lakeflow::expect`, or
/// [`macro@expect_or_warn`], which the prelude exports.
///
/// # Example
///
/// ```ignore
/// use lakeflow::prelude::*;
///
/// #[table]
/// #[lakeflow::expect("positive_amount", "amount > 0")]
/// fn silver_orders() -> Plan {
///     read_stream("bronze_orders")
/// }
/// ```
#[proc_macro_attribute]
pub fn expect(_args: TokenStream, item: TokenStream) -> TokenStream {
    misplaced(Form::One, Action::Warn, item)
}

/// Keeps the rows that break a SQL condition and counts them: [`macro@expect`] under a
/// name that does not collide with Rust's `#[expect]` lint attribute.
///
/// # Example
///
/// ```ignore
/// use lakeflow::prelude::*;
///
/// #[table]
/// #[expect_or_warn("positive_amount", "amount > 0")]
/// fn silver_orders() -> Plan {
///     read_stream("bronze_orders")
/// }
/// ```
#[proc_macro_attribute]
pub fn expect_or_warn(_args: TokenStream, item: TokenStream) -> TokenStream {
    misplaced(Form::One, Action::Warn, item)
}

/// Leaves the rows that break a SQL condition out of the dataset, and counts them.
///
/// Written `#[expect_or_drop("name", "sql expression")]` below a dataset attribute, like
/// [`macro@expect`]. With `quarantine = true` on the dataset attribute the dropped rows are
/// kept in a companion table.
///
/// # Example
///
/// ```ignore
/// use lakeflow::prelude::*;
///
/// #[table(quarantine = true)]
/// #[expect_or_drop("valid_customer", "customer_id IS NOT NULL")]
/// fn silver_orders() -> Plan {
///     read_stream("bronze_orders")
/// }
/// ```
#[proc_macro_attribute]
pub fn expect_or_drop(_args: TokenStream, item: TokenStream) -> TokenStream {
    misplaced(Form::One, Action::Drop, item)
}

/// Stops the flow, writing nothing, when a row breaks a SQL condition.
///
/// Written `#[expect_or_fail("name", "sql expression")]` below a dataset attribute, like
/// [`macro@expect`].
///
/// # Example
///
/// ```ignore
/// use lakeflow::prelude::*;
///
/// #[materialized_view]
/// #[expect_or_fail("known_currency", "currency IN ('EUR', 'USD')")]
/// fn gold_revenue() -> Plan {
///     sql("SELECT currency, sum(amount) AS revenue FROM silver_orders GROUP BY currency")
/// }
/// ```
#[proc_macro_attribute]
pub fn expect_or_fail(_args: TokenStream, item: TokenStream) -> TokenStream {
    misplaced(Form::One, Action::Fail, item)
}

/// Several [`macro@expect`] rules in one attribute: each row is checked against each
/// condition, and kept.
///
/// Written `#[expect_all({"name": "sql expression", ...})]` below a dataset attribute: string
/// names and expressions in braces, as in `table_properties`. The rules keep their written
/// order.
///
/// # Example
///
/// ```ignore
/// use lakeflow::prelude::*;
///
/// #[table]
/// #[expect_all({"positive_amount": "amount > 0", "has_date": "order_date IS NOT NULL"})]
/// fn silver_orders() -> Plan {
///     read_stream("bronze_orders")
/// }
/// ```
#[proc_macro_attribute]
pub fn expect_all(_args: TokenStream, item: TokenStream) -> TokenStream {
    misplaced(Form::All, Action::Warn, item)
}

/// Several [`macro@expect_or_drop`] rules in one attribute: a row that breaks any of them is
/// left out.
///
/// Written `#[expect_all_or_drop({"name": "sql expression", ...})]` below a dataset
/// attribute, like [`macro@expect_all`].
///
/// # Example
///
/// ```ignore
/// use lakeflow::prelude::*;
///
/// #[table]
/// #[expect_all_or_drop({"has_id": "order_id IS NOT NULL", "positive_amount": "amount > 0"})]
/// fn silver_orders() -> Plan {
///     read_stream("bronze_orders")
/// }
/// ```
#[proc_macro_attribute]
pub fn expect_all_or_drop(_args: TokenStream, item: TokenStream) -> TokenStream {
    misplaced(Form::All, Action::Drop, item)
}

/// Several [`macro@expect_or_fail`] rules in one attribute: a row that breaks any of them
/// stops the flow.
///
/// Written `#[expect_all_or_fail({"name": "sql expression", ...})]` below a dataset
/// attribute, like [`macro@expect_all`].
///
/// # Example
///
/// ```ignore
/// use lakeflow::prelude::*;
///
/// #[materialized_view]
/// #[expect_all_or_fail({"has_country": "country IS NOT NULL", "has_day": "day IS NOT NULL"})]
/// fn gold_revenue() -> Plan {
///     sql("SELECT day, country, sum(amount) AS revenue FROM silver_orders GROUP BY 1, 2")
/// }
/// ```
#[proc_macro_attribute]
pub fn expect_all_or_fail(_args: TokenStream, item: TokenStream) -> TokenStream {
    misplaced(Form::All, Action::Fail, item)
}

/// A key rule: no two rows of the dataset share the values of these columns. Rows that do
/// are counted, and kept.
///
/// Written `#[expect_unique("name", ["column", ...])]` below `#[table]`,
/// `#[materialized_view]` or `#[streaming_table]` (not `#[temporary_view]`: a view is never
/// stored). At least one column, each named like a dataset, each once. The name shares the
/// namespace of the dataset's other expectations.
///
/// # Example
///
/// ```ignore
/// use lakeflow::prelude::*;
///
/// #[table]
/// #[expect_unique("pk", ["order_id", "line"])]
/// fn order_lines() -> Plan {
///     read("bronze_order_lines")
/// }
/// ```
#[proc_macro_attribute]
pub fn expect_unique(_args: TokenStream, item: TokenStream) -> TokenStream {
    misplaced(Form::Unique, Action::Warn, item)
}

/// A key rule whose duplicate rows are left out of the dataset.
///
/// Written `#[expect_unique_or_drop("name", ["column", ...])]` below a stored dataset's
/// attribute, like [`macro@expect_unique`]. With `quarantine = true` the dropped rows are
/// kept in a companion table.
///
/// # Example
///
/// ```ignore
/// use lakeflow::prelude::*;
///
/// #[streaming_table(quarantine = "orders_duplicates")]
/// #[expect_unique_or_drop("pk", ["order_id"])]
/// fn bronze_orders() -> Plan {
///     read_stream_files("data/landing/orders", csv())
/// }
/// ```
#[proc_macro_attribute]
pub fn expect_unique_or_drop(_args: TokenStream, item: TokenStream) -> TokenStream {
    misplaced(Form::Unique, Action::Drop, item)
}

/// A key rule that stops the flow when two rows share the values of these columns.
///
/// Written `#[expect_unique_or_fail("name", ["column", ...])]` below a stored dataset's
/// attribute, like [`macro@expect_unique`].
///
/// # Example
///
/// ```ignore
/// use lakeflow::prelude::*;
///
/// #[materialized_view]
/// #[expect_unique_or_fail("one_row_per_customer", ["customer_id"])]
/// fn customers() -> Plan {
///     read_parquet("data/customers.parquet")
/// }
/// ```
#[proc_macro_attribute]
pub fn expect_unique_or_fail(_args: TokenStream, item: TokenStream) -> TokenStream {
    misplaced(Form::Unique, Action::Fail, item)
}

/// An expectation attribute only expands by itself when no dataset attribute above it read
/// it first: report where it belongs.
fn misplaced(form: Form, action: Action, item: TokenStream) -> TokenStream {
    expand::misplaced(ExpectKind::new(form, action), item.into()).into()
}
