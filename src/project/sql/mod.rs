//! SQL pipeline files: the Spark Declarative Pipelines statements (`CREATE MATERIALIZED VIEW`,
//! `CREATE STREAMING TABLE`, `CREATE [TEMPORARY] VIEW`, `CREATE FLOW .. AS INSERT INTO`, `SET`,
//! `USE`), Databricks' `CONSTRAINT .. EXPECT` rules and the legacy Delta Live Tables forms
//! (`CREATE [OR REFRESH] [STREAMING] LIVE TABLE`, `LIVE.x`, `STREAM(LIVE.x)`, `cloud_files`),
//! and AUTO CDC flows (`CREATE FLOW .. AS AUTO CDC INTO`, `APPLY CHANGES INTO`,
//! `CREATE STREAMING TABLE .. FLOW AUTO CDC`).
//!
//! A file is split into statements, `${key}` is substituted from the configuration, and each
//! statement is read from sqlparser's tokens, keeping every token's position in the file, so
//! that errors name `file:line:column`. The statement head (kind, name, options) is read
//! here; the query after `AS` is handed to DataFusion as SQL text, with what SQL cannot say
//! by itself — `STREAM(x)`, `read_files(..)` — replaced by names bound to lakeflow readers
//! ([`SqlQuery`]). This module makes definitions only; it never plans or runs a query.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

mod cdc;
mod query;
mod statement;
mod text;

use super::{Location, ProjectError};
use crate::{ExpectAction, FileFormat};
use statement::StatementParser;
use text::{LineIndex, Substituted, Tok, split_statements};

/// What a SQL statement defines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlKind {
    /// `CREATE MATERIALIZED VIEW`, or the legacy `CREATE LIVE TABLE`.
    MaterializedView,
    /// `CREATE STREAMING TABLE`, or the legacy `CREATE STREAMING LIVE TABLE`.
    StreamingTable,
    /// `CREATE TEMPORARY VIEW`, `CREATE VIEW` or the legacy `CREATE [TEMPORARY] LIVE VIEW`:
    /// never stored, inlined into its readers.
    TemporaryView,
    /// `CREATE FLOW name AS INSERT INTO [ONCE] target ..`: an append flow.
    Flow {
        /// The streaming table it appends to.
        target: String,
        /// `INSERT INTO ONCE`: a backfill run a single time.
        once: bool,
    },
    /// `CREATE FLOW name AS AUTO CDC INTO target ..`, the legacy `APPLY CHANGES INTO target ..`
    /// (named `<target>_cdc`), or the flow of `CREATE STREAMING TABLE target FLOW AUTO CDC ..`:
    /// a change feed applied to a streaming table.
    AutoCdc(Box<SqlAutoCdc>),
    /// `CREATE [TEMPORARY] FUNCTION name(p TYPE, ..) RETURNS TYPE RETURN expr`: a SQL function
    /// the pipeline's queries can call (not a dataset).
    Function(Box<SqlFunctionDef>),
}

/// A SQL function's definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlFunctionDef {
    /// Its parameters, in order.
    pub params: Vec<(String, datafusion::arrow::datatypes::DataType)>,
    /// `RETURNS`: its result's type.
    pub returns: datafusion::arrow::datatypes::DataType,
    /// `RETURN expr`: its body, a Spark SQL expression over the parameters.
    pub body: String,
}

/// The clauses of an AUTO CDC flow; [`SqlAutoCdc::auto_cdc`] makes the builder's flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlAutoCdc {
    /// `INTO target`: a streaming table without a query.
    pub target: String,
    /// `FROM STREAM(source)`: the dataset whose new rows are the changes.
    pub source: String,
    /// `KEYS (..)`.
    pub keys: Vec<String>,
    /// `IGNORE NULL UPDATES`.
    pub ignore_null_updates: bool,
    /// `APPLY AS DELETE WHEN condition`.
    pub apply_as_deletes: Option<String>,
    /// `APPLY AS TRUNCATE WHEN condition`.
    pub apply_as_truncates: Option<String>,
    /// `SEQUENCE BY expr`.
    pub sequence_by: String,
    /// `COLUMNS (..)` or `COLUMNS * EXCEPT (..)`.
    pub columns: Option<ColumnSelection>,
    /// `STORED AS SCD TYPE 1 | 2` (1 when not given).
    pub scd_type: u8,
    /// `TRACK HISTORY ON (..)` or `TRACK HISTORY ON * EXCEPT (..)`.
    pub track_history: Option<ColumnSelection>,
}

