//! `s.*` where `s` is a struct column (or a path into one, `json.payload.after.*`), as Spark
//! expands it: one column per field, named after the field. The fields are learned by planning
//! the struct expression over the select's own `FROM`; a qualifier that names a relation of
//! the `FROM` is a plain `t.*` and stays.

use std::ops::ControlFlow;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::sql::sqlparser::ast::{
    Expr, Ident, ObjectNamePart, Query, Select, SelectItem, SelectItemQualifiedWildcardKind,
    SetExpr, Statement, TableFactor, VisitMut, VisitorMut,
};

use crate::dialect::parse_statement;

/// Plans a query and gives the type of its one output column.
pub(crate) type TypeOf<'a> = dyn Fn(&Query) -> Result<DataType> + 'a;

/// Expands the struct stars of every select of `statement`.
pub(crate) fn expand(statement: &mut Statement, type_of: &TypeOf) {
    let _ = statement.visit(&mut Expand { type_of });
}

struct Expand<'a, 'b> {
    type_of: &'a TypeOf<'b>,
}

impl VisitorMut for Expand<'_, '_> {
    type Break = ();

    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
        let relations = relation_names(select);
        let mut items = Vec::with_capacity(select.projection.len());
        for item in std::mem::take(&mut select.projection) {
            let SelectItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::ObjectName(name), _) =
                &item
            else {
                items.push(item);
                continue;
            };
            let parts: Vec<Ident> = name
                .0
                .iter()
                .filter_map(ObjectNamePart::as_ident)
                .cloned()
                .collect();
            let is_relation = parts.len() == 1
                && relations
                    .iter()
                    .any(|r| r.eq_ignore_ascii_case(&parts[0].value));
            // Only a qualifier that is not a relation is planned, to learn its fields.
            let fields = if is_relation {
                None
            } else {
                self.fields(select, &parts)
            };
            match fields {
                Some(fields) => items.extend(fields.into_iter().map(|field| {
                    let mut path = parts.clone();
                    path.push(Ident::with_quote('`', field.clone()));
                    SelectItem::ExprWithAlias {
                        expr: Expr::CompoundIdentifier(path),
                        alias: Ident::with_quote('`', field),
                    }
                })),
                None => items.push(item),
            }
        }
        select.projection = items;
        ControlFlow::Continue(())
    }
}

impl Expand<'_, '_> {
    /// The field names of the struct at `path` over `select`'s `FROM`, if it is a struct.
    fn fields(&self, select: &Select, path: &[Ident]) -> Option<Vec<String>> {
        let Ok(Statement::Query(mut query)) = parse_statement("SELECT 1 AS __lakeflow_struct")
        else {
            return None;
        };
        let SetExpr::Select(probe) = query.body.as_mut() else {
            return None;
        };
        if let Some(SelectItem::ExprWithAlias { expr, .. }) = probe.projection.get_mut(0) {
            *expr = match path {
                [one] => Expr::Identifier(one.clone()),
                _ => Expr::CompoundIdentifier(path.to_vec()),
            };
        }
        probe.from = select.from.clone();
        match (self.type_of)(&query) {
            Ok(DataType::Struct(fields)) => Some(fields.iter().map(|f| f.name().clone()).collect()),
            _ => None,
        }
    }
}

/// The names a select's `FROM` gives its relations: aliases, else the tables' last names.
fn relation_names(select: &Select) -> Vec<String> {
    let mut names = Vec::new();
    let mut add = |factor: &TableFactor| match factor {
        TableFactor::Table {
            alias: Some(alias), ..
        }
        | TableFactor::Derived {
            alias: Some(alias), ..
        }
        | TableFactor::TableFunction {
            alias: Some(alias), ..
        }
        | TableFactor::Function {
            alias: Some(alias), ..
        }
        | TableFactor::UNNEST {
            alias: Some(alias), ..
        }
        | TableFactor::NestedJoin {
            alias: Some(alias), ..
        } => names.push(alias.name.value.clone()),
        TableFactor::Table { name, .. } => {
            if let Some(last) = name.0.last().and_then(ObjectNamePart::as_ident) {
                names.push(last.value.clone());
            }
        }
        _ => {}
    };
    for from in &select.from {
        add(&from.relation);
        for join in &from.joins {
            add(&join.relation);
        }
    }
    names
}
