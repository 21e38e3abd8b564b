//! How lakeflow speaks Spark SQL.
//!
//! People bring pipelines written for Spark and Databricks; the same SQL text must give the
//! same table. DataFusion's SQL differs from Spark's in its functions, literals, name
//! resolution, casts and joins, so this crate plans Spark SQL on DataFusion:
//!
//! - **Parsing** ([`dialect`]): sqlparser's Spark dialect (`"text"` is a string, backtick
//!   identifiers, `\` escapes, `div`, `==`, `:` JSON paths, `* EXCEPT (..)`).
//! - **Rewrites** of the parsed statement (never of SQL text): Spark's function forms, casts
//!   that give NULL unless ANSI is on, Spark's output names, case-insensitive names,
//!   `USING`/`NATURAL` joins, stars, path tables.
//! - **Functions** ([`functions`]): `datafusion-spark`'s, then the Spark functions it lacks
//!   (`year`, `date_format` with Spark's patterns, `get_json_object`, `from_json`, ...).
//! - **Conversions** on the planned statement: Spark's implicit casts in comparisons and
//!   arithmetic.
//!
//! [`SparkSql`] is the entry point: put it in a session's config
//! ([`SparkSql::configure`]) and register its functions ([`SparkSql::register_functions`]),
//! then [`SparkSql::parse`] and [`SparkQuery::plan`] a statement, or
//! [`SparkSql::plan_expr`] an expression. This crate knows nothing of pipelines, files or
//! Delta; the caller binds table names (and path tables) to plans.

#![warn(missing_docs)]

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::TableReference;
use datafusion::common::{Column, DFSchema, Result, plan_err};
use datafusion::datasource::provider_as_source;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::{FunctionRegistry, SessionState};
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::planner::{ParserOptions, SqlToRel};
use datafusion::sql::sqlparser::ast::{
    Expr as SqlExpr, ExprWithAlias, Ident, Query, Statement, VisitMut, VisitorMut,
};

mod coerce;
mod context;
pub mod dialect;
pub mod functions;
mod planner;
mod rewrite;

pub use rewrite::names::{Spellings, spark_name};

/// The Spark SQL dialect and its settings. A session whose config holds one (see
/// [`SparkSql::configure`]) plans lakeflow's SQL as Spark does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SparkSql {
    ansi: bool,
    /// `spark.sql.session.timeZone` (interned; empty: UTC).
    time_zone: &'static str,
}

/// `zone` as a `&'static str`: the few session time zones a process meets are kept once.
fn intern(zone: &str) -> &'static str {
    static ZONES: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let mut zones = ZONES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(known) = zones.iter().find(|z| **z == zone) {
        return known;
    }
    let leaked: &'static str = Box::leak(zone.to_string().into_boxed_str());
    zones.push(leaked);
    leaked
}

/// A file path queried as a table (``parquet.`/data/x` ``), to be bound by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTable {
    /// The generated table name that stands for it in the statement.
    pub name: String,
    /// The format, lower-case: `parquet`, `csv`, `json`, `text`, `delta`, `orc`, `binaryfile`.
    pub format: String,
    /// The path as written.
    pub path: String,
}

impl SparkSql {
    /// Spark SQL as Databricks runs it by default: not ANSI (a failed cast is NULL).
    pub fn new() -> Self {
        Self::default()
    }

    /// `spark.sql.ansi.enabled`: failed casts and division by zero are errors.
    pub fn with_ansi(mut self, ansi: bool) -> Self {
        self.ansi = ansi;
        self
    }

    /// Whether ANSI mode is on.
    pub fn ansi(&self) -> bool {
        self.ansi
    }

    /// `spark.sql.session.timeZone`: the zone timestamps are written in as text (an IANA
    /// name such as `America/Los_Angeles`, or an offset such as `+02:00`; default UTC).
    pub fn with_time_zone(mut self, zone: &str) -> Self {
        self.time_zone = intern(zone.trim());
        self
    }