/// A column list of an AUTO CDC clause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnSelection {
    /// `(a, b)`: only these.
    Only(Vec<String>),
    /// `* EXCEPT (a, b)`: every column but these.
    Except(Vec<String>),
}

/// One dataset or flow defined by a SQL statement.
#[derive(Debug, Clone)]
pub struct SqlDefinition {
    /// The dataset or flow name, without the pipeline's own qualifiers.
    pub name: String,
    /// What it is.
    pub kind: SqlKind,
    /// Where its `CREATE` is.
    pub location: Location,
    /// `COMMENT '..'`.
    pub comment: Option<String>,
    /// `PARTITIONED BY (..)`.
    pub partition_cols: Vec<String>,
    /// `TBLPROPERTIES (..)`.
    pub table_properties: BTreeMap<String, String>,
    /// `CREATE VIEW` without `TEMPORARY`: a view Spark would persist.
    pub persisted: bool,
    /// Declared columns: the schema of a streaming table without a query, or the names and
    /// types the query's columns are cast to.
    pub columns: Vec<Field>,
    /// `CONSTRAINT name EXPECT (expr) [ON VIOLATION ..]`: name, expression and action.
    pub expectations: Vec<(String, String, ExpectAction)>,
    /// The query after `AS`, if any.
    pub query: Option<SqlQuery>,
    /// The keys `SET` above it in its file set, with their values: its flow's SQL confs.
    pub sql_conf: BTreeMap<String, String>,
}

/// A query after `AS`, ready for [`crate::sql_with`]: SQL text in which each streaming or
/// file reference was replaced by a name that [`SqlQuery::tables`] binds to a reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlQuery {
    /// The SQL text DataFusion plans.
    pub text: String,
    /// Names in `text` and what each reads.
    pub tables: Vec<(String, TableSource)>,
    /// Offsets in `text` where a token of the file starts, with its place in the file.
    pub positions: Vec<(usize, Location)>,
    /// `spark.sql.ansi.enabled` as the file (a `SET` above the query) or the spec's
    /// configuration set it, if either did.
    pub ansi: Option<bool>,
    /// `spark.sql.session.timeZone`, set the same way, if it was.
    pub time_zone: Option<String>,
    /// The current schema when it is not the pipeline's (after `USE SCHEMA`): an unqualified
    /// name means that schema's dataset first.
    pub schema: Option<String>,
    /// `STREAM s WATERMARK column DELAY OF INTERVAL ..`: the column and the delay in
    /// microseconds.
    pub watermark: Option<(String, i64)>,
}

impl SqlQuery {
    /// The file position of `line:column` (1-based) of [`SqlQuery::text`].
    pub fn file_position(&self, line: usize, column: usize) -> Option<Location> {
        let mut offset = 0;
        for (i, l) in self.text.split_inclusive('\n').enumerate() {
            if i + 1 == line {
                offset += l
                    .char_indices()
                    .nth(column.saturating_sub(1))
                    .map_or(l.len(), |(o, _)| o);
                break;
            }
            offset += l.len();
        }
        let (at, location) = self.positions.iter().rev().find(|(at, _)| *at <= offset)?;
        let mut location = location.clone();
        if !self.text[*at..offset].contains('\n') {
            location.column += self.text[*at..offset].chars().count();
        }
        Some(location)
    }
}

/// What a name bound in a [`SqlQuery`] reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableSource {
    /// `STREAM(x)`: the rows appended to pipeline dataset `x` since the last batch.
    Stream(String),
    /// `read_files(..)`, `STREAM read_files(..)` or `cloud_files(..)`.
    Files {
        /// The file or directory (made absolute against the project root).
        path: String,
        /// The format.
        format: FileFormat,
        /// Whether only files not processed yet are read.
        stream: bool,
    },
    /// `read_files(path, format => 'delta')`: a Delta table outside the pipeline.
    Delta {
        /// The table's path.
        path: String,
        /// Whether only commits not processed yet are read.
        stream: bool,
    },
}

