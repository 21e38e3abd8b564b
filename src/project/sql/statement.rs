//! The statement head: `CREATE .. name [options] AS`, `SET`, `USE`, column lists with
//! `CONSTRAINT .. EXPECT` rules, and the pipeline's own qualifiers (`LIVE`, the catalog and
//! database). The query after `AS` is read by `query.rs`, AUTO CDC clauses by `cdc.rs`.

use std::collections::BTreeMap;

use datafusion::arrow::datatypes::{DataType, Field, TimeUnit};
use datafusion::sql::sqlparser::tokenizer::Token;

use super::text::{Substituted, Tok, unescape};
use super::{FileState, SqlDefinition, SqlKind};
use crate::ExpectAction;
use crate::project::{Location, ProjectError};

/// Reads one statement's tokens.
pub(super) struct StatementParser<'s, 'a> {
    pub(super) state: &'s mut FileState<'a>,
    pub(super) sub: &'s Substituted,
    pub(super) tokens: &'s [Tok],
    pub(super) pos: usize,
    /// The AUTO CDC flow of `CREATE STREAMING TABLE t FLOW AUTO CDC ..`, defined with its table.
    pub(super) table_flow: Option<SqlDefinition>,
}

pub(super) type Parsed<T> = Result<T, ProjectError>;

pub(super) const STATEMENTS: &str = "CREATE MATERIALIZED VIEW, CREATE STREAMING TABLE, CREATE [TEMPORARY] VIEW, CREATE FLOW, APPLY CHANGES INTO, AUTO CDC INTO, SET or USE";

