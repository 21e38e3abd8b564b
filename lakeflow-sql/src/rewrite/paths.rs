//! Files queried by path, as Spark writes it: ``SELECT * FROM parquet.`/data/orders` ``
//! (also `csv`, `json`, `text`, `delta`, `orc`). Each becomes a generated table name the
//! caller binds to a reader of those files ([`crate::PathTable`]).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Ident, ObjectName, ObjectNamePart, Statement, TableAlias, TableFactor, VisitorMut,
};

use crate::PathTable;

/// The formats Spark accepts as a path table's qualifier.
const FORMATS: [&str; 7] = [
    "parquet",
    "csv",
    "json",
    "text",
    "delta",
    "orc",
    "binaryfile",
];

/// Replaces path tables by generated names, collecting them.
pub(crate) struct PathTables {
    pub found: Vec<PathTable>,
}

impl VisitorMut for PathTables {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        let TableFactor::Table { name, .. } = factor else {
            return ControlFlow::Continue(());
        };
        let parts: Vec<&Ident> = name.0.iter().filter_map(ObjectNamePart::as_ident).collect();
        if let [format, path] = parts.as_slice()
            && path.quote_style == Some('`')
            && format.quote_style.is_none()
            && FORMATS.contains(&format.value.to_ascii_lowercase().as_str())
        {
            let generated = format!("__lakeflow_path_{}", self.found.len());
            self.found.push(PathTable {
                name: generated.clone(),
                format: format.value.to_ascii_lowercase(),
                path: path.value.clone(),
            });
            *name = ObjectName(vec![ObjectNamePart::Identifier(Ident::new(generated))]);
        }
        ControlFlow::Continue(())
    }
}

/// Spark's `range(..)` table function names its column `id`; DataFusion's names it `value`.
/// `FROM range(3) [AS r]` becomes `FROM (SELECT value AS id FROM range(3)) AS r` (alias
/// `range` when none is given), so that `SELECT id FROM range(3)` plans as in Spark. A fourth
/// argument (Spark's number of partitions) is dropped.
pub(crate) struct SparkRange;

impl VisitorMut for SparkRange {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        let TableFactor::Table {
            name,
            alias,
            args: Some(args),
            ..
        } = factor
        else {
            return ControlFlow::Continue(());
        };
        let is_range = matches!(name.0.as_slice(), [part] if part
            .as_ident()
            .is_some_and(|i| i.quote_style.is_none() && i.value.eq_ignore_ascii_case("range")));
        if !is_range || args.args.is_empty() {
            return ControlFlow::Continue(());
        }
        let arguments: Vec<String> = args.args.iter().take(3).map(|a| a.to_string()).collect();
        // The inner name is quoted, so this visitor leaves the inner call alone.
        let sql = format!("SELECT value AS id FROM `range`({})", arguments.join(", "));
        let Ok(Statement::Query(subquery)) = crate::dialect::parse_statement(&sql) else {
            return ControlFlow::Continue(());
        };
        let alias = alias.take().unwrap_or(TableAlias {
            explicit: true,
            name: Ident::new("range"),
            columns: Vec::new(),
            at: None,
        });
        *factor = TableFactor::Derived {
            lateral: false,
            subquery,
            alias: Some(alias),
            sample: None,
        };
        ControlFlow::Continue(())
    }
}