/// What a SQL file is read with: the configuration, the pipeline's catalog and database.
#[derive(Debug, Clone, Default)]
pub struct SqlContext {
    /// Values for `${key}`; `SET key = value` adds to them for the rest of the file.
    pub configuration: BTreeMap<String, String>,
    /// Names qualified with this catalog are the pipeline's datasets.
    pub catalog: Option<String>,
    /// Names qualified with this database are the pipeline's datasets.
    pub database: Option<String>,
    /// Relative file paths in `read_files(..)` start here.
    pub root: PathBuf,
}

/// The statements of a SQL text, split at `;` outside quotes and comments (the event log's
/// queries, which may create temporary views before their query).
pub(crate) fn statements(text: &str) -> impl Iterator<Item = &str> {
    split_statements(text)
        .into_iter()
        .map(move |range| &text[range])
}

/// Reads the definitions of one SQL file. `file` names it in errors.
pub fn parse_sql_file(
    file: &str,
    text: &str,
    context: &SqlContext,
) -> Result<Vec<SqlDefinition>, ProjectError> {
    let lines = LineIndex::new(text);
    // Without a catalog or schema in the spec, Spark's defaults name the pipeline's own.
    let home_catalog = Some(
        context
            .catalog
            .clone()
            .unwrap_or_else(|| "spark_catalog".to_string()),
    );
    let home_database = Some(
        context
            .database
            .clone()
            .unwrap_or_else(|| "default".to_string()),
    );
    let mut state = FileState {
        file,
        text,
        lines: &lines,
        configuration: context.configuration.clone(),
        catalog: home_catalog.clone(),
        database: home_database.clone(),
        home_catalog,
        home_database,
        set_confs: BTreeMap::new(),
        root: &context.root,
    };
    let mut out = Vec::new();
    for range in split_statements(text) {
        out.extend(state.statement(range)?);
    }
    Ok(out)
}

struct FileState<'a> {
    file: &'a str,
    text: &'a str,
    lines: &'a LineIndex,
    configuration: BTreeMap<String, String>,
    /// The current catalog and schema (`USE` changes them).
    catalog: Option<String>,
    database: Option<String>,
    /// The pipeline's own catalog and schema: datasets of this schema have plain names,
    /// those of another `schema.name` (stored under `<storage>/<schema>/<name>`).
    home_catalog: Option<String>,
    home_database: Option<String>,
    /// What `SET key = value` statements of this file set so far.
    set_confs: BTreeMap<String, String>,
    root: &'a Path,
}