impl StatementParser<'_, '_> {
    pub(super) fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos)
    }

    pub(super) fn peek_is(&self, keyword: &str) -> bool {
        self.peek().is_some_and(|t| t.is(keyword))
    }

    pub(super) fn eat(&mut self, keyword: &str) -> bool {
        if self.peek_is(keyword) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub(super) fn eat_token(&mut self, token: &Token) -> bool {
        if self.peek().is_some_and(|t| &t.token == token) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub(super) fn next(&mut self) -> Option<&Tok> {
        let token = self.tokens.get(self.pos);
        self.pos += 1;
        token
    }

    /// The file location of token `index` (or of the statement's end).
    pub(super) fn location_of(&self, index: usize) -> Location {
        let offset = match self.tokens.get(index) {
            Some(t) => t.range.start,
            None => self.tokens.last().map_or(0, |t| t.range.end),
        };
        self.state.location(self.sub.file_offset(offset))
    }

    pub(super) fn error_at<T>(&self, index: usize, message: impl Into<String>) -> Parsed<T> {
        Err(ProjectError::Invalid {
            location: self.location_of(index),
            message: message.into(),
        })
    }

    pub(super) fn error<T>(&self, message: impl Into<String>) -> Parsed<T> {
        self.error_at(self.pos, message)
    }

    pub(super) fn describe(&self) -> String {
        match self.peek() {
            Some(t) => format!("`{}`", t.token),
            None => "the end of the statement".to_string(),
        }
    }

    pub(super) fn expect(&mut self, keyword: &str) -> Parsed<()> {
        if self.eat(keyword) {
            Ok(())
        } else {
            self.error(format!("expected {keyword}, found {}", self.describe()))
        }
    }

    pub(super) fn expect_token(&mut self, token: Token) -> Parsed<()> {
        if self.eat_token(&token) {
            Ok(())
        } else {
            self.error(format!("expected `{token}`, found {}", self.describe()))
        }
    }

    pub(super) fn statement(&mut self) -> Parsed<Vec<SqlDefinition>> {
        let Some(first) = self.peek().and_then(Tok::keyword) else {
            return self.error(format!(
                "expected a pipeline statement ({STATEMENTS}), found {}",
                self.describe()
            ));
        };
        match first.as_str() {
            "CREATE" => {
                let definition = self.create()?;
                Ok(std::iter::once(definition)
                    .chain(self.table_flow.take())
                    .collect())
            }
            "SET" => self.set().map(|()| Vec::new()),
            "USE" => self.use_().map(|()| Vec::new()),
            "APPLY" | "AUTO" => {
                // The legacy form: a flow without a name of its own, named after its target.
                let start = self.pos;
                let cdc = self.auto_cdc_into()?;
                Ok(vec![SqlDefinition::new(
                    format!("{}_cdc", cdc.target),
                    SqlKind::AutoCdc(Box::new(cdc)),
                    self.location_of(start),
                )])
            }
            other => self.error(format!(
                "`{other}` is not a pipeline statement; a pipeline file holds {STATEMENTS}"
            )),
        }
    }

    /// `SET key = value`: a configuration value for `${key}` in the rest of the file.
    /// `SET key` alone (Spark shows the value) and `SET` change nothing.
    pub(super) fn set(&mut self) -> Parsed<()> {
        self.pos += 1;
        // `SET CATALOG name` (or 'name'): the current catalog, as `USE CATALOG`.
        if self.peek().is_some_and(|t| t.is("CATALOG"))
            && !self.tokens[self.pos..].iter().any(|t| t.token == Token::Eq)
        {
            self.pos += 1;
            let start = self.pos;
            let name = match self.peek().map(|t| &t.token) {
                Some(Token::SingleQuotedString(s)) => Some(s.clone()),
                Some(_) => self.peek().and_then(Tok::ident).map(str::to_string),
                None => None,
            };
            let Some(name) = name.filter(|_| self.tokens.len() == start + 1) else {
                return self.error_at(
                    start.min(self.tokens.len().saturating_sub(1)),
                    "SET CATALOG takes a catalog name or a string literal [PIPELINE_SQL_GRAPH_ELEMENT_REGISTRATION_ERROR]",
                );
            };
            self.pos += 1;
            self.state.catalog = Some(name);
            return Ok(());
        }
        if !self.tokens[self.pos..].iter().any(|t| t.token == Token::Eq) {
            return Ok(());
        }
        let eq = self.tokens[self.pos..]
            .iter()
            .position(|t| t.token == Token::Eq)
            .map(|p| p + self.pos);
        let Some(eq) = eq.filter(|&eq| eq > self.pos) else {
            return self.error("expected `SET key = value`");
        };
        let text = |from: usize, to: usize| -> String {
            match (self.tokens.get(from), self.tokens.get(to.saturating_sub(1))) {
                (Some(a), Some(b)) if from < to => {
                    self.sub.text[a.range.start..b.range.end].trim().to_string()
                }
                _ => String::new(),
            }
        };
        let strip = |s: String| -> String {
            let quoted = s.len() >= 2
                && ((s.starts_with('\'') && s.ends_with('\''))
                    || (s.starts_with('"') && s.ends_with('"'))
                    || (s.starts_with('`') && s.ends_with('`')));
            if quoted {
                unescape(&s[1..s.len() - 1])
            } else {
                s
            }
        };
        let key = strip(text(self.pos, eq));
        let value = strip(text(eq + 1, self.tokens.len()));
        self.state.set_confs.insert(key.clone(), value.clone());
        self.state.configuration.insert(key, value);
        Ok(())
    }

    /// `USE {SCHEMA | DATABASE | NAMESPACE} name`, `USE CATALOG name`, `USE name`.
    pub(super) fn use_(&mut self) -> Parsed<()> {
        self.pos += 1;
        let catalog = self.eat("CATALOG");
        // `USE SCHEMA x`, `USE DATABASE x`, `USE NAMESPACE x`, or `USE x` / `USE c.x`.
        let _schema =
            catalog || self.eat("SCHEMA") || self.eat("DATABASE") || self.eat("NAMESPACE");
        let start = self.pos;
        let parts = self.qualified_name()?;
        if self.peek().is_some() {
            return self.error(format!(
                "expected the end of USE, found {}",
                self.describe()
            ));
        }
        match (catalog, parts.as_slice()) {
            (true, [name]) => {
                self.state.catalog = Some(name.clone());
                self.state.database = None;
            }
            (false, [name]) => self.state.database = Some(name.clone()),
            (false, [catalog, name]) => {
                self.state.catalog = Some(catalog.clone());
                self.state.database = Some(name.clone());
            }
            _ => return self.error_at(start, "expected a catalog or schema name"),
        }
        Ok(())
    }

    /// `a`, `a.b` or `a.b.c`, each part a word or a quoted identifier.
    pub(super) fn qualified_name(&mut self) -> Parsed<Vec<String>> {
        let mut parts = Vec::new();
        loop {
            match self.peek().filter(|t| !t.is("AS")).and_then(Tok::ident) {
                Some(part) => {
                    parts.push(part.to_string());
                    self.pos += 1;
                }
                None => return self.error(format!("expected a name, found {}", self.describe())),
            }
            if !self.eat_token(&Token::Period) {
                return Ok(parts);
            }
        }
    }

    /// A dataset name as written, without the qualifiers that mean "this pipeline": `LIVE`,
    /// and the current catalog and database.
    pub(super) fn dataset_name(&mut self) -> Parsed<String> {
        let start = self.pos;
        let parts = self.qualified_name()?;
        let own_catalog = |c: &str| {
            matches_name(&self.state.home_catalog, c) || matches_name(&self.state.catalog, c)
        };
        // A dataset of the pipeline's schema has a plain name; one of another schema (named
        // so, or after `USE SCHEMA`) is `schema.name`.
        let in_schema = |schema: Option<&String>, name: &String| match schema {
            Some(schema) if !matches_name(&self.state.home_database, schema) => {
                format!("{schema}.{name}")
            }
            _ => name.clone(),
        };
        match parts.as_slice() {
            [name] => Ok(in_schema(self.state.database.as_ref(), name)),
            [live, name] if live.eq_ignore_ascii_case("live") => Ok(name.clone()),
            [schema, name] => Ok(in_schema(Some(schema), name)),
            [catalog, schema, name] if own_catalog(catalog) => Ok(in_schema(Some(schema), name)),
            _ => self.error_at(
                start,
                format!(
                    "`{}` names another catalog than the pipeline's ({}); a pipeline defines its datasets in its own storage, so write `schema.name` or `name`",
                    parts.join("."),
                    own_qualifiers(&self.state.home_catalog, &self.state.home_database)
                ),
            ),
        }
    }

    pub(super) fn create(&mut self) -> Parsed<SqlDefinition> {
        let start = self.pos;
        self.pos += 1;
        if self.eat("OR") && !(self.eat("REFRESH") || self.eat("REPLACE")) {
            return self.error(format!(
                "expected OR REFRESH or OR REPLACE, found {}",
                self.describe()
            ));
        }
        // Every view is inlined in lakeflow (never stored); one without TEMPORARY is one that
        // Spark would persist, which may not read a stream.
        let temporary = self.eat("TEMPORARY") || self.eat("TEMP");
        if self.eat("FUNCTION") {
            return self.function(start);
        }
        let streaming = self.eat("STREAMING") || self.eat("INCREMENTAL");
        let live = self.eat("LIVE");
        let kind = if self.eat("MATERIALIZED") {
            self.expect("VIEW")?;
            SqlKind::MaterializedView
        } else if self.eat("TABLE") {
            match (streaming, live) {
                (true, _) => SqlKind::StreamingTable,
                (false, true) => SqlKind::MaterializedView,
                (false, false) => {
                    return self.error_at(
                        start,
                        "CREATE TABLE does not define a pipeline dataset; write CREATE MATERIALIZED VIEW (recomputed from its query) or CREATE STREAMING TABLE (appends what is new)",
                    );
                }
            }
        } else if self.eat("VIEW") {
            SqlKind::TemporaryView
        } else if self.eat("FLOW") {
            SqlKind::Flow {
                target: String::new(),
                once: false,
            }
        } else {
            return self.error(format!(
                "expected MATERIALIZED VIEW, STREAMING TABLE, VIEW or FLOW after CREATE, found {}",
                self.describe()
            ));
        };
        if self.eat("IF") {
            self.expect("NOT")?;
            self.expect("EXISTS")?;
        }
        let name_at = self.pos;
        let name = self.dataset_name()?;
        // A temporary view belongs to no schema (Spark's are session-scoped), and so does a
        // flow, whose name must be a single part.
        let name = match (&kind, temporary) {
            (SqlKind::TemporaryView, true) => name.rsplit('.').next().unwrap_or(&name).to_string(),
            (SqlKind::Flow { .. }, _) => {
                let after = self.pos;
                self.pos = name_at;
                let written = self.qualified_name()?.join(".");
                self.pos = after;
                if written.contains('.') {
                    return self.error_at(
                        name_at,
                        format!(
                            "flow `{written}` has a multipart name; a flow's name is one part, as `{}` [MULTIPART_FLOW_NAME_NOT_SUPPORTED]",
                            name.rsplit('.').next().unwrap_or(&name)
                        ),
                    );
                }
                name.rsplit('.').next().unwrap_or(&name).to_string()
            }
            _ => name,
        };
        let mut definition = SqlDefinition::new(name, kind, self.location_of(start));
        definition.sql_conf = self.state.set_confs.clone();
        definition.persisted =
            definition.kind == SqlKind::TemporaryView && !temporary && !live && !streaming;
        let is_flow = matches!(definition.kind, SqlKind::Flow { .. });
        let is_view = definition.kind == SqlKind::TemporaryView;
        let mut has_as = false;
        loop {
            let at = self.pos;
            let Some(token) = self.peek() else { break };
            if token.token == Token::LParen && !is_flow {
                self.column_list(&mut definition)?;
                continue;
            }
            match token.keyword().as_deref() {
                Some("AS") => {
                    self.pos += 1;
                    has_as = true;
                    break;
                }
                Some("FLOW") if definition.kind == SqlKind::StreamingTable => {
                    // `CREATE STREAMING TABLE t FLOW AUTO CDC FROM ..`: the table, and its flow.
                    self.pos += 1;
                    self.expect("AUTO")?;
                    self.expect("CDC")?;
                    let cdc = self.auto_cdc_clauses(definition.name.clone())?;
                    self.table_flow = Some(SqlDefinition::new(
                        format!("{}_cdc", definition.name),
                        SqlKind::AutoCdc(Box::new(cdc)),
                        self.location_of(at),
                    ));
                    return Ok(definition);
                }
                Some("COMMENT") => {
                    self.pos += 1;
                    definition.comment = Some(self.string("a comment")?);
                }
                Some("PARTITIONED") if !is_flow && !is_view => {
                    self.pos += 1;
                    self.expect("BY")?;
                    if self.peek_is_expression_list() {
                        return self.error(
                            "PARTITIONED BY takes column names, not expressions (Delta partitions by columns); add the expression as a column of the query (`year(d) AS d_year`) and partition by that column",
                        );
                    }
                    definition.partition_cols = self.name_list()?;
                }
                // `CLUSTER BY (a, b)` / `CLUSTER BY AUTO` / `CLUSTER BY NONE`: kept as the table
                // property `clusteringColumns` (a JSON list); the files are not reorganised.
                Some("CLUSTER") if !is_flow && !is_view => {
                    self.pos += 1;
                    self.expect("BY")?;
                    let columns = if self.eat("AUTO") {
                        "auto".to_string()
                    } else if self.eat("NONE") {
                        "[]".to_string()
                    } else {
                        let names = self.name_list()?;
                        serde_json::to_string(&names).unwrap_or_default()
                    };
                    definition
                        .table_properties
                        .insert("clusteringColumns".into(), columns);
                }
                // A query right after the name and clauses, without AS (Spark accepts it).
                Some("SELECT" | "WITH" | "FROM" | "VALUES") if !is_flow => {
                    has_as = true;
                    break;
                }
                Some("TBLPROPERTIES") if !is_flow && !is_view => {
                    self.pos += 1;
                    self.properties(&mut definition.table_properties)?;
                }
                Some("USING") if !is_flow && !is_view => {
                    self.pos += 1;
                    match self.next().map(|t| t.is("DELTA")) {
                        Some(true) => {}
                        _ => {
                            return self.error_at(
                                at + 1,
                                "lakeflow stores every table as Delta; write USING DELTA or leave USING out",
                            );
                        }
                    }
                }
                Some(word @ ("LOCATION" | "SCHEDULE" | "TRIGGER" | "ROW" | "OPTIONS")) => {
                    return self.error(format!(
                        "`{word}` is not supported in lakeflow's SQL pipelines yet; remove it"
                    ));
                }
                _ => {
                    return self.error(format!(
                        "expected AS, COMMENT, PARTITIONED BY, CLUSTER BY, TBLPROPERTIES or a column list, found {}",
                        self.describe()
                    ));
                }
            }
        }
        if !definition.partition_cols.is_empty()
            && definition
                .table_properties
                .contains_key("clusteringColumns")
        {
            return self.error_at(
                start,
                "a table is either clustered or partitioned: write CLUSTER BY or PARTITIONED BY, not both [SPECIFY_CLUSTER_BY_WITH_PARTITIONED_BY_IS_NOT_ALLOWED]",
            );
        }
        if is_flow {
            if !has_as {
                return self.error(
                    "expected AS INSERT INTO target and a query, or AS AUTO CDC INTO target and its clauses",
                );
            }
            return self.flow(definition);
        }
        if !has_as {
            // No AS: only a streaming table is created without a query.
            if definition.kind != SqlKind::StreamingTable {
                return self.error(format!(
                    "expected AS and a query: a {} is defined by its query",
                    match definition.kind {
                        SqlKind::MaterializedView => "materialized view",
                        _ => "view",
                    }
                ));
            }
            return Ok(definition);
        }
        definition.query = Some(self.query()?);
        Ok(definition)
    }

    /// `CREATE FLOW name [COMMENT ..] AS INSERT INTO [ONCE] target [BY NAME] query`, or
    /// `.. AS AUTO CDC INTO target ..` (also `APPLY CHANGES INTO`).
    pub(super) fn flow(&mut self, mut definition: SqlDefinition) -> Parsed<SqlDefinition> {
        if self.peek_is("AUTO") || self.peek_is("APPLY") {
            definition.kind = SqlKind::AutoCdc(Box::new(self.auto_cdc_into()?));
            return Ok(definition);
        }
        self.expect("INSERT")?;
        self.expect("INTO")?;
        let once = self.eat("ONCE");
        let target = self.dataset_name()?;
        if self.eat("BY") {
            self.expect("NAME")?;
        } else {
            return self.error(
                "a flow inserts by name: write INSERT INTO target BY NAME (the query's columns are matched to the table's by name) [PIPELINE_SQL_GRAPH_ELEMENT_REGISTRATION_ERROR]",
            );
        }
        if self.peek().is_none() {
            return self.error("expected the flow's query");
        }
        definition.kind = SqlKind::Flow { target, once };
        definition.query = Some(self.query()?);
        Ok(definition)
    }

    pub(super) fn string(&mut self, what: &str) -> Parsed<String> {
        match self.peek().and_then(Tok::string) {
            Some(s) => {
                self.pos += 1;
                Ok(s)
            }
            None => self.error(format!(
                "expected {what} in quotes, found {}",
                self.describe()
            )),
        }
    }

    /// `(a, b, ..)`.
    /// Whether the parenthesised list ahead holds an expression (a name followed by `(`).
    fn peek_is_expression_list(&self) -> bool {
        let mut i = self.pos + 1;
        while let Some(t) = self.tokens.get(i) {
            match &t.token {
                Token::RParen => return false,
                Token::LParen => return true,
                _ => i += 1,
            }
        }
        false
    }

    pub(super) fn name_list(&mut self) -> Parsed<Vec<String>> {
        self.expect_token(Token::LParen)?;
        let mut names = Vec::new();
        loop {
            match self.peek().and_then(Tok::ident) {
                Some(name) => {
                    names.push(name.to_string());
                    self.pos += 1;
                }
                None => {
                    return self
                        .error(format!("expected a column name, found {}", self.describe()));
                }
            }
            if self.eat_token(&Token::RParen) {
                return Ok(names);
            }
            self.expect_token(Token::Comma)?;
        }
    }

    /// `('key' = 'value', key.part = value, ..)`.
    pub(super) fn properties(&mut self, out: &mut BTreeMap<String, String>) -> Parsed<()> {
        self.expect_token(Token::LParen)?;
        loop {
            let key_at = self.pos;
            let key = match self.peek().and_then(Tok::string) {
                Some(key) => {
                    self.pos += 1;
                    key
                }
                None => self.qualified_name()?.join("."),
            };
            self.expect_token(Token::Eq)?;
            let value = match self.next().map(|t| t.token.clone()) {
                Some(Token::SingleQuotedString(s) | Token::DoubleQuotedString(s)) => unescape(&s),
                Some(Token::Number(n, _)) => n,
                Some(Token::Word(w)) => w.value,
                _ => return self.error_at(self.pos - 1, "expected a property value"),
            };
            if out.insert(key.clone(), value).is_some() {
                return self.error_at(key_at, format!("table property `{key}` is given twice"));
            }
            if self.eat_token(&Token::RParen) {
                return Ok(());
            }
            self.expect_token(Token::Comma)?;
        }
    }

    /// After `CREATE [OR REPLACE] [TEMPORARY] FUNCTION`: `[IF NOT EXISTS] name(p TYPE, ..)
    /// RETURNS TYPE [characteristics] RETURN expr`, a SQL scalar function (its name's last
    /// part: functions belong to no schema in a pipeline).
    fn function(&mut self, start: usize) -> Parsed<SqlDefinition> {
        if self.eat("IF") {
            self.expect("NOT")?;
            self.expect("EXISTS")?;
        }
        let parts = self.qualified_name()?;
        let name = parts.last().cloned().unwrap_or_default().to_lowercase();
        self.expect_token(Token::LParen)?;
        let mut params = Vec::new();
        if !self.eat_token(&Token::RParen) {
            loop {
                let Some(param) = self.next().and_then(Tok::ident).map(str::to_string) else {
                    return self.error_at(self.pos - 1, "expected a parameter name");
                };
                params.push((param, self.data_type()?));
                if self.eat("DEFAULT") || self.eat("COMMENT") {
                    return self.error(
                        "parameter defaults and comments of SQL functions are not supported; leave them out",
                    );
                }
                if self.eat_token(&Token::RParen) {
                    break;
                }
                self.expect_token(Token::Comma)?;
            }
        }
        if !self.eat("RETURNS") {
            return self.error(format!(
                "expected RETURNS and the result's type after the parameters of SQL function `{name}`, found {}",
                self.describe()
            ));
        }
        if self.peek().is_some_and(|t| t.is("TABLE")) {
            return self.error_at(
                start,
                format!("`{name}` is a table function; lakeflow supports SQL functions that return a value (RETURNS type RETURN expr)"),
            );
        }
        let returns = self.data_type()?;
        // Characteristics before RETURN: `COMMENT '..'`, `LANGUAGE SQL`, `[NOT] DETERMINISTIC`,
        // `CONTAINS SQL`, `READS SQL DATA`.
        while !self.peek().is_some_and(|t| t.is("RETURN")) {
            if self.eat("COMMENT") {
                self.string("a comment")?;
            } else if self.peek().is_some() {
                self.pos += 1;
            } else {
                return self.error(format!(
                    "expected RETURN and the body of SQL function `{name}`"
                ));
            }
        }
        self.expect("RETURN")?;
        let from = self
            .peek()
            .map(|t| t.range.start)
            .unwrap_or(self.sub.text.len());
        let body = self.sub.text[from..]
            .trim()
            .trim_end_matches(';')
            .trim()
            .to_string();
        if body.is_empty() || body.to_ascii_uppercase().starts_with("SELECT") {
            return self.error(format!(
                "the body of SQL function `{name}` must be an expression (`RETURN a + b`); a query is not supported"
            ));
        }
        self.pos = self.tokens.len();
        let kind = SqlKind::Function(Box::new(super::SqlFunctionDef {
            params,
            returns,
            body,
        }));
        Ok(SqlDefinition::new(name, kind, self.location_of(start)))
    }

    /// `PRIMARY KEY (..) [RELY]` or `FOREIGN KEY (..) REFERENCES t [(..)]`, up to the next
    /// `,` or the `)` closing the column list.
    fn skip_key_constraint(&mut self) -> Parsed<()> {
        let mut depth = 0usize;
        while let Some(t) = self.peek() {
            match t.token {
                Token::LParen => depth += 1,
                Token::RParen if depth == 0 => return Ok(()),
                Token::RParen => depth -= 1,
                Token::Comma if depth == 0 => return Ok(()),
                _ => {}
            }
            self.pos += 1;
        }
        self.error("expected `)` closing the column list")
    }

    /// `(col TYPE [NOT NULL] [COMMENT '..'] [PRIMARY KEY | FOREIGN KEY REFERENCES t],
    /// CONSTRAINT n EXPECT (e) [ON VIOLATION ..], ..)`.
    pub(super) fn column_list(&mut self, definition: &mut SqlDefinition) -> Parsed<()> {
        self.expect_token(Token::LParen)?;
        loop {
            if self.eat("CONSTRAINT") {
                let name_at = self.pos;
                let name = match self.next().and_then(Tok::ident) {
                    Some(name) => name.to_string(),
                    None => return self.error_at(name_at, "expected the constraint's name"),
                };
                // Databricks' informational keys (`PRIMARY KEY (..)`, `FOREIGN KEY (..)
                // REFERENCES t (..)`) are not enforced there either: read and left out.
                if self
                    .peek()
                    .is_some_and(|t| t.is("PRIMARY") || t.is("FOREIGN"))
                {
                    self.skip_key_constraint()?;
                    if self.eat_token(&Token::RParen) {
                        return Ok(());
                    }
                    self.expect_token(Token::Comma)?;
                    continue;
                }
                if !self.eat("EXPECT") {
                    return self.error(format!(
                        "expected EXPECT (condition), PRIMARY KEY (..) or FOREIGN KEY (..) after CONSTRAINT {name}"
                    ));
                }
                let expr = self.parenthesized_text()?;
                let action = if self.eat("ON") {
                    self.expect("VIOLATION")?;
                    if self.eat("DROP") {
                        self.expect("ROW")?;
                        ExpectAction::Drop
                    } else if self.eat("FAIL") {
                        self.expect("UPDATE")?;
                        ExpectAction::Fail
                    } else {
                        return self.error(format!(
                            "expected DROP ROW or FAIL UPDATE after ON VIOLATION, found {}",
                            self.describe()
                        ));
                    }
                } else {
                    ExpectAction::Warn
                };
                definition.expectations.push((name, expr, action));
            } else {
                let name = match self.peek().and_then(Tok::ident) {
                    Some(name) => name.to_string(),
                    None => {
                        return self.error(format!(
                            "expected a column definition or CONSTRAINT, found {}",
                            self.describe()
                        ));
                    }
                };
                self.pos += 1;
                let data_type = self.data_type()?;
                let mut nullable = true;
                loop {
                    if self.eat("NOT") {
                        self.expect("NULL")?;
                        nullable = false;
                    } else if self.eat("COMMENT") {
                        self.string("a column comment")?;
                    } else if self.peek().is_some_and(|t| {
                        ["PRIMARY", "FOREIGN", "REFERENCES", "CONSTRAINT"]
                            .iter()
                            .any(|k| t.is(k))
                    }) {
                        // A key on the column (`id BIGINT PRIMARY KEY`, `k BIGINT [CONSTRAINT
                        // n] FOREIGN KEY REFERENCES d`): informational in Databricks too,
                        // read and left out with the rest of the column's definition.
                        self.skip_key_constraint()?;
                        break;
                    } else {
                        break;
                    }
                }
                definition
                    .columns
                    .push(Field::new(name, data_type, nullable));
            }
            if self.eat_token(&Token::RParen) {
                return Ok(());
            }
            self.expect_token(Token::Comma)?;
        }
    }

    /// The text between a `(` and its matching `)`, trimmed.
    pub(super) fn parenthesized_text(&mut self) -> Parsed<String> {
        let open = self.pos;
        self.expect_token(Token::LParen)?;
        let mut depth = 1;
        while let Some(token) = self.next() {
            match token.token {
                Token::LParen => depth += 1,
                Token::RParen => {
                    depth -= 1;
                    if depth == 0 {
                        let from = self.tokens[open].range.end;
                        let to = self.tokens[self.pos - 1].range.start;
                        let text = self.sub.text[from..to].trim().to_string();
                        if text.is_empty() {
                            return self.error_at(open, "expected a condition in the parentheses");
                        }
                        return Ok(text);
                    }
                }
                _ => {}
            }
        }
        self.error_at(open, "this `(` is not closed")
    }

    pub(super) fn data_type(&mut self) -> Parsed<DataType> {
        let at = self.pos;
        let Some(name) = self.next().and_then(Tok::keyword) else {
            return self.error_at(
                at,
                "expected a column type such as STRING, BIGINT or DOUBLE",
            );
        };
        let mut args = Vec::new();
        if self.eat_token(&Token::LParen) {
            loop {
                match self.next().map(|t| t.token.clone()) {
                    Some(Token::Number(n, _)) => args.push(n.parse::<u8>().unwrap_or(u8::MAX)),
                    _ => return self.error_at(self.pos - 1, "expected a number in the type"),
                }
                if self.eat_token(&Token::RParen) {
                    break;
                }
                self.expect_token(Token::Comma)?;
            }
        }
        Ok(match (name.as_str(), args.as_slice()) {
            ("STRING" | "VARCHAR" | "CHAR" | "TEXT", _) => DataType::Utf8,
            ("BOOLEAN" | "BOOL", []) => DataType::Boolean,
            ("TINYINT" | "BYTE", []) => DataType::Int8,
            ("SMALLINT" | "SHORT", []) => DataType::Int16,
            ("INT" | "INTEGER", []) => DataType::Int32,
            ("BIGINT" | "LONG", []) => DataType::Int64,
            ("FLOAT" | "REAL", []) => DataType::Float32,
            ("DOUBLE", []) => DataType::Float64,
            ("DATE", []) => DataType::Date32,
            ("TIMESTAMP" | "TIMESTAMP_LTZ", []) => {
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            }
            ("TIMESTAMP_NTZ", []) => DataType::Timestamp(TimeUnit::Microsecond, None),
            ("BINARY", []) => DataType::Binary,
            ("DECIMAL" | "DEC" | "NUMERIC", []) => DataType::Decimal128(10, 0),
            ("DECIMAL" | "DEC" | "NUMERIC", [p]) if (1..=38).contains(p) => {
                DataType::Decimal128(*p, 0)
            }
            ("DECIMAL" | "DEC" | "NUMERIC", [p, s]) if (1..=38).contains(p) && s <= p => {
                DataType::Decimal128(*p, *s as i8)
            }
            _ => {
                return self.error_at(
                    at,
                    format!(
                        "column type `{name}` is not supported; use STRING, BOOLEAN, TINYINT, SMALLINT, INT, BIGINT, FLOAT, DOUBLE, DECIMAL(p, s), DATE, TIMESTAMP, TIMESTAMP_NTZ or BINARY"
                    ),
                );
            }
        })
    }
}

impl SqlDefinition {
    /// A definition with no options yet.
    fn new(name: String, kind: SqlKind, location: Location) -> Self {
        SqlDefinition {
            name,
            kind,
            location,
            comment: None,
            partition_cols: Vec::new(),
            table_properties: BTreeMap::new(),
            persisted: false,
            columns: Vec::new(),
            expectations: Vec::new(),
            query: None,
            sql_conf: BTreeMap::new(),
        }
    }
}

pub(super) fn matches_name(expected: &Option<String>, name: &str) -> bool {
    expected
        .as_deref()
        .is_some_and(|e| e.eq_ignore_ascii_case(name))
}

pub(super) fn own_qualifiers(catalog: &Option<String>, database: &Option<String>) -> String {
    match (catalog, database) {
        (Some(c), Some(d)) => format!("`{c}.{d}`, or `LIVE`"),
        (None, Some(d)) => format!("`{d}`, or `LIVE`"),
        _ => "only `LIVE`".to_string(),
    }
}