    /// The session time zone; empty for UTC.
    pub fn time_zone(&self) -> &'static str {
        self.time_zone
    }

    /// `config` with this dialect in it.
    pub fn configure(self, config: SessionConfig) -> SessionConfig {
        config.with_extension(Arc::new(self))
    }

    /// The dialect a session's config holds, if any.
    pub fn of(config: &SessionConfig) -> Option<SparkSql> {
        config.get_extension::<SparkSql>().map(|s| *s)
    }

    /// Registers Spark's functions: `datafusion-spark`'s, then lakeflow's.
    pub fn register_functions(registry: &mut dyn FunctionRegistry) -> Result<()> {
        datafusion_spark::register_all(registry)?;
        functions::register(registry)
    }

    /// A session context with this dialect configured and its functions registered.
    pub fn context(self, config: SessionConfig) -> Result<SessionContext> {
        self.context_with_runtime(config, Arc::new(RuntimeEnv::default()))
    }

    /// [`SparkSql::context`] with a runtime of the caller's (object stores, memory pool).
    pub fn context_with_runtime(
        self,
        config: SessionConfig,
        runtime: Arc<RuntimeEnv>,
    ) -> Result<SessionContext> {
        let ctx = SessionContext::new_with_config_rt(self.configure(config), runtime);
        let mut state = ctx.state();
        Self::register_functions(&mut state)?;
        Ok(SessionContext::new_with_state(state))
    }

    /// Parses one statement and rewrites what does not depend on its tables.
    pub fn parse(&self, sql: &str) -> Result<SparkQuery> {
        let mut statement = dialect::parse_statement(sql)?;
        let mut paths = rewrite::paths::PathTables { found: Vec::new() };
        let _ = statement.visit(&mut paths);
        let _ = statement.visit(&mut rewrite::paths::SparkRange);
        let _ = statement.visit(&mut rewrite::names::OutputNames);
        let _ = statement.visit(&mut rewrite::windows::TimeWindows);
        if let ControlFlow::Break(e) =
            statement.visit(&mut rewrite::exprs::SparkExprs { ansi: self.ansi })
        {
            return Err(e);
        }
        let selects_metadata = selects_metadata(&mut statement);
        let mut spellings = Spellings::default();
        let _ = statement.visit(&mut rewrite::names::LowerCase {
            spellings: &mut spellings,
        });
        Ok(SparkQuery {
            statement,
            paths: paths.found,
            spellings,
            ansi: self.ansi,
            time_zone: self.time_zone,
            selects_metadata,
        })
    }

    /// Plans a SQL expression over `schema` (an expectation, a CDC condition): Spark's
    /// functions, casts and conversions, and column names matched case-insensitively.
    pub fn plan_expr(&self, sql: &str, schema: &DFSchema, state: &SessionState) -> Result<Expr> {
        let mut expr = dialect::parse_expr(sql)?;
        if let ControlFlow::Break(e) =
            expr.visit(&mut rewrite::exprs::SparkExprs { ansi: self.ansi })
        {
            return Err(e);
        }
        let mut names = HashMap::new();
        for field in schema.fields() {
            names
                .entry(field.name().to_lowercase())
                .or_insert_with(|| field.name().clone());
        }
        let _ = expr.visit(&mut SchemaNames { names: &names });
        let planned =
            state.create_logical_expr_from_sql_expr(ExprWithAlias { expr, alias: None }, schema)?;
        let plan = LogicalPlan::EmptyRelation(datafusion::logical_expr::EmptyRelation {
            produce_one_row: false,
            schema: Arc::new(schema.clone()),
        });
        // The projection is made without typing its expression: Spark's conversions come
        // first (`flag = "true"` on a boolean is a comparison DataFusion cannot type until the
        // string is cast), and the schema is computed again once they are applied.
        let placeholder = DFSchema::from_unqualified_fields(
            vec![datafusion::arrow::datatypes::Field::new(
                "__lakeflow_expr",
                DataType::Null,
                true,
            )]
            .into(),
            HashMap::new(),
        )?;
        let projected =
            LogicalPlan::Projection(datafusion::logical_expr::Projection::try_new_with_schema(
                vec![planned.alias("__lakeflow_expr")],
                Arc::new(plan),
                Arc::new(placeholder),
            )?);
        let projected = coerce::spark_coercions(projected, self.ansi, self.time_zone)?;
        match projected {
            LogicalPlan::Projection(p) => Ok(p.expr[0].clone().unalias()),
            _ => plan_err!("an expression did not plan as a projection"),
        }
    }
}

/// Column names matched case-insensitively against one schema.
struct SchemaNames<'a> {
    names: &'a HashMap<String, String>,
}

