//! Files queried by path, as Spark writes it: ``SELECT * FROM parquet.`/data/orders` ``
//! (also `csv`, `json`, `text`, `delta`, `orc`). Each becomes a generated table name the
//! caller binds to a reader of those files ([`crate::PathTable`]).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{Ident, ObjectName, ObjectNamePart, TableFactor, VisitorMut};

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