impl FileState<'_> {
    fn location(&self, file_offset: usize) -> Location {
        let (line, column) = self.lines.position(self.text, file_offset);
        Location::new(self.file, line, column)
    }

    fn substitute(&self, range: Range<usize>) -> Result<Substituted, ProjectError> {
        let source = &self.text[range.clone()];
        let mut text = String::with_capacity(source.len());
        let mut segments = Vec::new();
        let mut rest = 0;
        while let Some(found) = source[rest..].find("${") {
            let open = rest + found;
            let Some(close) = source[open..].find('}').map(|c| open + c) else {
                return Err(ProjectError::Invalid {
                    location: self.location(range.start + open),
                    message: "`${` is not closed by `}`; write `${key}`".into(),
                });
            };
            let key = source[open + 2..close].trim();
            let Some(value) = self.configuration.get(key) else {
                let known: Vec<&str> = self.configuration.keys().map(String::as_str).collect();
                return Err(ProjectError::Invalid {
                    location: self.location(range.start + open),
                    message: format!(
                        "`${{{key}}}` names no configuration value; define `{key}` under `configuration:` in the spec file or with `SET {key} = ...` earlier in this file (defined: {})",
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                });
            };
            segments.push((text.len(), range.start + rest, open - rest, false));
            text.push_str(&source[rest..open]);
            segments.push((text.len(), range.start + open, value.len(), true));
            text.push_str(value);
            rest = close + 1;
        }
        segments.push((text.len(), range.start + rest, source.len() - rest, false));
        text.push_str(&source[rest..]);
        Ok(Substituted { text, segments })
    }

    /// Reads one statement; `SET` and `USE` change the state and define nothing, and
    /// `CREATE STREAMING TABLE .. FLOW AUTO CDC` defines the table and its flow.
    fn statement(&mut self, range: Range<usize>) -> Result<Vec<SqlDefinition>, ProjectError> {
        let sub = self.substitute(range)?;
        let dialect = GenericDialect {};
        let tokens = Tokenizer::new(&dialect, &sub.text)
            .with_unescape(false)
            .tokenize_with_location()
            .map_err(|e| ProjectError::Invalid {
                location: {
                    let index = LineIndex::new(&sub.text);
                    let offset = index.offset(&sub.text, e.location.line, e.location.column);
                    self.location(sub.file_offset(offset))
                },
                message: format!("cannot read this SQL: {}", e.message),
            })?;
        let index = LineIndex::new(&sub.text);
        let tokens: Vec<Tok> = tokens
            .into_iter()
            .filter(|t| !matches!(t.token, Token::Whitespace(_) | Token::EOF))
            .map(|t| Tok {
                range: index.offset(&sub.text, t.span.start.line, t.span.start.column)
                    ..index.offset(&sub.text, t.span.end.line, t.span.end.column),
                token: t.token,
            })
            .collect();
        let mut parser = StatementParser {
            state: self,
            sub: &sub,
            tokens: &tokens,
            pos: 0,
            table_flow: None,
        };
        parser.statement()
    }
}