impl VisitorMut for SchemaNames<'_> {
    type Break = ();
    fn post_visit_expr(&mut self, expr: &mut SqlExpr) -> ControlFlow<()> {
        let fix = |ident: &mut Ident, names: &HashMap<String, String>| {
            if let Some(actual) = names.get(&ident.value.to_lowercase()) {
                *ident = Ident::with_quote('`', actual);
            }
        };
        match expr {
            SqlExpr::Identifier(ident) => fix(ident, self.names),
            SqlExpr::CompoundIdentifier(parts) => {
                if let Some(first) = parts.first_mut() {
                    fix(first, self.names);
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// A parsed Spark SQL statement, rewritten as far as it can be without its tables.
#[derive(Debug, Clone)]
pub struct SparkQuery {
    statement: Statement,
    paths: Vec<PathTable>,
    spellings: Spellings,
    ansi: bool,
    time_zone: &'static str,
    /// Whether the statement names the `_metadata` column itself (not only its fields).
    selects_metadata: bool,
}

impl SparkQuery {
    /// The tables the statement reads (CTEs excluded), lower-case, as DataFusion resolves
    /// them; path tables appear under their generated names.
    pub fn table_references(&self, state: &SessionState) -> Result<Vec<TableReference>> {
        state.resolve_table_references(&DFStatement::Statement(Box::new(self.statement.clone())))
    }

    /// The path tables of the statement.
    pub fn paths(&self) -> &[PathTable] {
        &self.paths
    }

    /// Plans the statement. `tables` binds each table name it reads (as given by
    /// [`SparkQuery::table_references`], matched case-insensitively) to a plan; the result
    /// reads those plans in place of the names. `state` gives the functions and settings.
    pub fn plan(
        mut self,
        state: &SessionState,
        tables: Vec<(String, LogicalPlan)>,
    ) -> Result<LogicalPlan> {
        let mut sources = HashMap::new();
        for (name, plan) in tables {
            let name = name.to_lowercase();
            for field in plan.schema().fields() {
                self.spellings.add(field.name());
            }
            let plan = lower_case_columns(plan, &name)?;
            // A view: the SQL planner reads the plan in its place (`LogicalPlanBuilder::scan`
            // inlines sources that have a logical plan).
            let view = datafusion::catalog::view::ViewTable::new(plan, None);
            sources.insert(name, provider_as_source(Arc::new(view)));
        }
        let mut options = state.config_options().as_ref().clone();
        // Spark: `1.5` is a decimal; NULLs sort first ascending, last descending.
        options.sql_parser.parse_float_as_decimal = true;
        options.sql_parser.default_null_ordering = "nulls_min".to_string();
        options.sql_parser.enable_ident_normalization = true;
        let parser_options = ParserOptions {
            parse_float_as_decimal: true,
            enable_ident_normalization: true,
            enable_options_value_normalization: false,
            support_varchar_with_length: options.sql_parser.support_varchar_with_length,
            map_string_types_to_utf8view: false,
            collect_spans: false,
            default_null_ordering: "nulls_min".into(),
        };
        let mut planners: Vec<Arc<dyn datafusion::logical_expr::planner::ExprPlanner>> =
            vec![Arc::new(planner::SparkFieldPlanner)];
        planners.extend(state.expr_planners().iter().cloned());
        let context = context::StatementContext {
            state,
            planners,
            tables: sources,
            options,
        };
        let planner = SqlToRel::new_with_options(&context, parser_options);
        // Parts of the statement are planned alone to learn their columns and types.
        let plan_part = |query: &Query| {
            planner.statement_to_plan(DFStatement::Statement(Box::new(Statement::Query(
                Box::new(query.clone()),
            ))))
        };
        let columns = |query: &Query| -> Result<Vec<String>> {
            Ok(plan_part(query)?
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect())
        };
        let type_of = |query: &Query| -> Result<DataType> {
            Ok(plan_part(query)?.schema().field(0).data_type().clone())
        };
        rewrite::structs::expand(&mut self.statement, &type_of);
        rewrite::joins::rewrite(&mut self.statement, &columns)?;
        let plan = planner.statement_to_plan(DFStatement::Statement(Box::new(self.statement)))?;
        let plan = coerce::spark_coercions(plan, self.ansi, self.time_zone)?;
        let plan = if self.selects_metadata {
            plan
        } else {
            hide_metadata(plan)?
        };
        restore_spellings(plan, &self.spellings)
    }
}

/// `plan` with its columns renamed to lower case (when any is not).
fn lower_case_columns(plan: LogicalPlan, table: &str) -> Result<LogicalPlan> {
    let fields = plan.schema().fields().clone();
    if fields.iter().all(|f| f.name().to_lowercase() == *f.name()) {
        return Ok(plan);
    }
    let mut seen = HashMap::new();
    let mut exprs = Vec::with_capacity(fields.len());
    for (qualifier, field) in plan.schema().iter() {
        let lower = field.name().to_lowercase();
        if let Some(other) = seen.insert(lower.clone(), field.name().clone()) {
            return plan_err!(
                "`{table}` has the columns `{other}` and `{}`, which Spark SQL cannot tell apart (names ignore case); rename one",
                field.name()
            );
        }
        let column = Expr::Column(Column::from((qualifier, field)));
        // Names already in lower case pass as they are: an alias to a column's own name
        // (`in._metadata AS _metadata`) confuses DataFusion's projection push-down.
        exprs.push(if lower == *field.name() {
            column
        } else {
            column.alias(lower)
        });
    }
    LogicalPlanBuilder::from(plan).project(exprs)?.build()
}

/// The output columns named with the spellings Spark would show, and typed as Spark
/// types them (Spark has no unsigned integers: `row_number()` is an INT).
fn restore_spellings(plan: LogicalPlan, spellings: &Spellings) -> Result<LogicalPlan> {
    let renames: Vec<Option<String>> = plan
        .schema()
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            rewrite::names::origin(&plan, i, spellings)
                .or_else(|| spellings.spelling(f.name()).map(str::to_string))
                .filter(|s| s != f.name())
        })
        .collect();
    let unsigned = |t: &DataType| {
        matches!(
            t,
            DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64
        )
    };
    if renames.iter().all(Option::is_none)
        && !plan
            .schema()
            .fields()
            .iter()
            .any(|f| unsigned(f.data_type()))
    {
        return Ok(plan);
    }
    let exprs: Vec<Expr> = plan
        .schema()
        .iter()
        .zip(renames)
        .map(|((qualifier, field), rename)| {
            let mut column = Expr::Column(Column::from((qualifier, field)));
            let name = rename.clone().unwrap_or_else(|| field.name().clone());
            if unsigned(field.data_type()) {
                column = datafusion::logical_expr::cast(column, DataType::Int32);
                return column.alias(name);
            }
            match rename {
                Some(name) => column.alias(name),
                None => column,
            }
        })
        .collect();
    LogicalPlanBuilder::from(plan).project(exprs)?.build()
}

/// The name of the file-metadata column of file sources (Spark's hidden `_metadata`).
const METADATA: &str = "_metadata";

/// Whether `statement` names `_metadata` itself rather than only its fields
/// (`_metadata.file_path`).
fn selects_metadata(statement: &mut Statement) -> bool {
    struct Finder(bool);
    impl VisitorMut for Finder {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &mut SqlExpr) -> ControlFlow<()> {
            let whole = match expr {
                SqlExpr::Identifier(i) => i.value.eq_ignore_ascii_case(METADATA),
                SqlExpr::CompoundIdentifier(parts) => parts
                    .last()
                    .is_some_and(|p| p.value.eq_ignore_ascii_case(METADATA)),
                _ => false,
            };
            if whole {
                self.0 = true;
                return ControlFlow::Break(());
            }
            // `_metadata.file_path` names a field: do not look into it.
            if matches!(expr, SqlExpr::CompoundIdentifier(_)) {
                return ControlFlow::Continue(());
            }
            ControlFlow::Continue(())
        }
    }
    let mut finder = Finder(false);
    let _ = statement.visit(&mut finder);
    finder.0
}

/// `plan` without a `_metadata` output column: Spark's `*` leaves it out.
fn hide_metadata(plan: LogicalPlan) -> Result<LogicalPlan> {
    if !plan.schema().fields().iter().any(|f| f.name() == METADATA) {
        return Ok(plan);
    }
    let exprs: Vec<Expr> = plan
        .schema()
        .iter()
        .filter(|(_, f)| f.name() != METADATA)
        .map(|(q, f)| Expr::Column(Column::from((q, f))))
        .collect();
    LogicalPlanBuilder::from(plan).project(exprs)?.build()
}
