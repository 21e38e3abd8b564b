//! SQL over the event log, as Databricks users query theirs: the log is the table
//! `event_log`, also named `event_log_raw` (the temporary view Databricks' documentation
//! creates over `event_log(..)`), and the statements before the last may be
//! `CREATE [OR REPLACE] TEMP VIEW name AS ..` (the documentation's `latest_update`), visible
//! to the statements after them. So the monitoring queries of Databricks' event log pages
//! run as they are written.
//!
//! Statements are planned in the session's dialect: Spark SQL through `lakeflow-sql` (the
//! `:` JSON paths, `from_json`, `explode`), or DataFusion's. This module reads the log; it
//! never writes it, and splitting a text into statements is the caller's.

use datafusion::dataframe::DataFrame;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{DdlStatement, LogicalPlan};
use datafusion::prelude::SessionContext;
use lakeflow_sql::SparkSql;

use crate::error::{Error, Result};

/// The names the event log goes by in a query.
pub const EVENT_LOG_NAMES: [&str; 2] = ["event_log", "event_log_raw"];

/// Plans `statements` over `log` in `session`'s dialect and returns the last one's rows.
/// Every statement before the last must create a temporary view.
pub async fn query(
    session: &SessionContext,
    log: LogicalPlan,
    statements: &[&str],
) -> Result<DataFrame> {
    let Some((last, views)) = statements.split_last() else {
        return Err(plan_error(
            "the event log query is empty; write a SELECT over `event_log`".into(),
        ));
    };
    match SparkSql::of(session.state().config()) {
        Some(spark) => {
            let mut bound: Vec<(String, LogicalPlan)> = EVENT_LOG_NAMES
                .iter()
                .map(|name| (name.to_string(), log.clone()))
                .collect();
            for statement in views {
                let plan = spark_plan(spark, session, statement, &bound)?;
                let (name, input) = created_view(plan, statement)?;
                bound.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
                bound.push((name, input));
            }
            let plan = spark_plan(spark, session, last, &bound)?;
            Ok(DataFrame::new(session.state(), plan))
        }
        None => {
            for name in EVENT_LOG_NAMES {
                session.register_table(
                    name,
                    DataFrame::new(session.state(), log.clone()).into_view(),
                )?;
            }
            for statement in views {
                let plan = session.state().create_logical_plan(statement).await?;
                created_view(plan.clone(), statement)?;
                // Registers the view in this session.
                session.execute_logical_plan(plan).await?;
            }
            Ok(session.sql(last).await?)
        }
    }
}

/// One statement planned as Spark SQL, its table names bound to the log and the views.
fn spark_plan(
    spark: SparkSql,
    session: &SessionContext,
    statement: &str,
    bound: &[(String, LogicalPlan)],
) -> Result<LogicalPlan> {
    let state = session.state();
    let parsed = spark.parse(statement)?;
    let mut tables = Vec::new();
    for reference in parsed.table_references(&state)? {
        let name = reference.table();
        if let Some((_, plan)) = bound.iter().find(|(n, _)| n.eq_ignore_ascii_case(name))
            && !tables
                .iter()
                .any(|(n, _): &(String, LogicalPlan)| n.eq_ignore_ascii_case(name))
        {
            tables.push((name.to_string(), plan.clone()));
        }
    }
    Ok(parsed.plan(&state, tables)?)
}

/// The name and query of a `CREATE TEMP VIEW` statement's plan; any other statement before
/// the last is an error.
fn created_view(plan: LogicalPlan, statement: &str) -> Result<(String, LogicalPlan)> {
    match plan {
        LogicalPlan::Ddl(DdlStatement::CreateView(view)) => Ok((
            view.name.table().to_lowercase(),
            view.input.as_ref().clone(),
        )),
        _ => Err(plan_error(format!(
            "only `CREATE TEMP VIEW .. AS ..` statements may come before the query of an event log query; found `{}`",
            statement.trim()
        ))),
    }
}

fn plan_error(message: String) -> Error {
    Error::DataFusion(DataFusionError::Plan(message))
}