/// The declared columns as a schema (for a streaming table without a query).
pub fn columns_schema(columns: &[Field]) -> Schema {
    Schema::new(columns.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::DataType;

    fn parse(text: &str) -> Result<Vec<SqlDefinition>, String> {
        let context = SqlContext {
            configuration: [("landing".to_string(), "in/orders".to_string())].into(),
            catalog: Some("main".into()),
            database: Some("sales".into()),
            root: PathBuf::from("/project"),
        };
        parse_sql_file("t.sql", text, &context).map_err(|e| e.to_string())
    }

    fn one(text: &str) -> SqlDefinition {
        let mut all = parse(text).unwrap();
        assert_eq!(all.len(), 1);
        all.remove(0)
    }

    #[test]
    fn statements_split_outside_strings_and_comments() {
        let text = "SELECT ';' -- a ; comment\n; /* ; */ SELECT 2;\n-- only a comment\n";
        let ranges = split_statements(text);
        assert_eq!(ranges.len(), 2);
        assert_eq!(&text[ranges[1].clone()], " /* ; */ SELECT 2");
    }

    #[test]
    fn a_materialized_view_with_options_and_expectations() {
        let d = one(
            "CREATE OR REFRESH MATERIALIZED VIEW main.sales.totals (\n  CONSTRAINT positive EXPECT (total > 0) ON VIOLATION DROP ROW,\n  CONSTRAINT named EXPECT (name IS NOT NULL)\n)\nCOMMENT 'Totals' PARTITIONED BY (country) TBLPROPERTIES ('quality' = 'gold', pipelines.reset.allowed = false)\nAS SELECT country, sum(amount) AS total FROM LIVE.orders GROUP BY country",
        );
        assert_eq!(d.name, "totals");
        assert_eq!(d.kind, SqlKind::MaterializedView);
        assert_eq!(d.location.to_string(), "t.sql:1:1");
        assert_eq!(d.comment.as_deref(), Some("Totals"));
        assert_eq!(d.partition_cols, ["country"]);
        assert_eq!(d.table_properties["quality"], "gold");
        assert_eq!(d.table_properties["pipelines.reset.allowed"], "false");
        assert_eq!(
            d.expectations,
            [
                ("positive".into(), "total > 0".into(), ExpectAction::Drop),
                (
                    "named".into(),
                    "name IS NOT NULL".into(),
                    ExpectAction::Warn
                ),
            ]
        );
        let q = d.query.unwrap();
        assert_eq!(
            q.text,
            "SELECT country, sum(amount) AS total FROM orders GROUP BY country"
        );
        assert!(q.tables.is_empty());
    }

    #[test]
    fn streams_become_bound_names() {
        let d = one(
            "CREATE STREAMING TABLE s AS SELECT * FROM STREAM(LIVE.orders) o JOIN customers USING (id)",
        );
        let q = d.query.unwrap();
        assert_eq!(
            q.text,
            "SELECT * FROM __lakeflow_source_0 o JOIN customers USING (id)"
        );
        assert_eq!(
            q.tables,
            [(
                "__lakeflow_source_0".into(),
                TableSource::Stream("orders".into())
            )]
        );

        let d =
            one("CREATE STREAMING LIVE TABLE s AS SELECT a FROM STREAM sales.orders WHERE a > 1");
        let q = d.query.unwrap();
        assert_eq!(
            q.text,
            "SELECT a FROM __lakeflow_source_0 AS orders WHERE a > 1"
        );
        assert_eq!(d.kind, SqlKind::StreamingTable);
    }

    #[test]
    fn files_are_read_with_options_and_configuration() {
        let d = one(
            "CREATE STREAMING TABLE raw AS SELECT * FROM STREAM read_files('${landing}', format => 'csv', header => false, delimiter => ';')",
        );
        let q = d.query.unwrap();
        assert_eq!(q.text, "SELECT * FROM __lakeflow_source_0");
        let TableSource::Files {
            path,
            format,
            stream,
        } = &q.tables[0].1
        else {
            panic!("files expected: {:?}", q.tables);
        };
        assert_eq!(path, "/project/in/orders");
        assert!(*stream);
        let FileFormat::Options(options) = format else {
            panic!("read_files reads with its options: {format:?}");
        };
        let expected = lakeflow_core::FileOptions::csv()
            .option("header", "false")
            .option("delimiter", ";");
        assert_eq!(options.as_ref(), &expected);
        let d = one(
            "CREATE LIVE TABLE raw AS SELECT * FROM cloud_files(\"/data/in\", \"json\", map(\"cloudFiles.inferColumnTypes\", \"true\"))",
        );
        assert_eq!(
            d.query.unwrap().tables[0].1,
            TableSource::Files {
                path: "/data/in".into(),
                format: lakeflow_core::FileOptions::json()
                    .option("inferColumnTypes", "true")
                    .into(),
                stream: true
            }
        );
    }

    #[test]
    fn set_use_flows_and_tables_without_a_query() {
        let all = parse(
            "SET source = 'eu';\nUSE SCHEMA other;\nCREATE STREAMING TABLE other.all_orders (id BIGINT NOT NULL, amount DECIMAL(10, 2));\nCREATE FLOW ${source}_orders AS INSERT INTO all_orders BY NAME SELECT * FROM STREAM(eu);\nCREATE FLOW backfill AS INSERT INTO ONCE all_orders BY NAME SELECT * FROM archive",
        )
        .unwrap();
        assert_eq!(all.len(), 3);
        // After `USE SCHEMA other`, datasets are in schema `other`.
        assert_eq!(all[0].name, "other.all_orders");
        assert!(all[0].query.is_none());
        assert_eq!(all[0].columns[1].data_type(), &DataType::Decimal128(10, 2));
        assert!(!all[0].columns[0].is_nullable());
        assert_eq!(all[1].name, "eu_orders");
        assert_eq!(
            all[1].kind,
            SqlKind::Flow {
                target: "other.all_orders".into(),
                once: false
            }
        );
        assert_eq!(
            all[2].kind,
            SqlKind::Flow {
                target: "other.all_orders".into(),
                once: true
            }
        );
        assert_eq!(all[2].query.as_ref().unwrap().text, "SELECT * FROM archive");
    }

    fn cdc(definition: &SqlDefinition) -> &SqlAutoCdc {
        match &definition.kind {
            SqlKind::AutoCdc(cdc) => cdc,
            other => panic!("an AUTO CDC flow expected, found {other:?}"),
        }
    }

    #[test]
    fn auto_cdc_flows_read_every_clause() {
        let all = parse(
            "CREATE OR REFRESH STREAMING TABLE customers;\n\
             CREATE FLOW customers_flow COMMENT 'latest' AS AUTO CDC INTO main.sales.customers\n\
             FROM STREAM(LIVE.changes)\n\
             KEYS (id, region)\n\
             IGNORE NULL UPDATES\n\
             APPLY AS DELETE WHEN operation = \"DELETE\"\n\
             APPLY AS TRUNCATE WHEN operation = 'TRUNCATE' AND (id IS NULL)\n\
             SEQUENCE BY struct(ts, seq)\n\
             COLUMNS * EXCEPT (operation, ts)\n\
             STORED AS SCD TYPE 1",
        )
        .unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].name, "customers_flow");
        assert_eq!(all[1].comment.as_deref(), Some("latest"));
        assert_eq!(all[1].location.to_string(), "t.sql:2:1");
        assert_eq!(
            cdc(&all[1]),
            &SqlAutoCdc {
                target: "customers".into(),
                source: "changes".into(),
                keys: vec!["id".into(), "region".into()],
                ignore_null_updates: true,
                apply_as_deletes: Some("operation = 'DELETE'".into()),
                apply_as_truncates: Some("operation = 'TRUNCATE' AND (id IS NULL)".into()),
                sequence_by: "struct(ts, seq)".into(),
                columns: Some(ColumnSelection::Except(vec![
                    "operation".into(),
                    "ts".into()
                ])),
                scd_type: 1,
                track_history: None,
            }
        );

        // Clauses in any order; a bare column list; the legacy form named after its target.
        let d = one(
            "APPLY CHANGES INTO LIVE.history FROM STREAM sales.changes KEYS (id) SEQUENCE BY seq STORED AS SCD TYPE 2 TRACK HISTORY ON * EXCEPT (email) COLUMNS id, name, email",
        );
        assert_eq!(d.name, "history_cdc");
        let c = cdc(&d);
        assert_eq!(
            (c.target.as_str(), c.source.as_str()),
            ("history", "changes")
        );
        assert_eq!(c.scd_type, 2);
        assert_eq!(
            c.track_history,
            Some(ColumnSelection::Except(vec!["email".into()]))
        );
        assert_eq!(
            c.columns,
            Some(ColumnSelection::Only(vec![
                "id".into(),
                "name".into(),
                "email".into()
            ]))
        );
        let flow = c.auto_cdc(&d.name);
        assert_eq!(flow.flow_name(), "history_cdc");
        assert_eq!(flow.target(), "history");
        assert_eq!(flow.source(), "changes");

        // A streaming table with its flow, Databricks SQL's form.
        let all = parse(
            "CREATE OR REFRESH STREAMING TABLE t (id BIGINT, v STRING)\nFLOW AUTO CDC FROM STREAM(s) KEYS (id) SEQUENCE BY seq TRACK HISTORY ON (v) STORED AS SCD TYPE 2",
        )
        .unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].kind, SqlKind::StreamingTable);
        assert!(all[0].query.is_none());
        assert_eq!(all[0].columns.len(), 2);
        assert_eq!(all[1].name, "t_cdc");
        assert_eq!(all[1].location.to_string(), "t.sql:2:1");
        assert_eq!(
            cdc(&all[1]).track_history,
            Some(ColumnSelection::Only(vec!["v".into()]))
        );
    }

    #[test]
    fn auto_cdc_mistakes_name_their_place() {
        let err = |text: &str| parse(text).unwrap_err();
        let e = err(
            "CREATE FLOW f AS AUTO CDC INTO t\nFROM STREAM(s)\nKEYS (id)\nSEQUENCE BY seq\nSTORED AS SCD TYPE 3",
        );
        assert!(
            e.starts_with("t.sql:5:20: expected 1 or 2 after SCD TYPE"),
            "{e}"
        );
        let e = err("CREATE FLOW f AS AUTO CDC INTO t FROM STREAM(s) KEYS (id)");
        assert!(e.contains("has no SEQUENCE BY"), "{e}");
        let e = err("CREATE FLOW f AS AUTO CDC INTO t FROM s SEQUENCE BY v");
        assert!(e.contains("has no KEYS"), "{e}");
        let e = err(
            "CREATE FLOW f AS AUTO CDC INTO t FROM s KEYS (id) SEQUENCE BY v\n  TRACK HISTORY ON (v)",
        );
        assert!(
            e.starts_with("t.sql:2:3: TRACK HISTORY ON needs STORED AS SCD TYPE 2"),
            "{e}"
        );
        let e = err(
            "APPLY CHANGES INTO t FROM s KEYS (id) SEQUENCE BY v STORED AS SCD TYPE 2 APPLY AS TRUNCATE WHEN true",
        );
        assert!(
            e.contains("APPLY AS TRUNCATE WHEN is for SCD TYPE 1 only"),
            "{e}"
        );
        let e = err("APPLY CHANGES INTO t FROM s KEYS (id) KEYS (v) SEQUENCE BY v");
        assert!(e.starts_with("t.sql:1:39: KEYS is given twice"), "{e}");
        let e = err("CREATE FLOW f AS AUTO CDC INTO t FROM SNAPSHOT s KEYS (id)");
        assert!(e.contains("AUTO CDC FROM SNAPSHOT has no SQL form"), "{e}");
        let e = err(
            "CREATE FLOW f AS AUTO CDC INTO t FROM STREAM read_files('x.csv') KEYS (id) SEQUENCE BY v",
        );
        assert!(e.contains("define it first"), "{e}");
        let e = err(
            "CREATE FLOW f AS AUTO CDC INTO t FROM s KEYS (id) SEQUENCE BY v SYSTEM SEQUENCE BY w",
        );
        assert!(e.contains("SYSTEM SEQUENCE BY is not supported"), "{e}");
        let e = err(
            "CREATE FLOW f AS AUTO CDC INTO t FROM s KEYS (id) IGNORE NULL UPDATES ON (a) SEQUENCE BY v",
        );
        assert!(e.contains("IGNORE NULL UPDATES ON a column list"), "{e}");
        let e = err("CREATE FLOW f AS AUTO CDC INTO c.other.t FROM s KEYS (id) SEQUENCE BY v");
        assert!(
            e.starts_with("t.sql:1:32: `c.other.t` names another catalog"),
            "{e}"
        );
        let e =
            err("CREATE FLOW f AS AUTO CDC INTO t FROM s KEYS (id) SEQUENCE BY v COLUMNS * (a)");
        assert!(
            e.contains("expected EXCEPT (columns) after COLUMNS *"),
            "{e}"
        );
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let err = parse("CREATE MATERIALIZED VIEW a AS SELECT 1;\nCREATE TABLE b AS SELECT 1")
            .unwrap_err();
        assert!(
            err.starts_with("t.sql:2:1: CREATE TABLE does not define"),
            "{err}"
        );
        let err = parse("CREATE MATERIALIZED VIEW a\n  COMENT 'x' AS SELECT 1").unwrap_err();
        assert!(err.starts_with("t.sql:2:3: expected AS, COMMENT"), "{err}");
        let err = parse("CREATE MATERIALIZED VIEW a AS\nSELECT * FROM read_files('${nope}')")
            .unwrap_err();
        assert!(
            err.starts_with("t.sql:2:27: `${nope}` names no configuration value"),
            "{err}"
        );
        let err = parse("CREATE FLOW f AS AUTO CDC INTO t SELECT 1").unwrap_err();
        assert!(
            err.starts_with("t.sql:1:34: expected FROM, found `SELECT`"),
            "{err}"
        );
        let err = parse("CREATE MATERIALIZED VIEW cat.other.x AS SELECT 1").unwrap_err();
        assert!(
            err.starts_with("t.sql:1:26: `cat.other.x` names another catalog"),
            "{err}"
        );
        let err = parse("CREATE MATERIALIZED VIEW x").unwrap_err();
        assert!(err.contains("expected AS and a query"), "{err}");
        let err =
            parse("CREATE MATERIALIZED VIEW x AS SELECT * FROM read_files('a.xyz')").unwrap_err();
        assert!(err.contains("say which format"), "{err}");
    }
}
