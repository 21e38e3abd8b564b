//! AUTO CDC in SQL: the clauses of `CREATE FLOW f AS AUTO CDC INTO t ..`, of the legacy
//! `APPLY CHANGES INTO t ..` and of `CREATE STREAMING TABLE t FLOW AUTO CDC ..`, read into a
//! [`SqlAutoCdc`] that maps one to one onto the [`AutoCdc`] builder. Only what the builder
//! can do is accepted; every other Databricks clause is an error naming its place.

use datafusion::sql::sqlparser::tokenizer::Token;

use super::statement::{Parsed, StatementParser};
use super::text::Tok;
use super::{ColumnSelection, SqlAutoCdc};
use crate::AutoCdc;

impl SqlAutoCdc {
    /// The flow named `name`, as the builder makes it.
    pub fn auto_cdc(&self, name: &str) -> AutoCdc {
        let mut flow = AutoCdc::new(self.target.clone(), self.source.clone())
            .name(name)
            .keys(self.keys.clone())
            .sequence_by(self.sequence_by.clone())
            .ignore_null_updates(self.ignore_null_updates)
            .stored_as_scd_type(self.scd_type);
        if let Some(condition) = &self.apply_as_deletes {
            flow = flow.apply_as_deletes(condition.clone());
        }
        if let Some(condition) = &self.apply_as_truncates {
            flow = flow.apply_as_truncates(condition.clone());
        }
        flow = match &self.columns {
            Some(ColumnSelection::Only(columns)) => flow.column_list(columns.clone()),
            Some(ColumnSelection::Except(columns)) => flow.except_column_list(columns.clone()),
            None => flow,
        };
        match &self.track_history {
            Some(ColumnSelection::Only(columns)) => flow.track_history_column_list(columns.clone()),
            Some(ColumnSelection::Except(columns)) => {
                flow.track_history_except_column_list(columns.clone())
            }
            None => flow,
        }
    }
}

/// The clauses that may follow `FROM source`, for error messages.
const CLAUSES: &str = "KEYS (..), IGNORE NULL UPDATES, APPLY AS DELETE WHEN, APPLY AS TRUNCATE WHEN, SEQUENCE BY, COLUMNS, STORED AS SCD TYPE or TRACK HISTORY ON";

impl StatementParser<'_, '_> {
    /// `AUTO CDC INTO target` or `APPLY CHANGES INTO target` (at the current token), then
    /// the clauses; the rest of the statement.
    pub(super) fn auto_cdc_into(&mut self) -> Parsed<SqlAutoCdc> {
        if self.eat("AUTO") {
            self.expect("CDC")?;
            if self.peek_is("ONCE") {
                return self.error(
                    "AUTO CDC ONCE is not supported yet; lakeflow's AUTO CDC flows apply a change feed each run",
                );
            }
        } else {
            self.expect("APPLY")?;
            self.expect("CHANGES")?;
        }
        self.expect("INTO")?;
        let target = self.dataset_name()?;
        self.auto_cdc_clauses(target)
    }

    /// `FROM source KEYS (..) [..] SEQUENCE BY expr [..]` to the end of the statement, for
    /// the flow into `target`.
    pub(super) fn auto_cdc_clauses(&mut self, target: String) -> Parsed<SqlAutoCdc> {
        self.expect("FROM")?;
        let source = self.cdc_source()?;
        let mut keys = None;
        let mut ignore_null_updates = false;
        let mut apply_as_deletes = None;
        let mut apply_as_truncates = None;
        let mut sequence_by = None;
        let mut columns = None;
        let mut scd_type = None;
        let mut track_history = None;
        while let Some(token) = self.peek() {
            let at = self.pos;
            let word = token.keyword().unwrap_or_default();
            match word.as_str() {
                "KEYS" => {
                    self.not_twice(keys.is_some(), at, "KEYS")?;
                    self.pos += 1;
                    keys = Some(self.name_list()?);
                }
                "IGNORE" => {
                    self.not_twice(ignore_null_updates, at, "IGNORE NULL UPDATES")?;
                    self.pos += 1;
                    self.expect("NULL")?;
                    self.expect("UPDATES")?;
                    if self.peek_is("ON") {
                        return self.error(
                            "IGNORE NULL UPDATES ON a column list is not supported yet; IGNORE NULL UPDATES keeps the previous value of every column an update sets to NULL",
                        );
                    }
                    ignore_null_updates = true;
                }
                "APPLY" => {
                    self.pos += 1;
                    self.expect("AS")?;
                    let deletes = if self.eat("DELETE") {
                        true
                    } else if self.eat("TRUNCATE") {
                        false
                    } else {
                        return self.error(format!(
                            "expected DELETE or TRUNCATE after APPLY AS, found {}",
                            self.describe()
                        ));
                    };
                    self.expect("WHEN")?;
                    let condition = self.cdc_expression("a condition")?;
                    if deletes {
                        self.not_twice(apply_as_deletes.is_some(), at, "APPLY AS DELETE WHEN")?;
                        apply_as_deletes = Some(condition);
                    } else {
                        self.not_twice(apply_as_truncates.is_some(), at, "APPLY AS TRUNCATE WHEN")?;
                        apply_as_truncates = Some((condition, at));
                    }
                }
                "SEQUENCE" => {
                    self.not_twice(sequence_by.is_some(), at, "SEQUENCE BY")?;
                    self.pos += 1;
                    self.expect("BY")?;
                    sequence_by = Some(
                        self.cdc_expression("the column (or struct) that orders the changes")?,
                    );
                }
                "SYSTEM" => {
                    return self.error("SYSTEM SEQUENCE BY is not supported yet; order the changes with SEQUENCE BY (a struct breaks ties: SEQUENCE BY struct(ts, id))");
                }
                "COLUMNS" => {
                    if self.tokens.get(at + 1).is_some_and(|t| t.is("TO")) {
                        return self.error(
                            "COLUMNS TO UPDATE is not supported yet; an update sets every column",
                        );
                    }
                    self.not_twice(columns.is_some(), at, "COLUMNS")?;
                    self.pos += 1;
                    columns = Some(self.column_selection("COLUMNS")?);
                }
                "STORED" => {
                    self.not_twice(scd_type.is_some(), at, "STORED AS")?;
                    self.pos += 1;
                    self.expect("AS")?;
                    if self.peek_is("BITEMPORAL") {
                        return self.error("STORED AS BITEMPORAL is not supported; use STORED AS SCD TYPE 1 or SCD TYPE 2");
                    }
                    self.expect("SCD")?;
                    self.expect("TYPE")?;
                    let number_at = self.pos;
                    scd_type = match self.next().map(|t| t.token.clone()) {
                        Some(Token::Number(n, _)) if n == "1" => Some(1),
                        Some(Token::Number(n, _)) if n == "2" => Some(2),
                        _ => {
                            return self.error_at(
                                number_at,
                                "expected 1 or 2 after SCD TYPE: type 1 keeps the latest row per key, type 2 every version",
                            );
                        }
                    };
                }
                "TRACK" => {
                    self.not_twice(track_history.is_some(), at, "TRACK HISTORY ON")?;
                    self.pos += 1;
                    self.expect("HISTORY")?;
                    self.expect("ON")?;
                    track_history = Some((self.column_selection("TRACK HISTORY ON")?, at));
                }
                _ => {
                    return self.error(format!("expected {CLAUSES}, found {}", self.describe()));
                }
            }
        }
        let Some(keys) = keys else {
            return self.error(format!(
                "AUTO CDC INTO `{target}` has no KEYS; name the columns that identify a row: KEYS (id)"
            ));
        };
        let Some(sequence_by) = sequence_by else {
            return self.error(format!(
                "AUTO CDC INTO `{target}` has no SEQUENCE BY; name the column (or struct) that orders the changes: SEQUENCE BY updated_at"
            ));
        };
        let scd_type = scd_type.unwrap_or(1);
        if let (Some((_, at)), 1) = (&track_history, scd_type) {
            return self.error_at(
                *at,
                "TRACK HISTORY ON needs STORED AS SCD TYPE 2; a type 1 table keeps no history",
            );
        }
        if let (Some((_, at)), 2) = (&apply_as_truncates, scd_type) {
            return self.error_at(
                *at,
                "APPLY AS TRUNCATE WHEN is for SCD TYPE 1 only; a type 2 table keeps history, which a truncate would erase",
            );
        }
        Ok(SqlAutoCdc {
            target,
            source,
            keys,
            ignore_null_updates,
            apply_as_deletes,
            apply_as_truncates: apply_as_truncates.map(|(c, _)| c),
            sequence_by,
            columns,
            scd_type,
            track_history: track_history.map(|(s, _)| s),
        })
    }

    /// An error when a clause that may appear once was already given.
    fn not_twice(&self, given: bool, at: usize, clause: &str) -> Parsed<()> {
        if given {
            self.error_at(at, format!("{clause} is given twice; keep one"))
        } else {
            Ok(())
        }
    }

    /// The source after `FROM`: `STREAM(x)`, `STREAM x` or `x`, a pipeline dataset (read as
    /// a stream in every case).
    fn cdc_source(&mut self) -> Parsed<String> {
        if self.peek_is("SNAPSHOT") {
            return self.error(
                "AUTO CDC FROM SNAPSHOT has no SQL form (Databricks offers it in Python only); in Rust, use AutoCdc::from_snapshot(target, table) with Pipeline::create_auto_cdc_from_snapshot_flow",
            );
        }
        let stream = self.eat("STREAM");
        let parenthesized = stream && self.eat_token(&Token::LParen);
        let at = self.pos;
        if self.is_file_call(at) || self.peek().is_some_and(|t| t.token == Token::LParen) {
            return self.error_at(
                at,
                "AUTO CDC reads the change feed from a dataset; define it first (CREATE STREAMING TABLE changes AS SELECT * FROM STREAM read_files(..)) and write FROM STREAM(changes)",
            );
        }
        let source = self.dataset_name()?;
        if parenthesized {
            self.expect_token(Token::RParen)?;
        }
        Ok(source)
    }

    /// `(a, b)`, `a, b` or `* EXCEPT (a, b)`.
    fn column_selection(&mut self, clause: &str) -> Parsed<ColumnSelection> {
        if self.eat_token(&Token::Mul) {
            if !self.eat("EXCEPT") {
                return self.error(format!(
                    "expected EXCEPT (columns) after {clause} *; leave {clause} out to keep every column"
                ));
            }
            return Ok(ColumnSelection::Except(self.name_list()?));
        }
        if self.peek().is_some_and(|t| t.token == Token::LParen) {
            return Ok(ColumnSelection::Only(self.name_list()?));
        }
        let mut names = Vec::new();
        loop {
            match self.peek().and_then(Tok::ident) {
                Some(name) if !self.clause_starts(self.pos) => {
                    names.push(name.to_string());
                    self.pos += 1;
                }
                _ => {
                    return self.error(format!(
                        "expected (columns) or * EXCEPT (columns) after {clause}, found {}",
                        self.describe()
                    ));
                }
            }
            if !self.eat_token(&Token::Comma) {
                return Ok(ColumnSelection::Only(names));
            }
        }
    }

    /// Whether the token at `index` starts the next AUTO CDC clause.
    fn clause_starts(&self, index: usize) -> bool {
        let Some(word) = self.tokens.get(index).and_then(Tok::keyword) else {
            return false;
        };
        let next = self.tokens.get(index + 1);
        let next_is = |keyword: &str| next.is_some_and(|t| t.is(keyword));
        match word.as_str() {
            "KEYS" => next.is_some_and(|t| t.token == Token::LParen),
            "IGNORE" => next_is("NULL"),
            "APPLY" | "STORED" => next_is("AS"),
            "SEQUENCE" => next_is("BY"),
            "SYSTEM" => next_is("SEQUENCE"),
            "TRACK" => next_is("HISTORY"),
            "COLUMNS" => next.is_some_and(|t| {
                matches!(t.token, Token::LParen | Token::Mul) || t.is("TO") || t.ident().is_some()
            }),
            _ => false,
        }
    }

    /// A SQL expression up to the next clause (outside parentheses), as DataFusion reads
    /// it: a double-quoted `"text"` is a string, as in Spark.
    fn cdc_expression(&mut self, what: &str) -> Parsed<String> {
        let first = self.pos;
        let mut depth = 0usize;
        while let Some(token) = self.peek() {
            match token.token {
                Token::LParen => depth += 1,
                Token::RParen if depth == 0 => {
                    return self.error("this `)` closes no `(`");
                }
                Token::RParen => depth -= 1,
                _ if depth == 0 && self.clause_starts(self.pos) => break,
                _ => {}
            }
            self.pos += 1;
        }
        if self.pos == first {
            return self.error(format!("expected {what}, found {}", self.describe()));
        }
        if depth > 0 {
            return self.error_at(first, "a `(` in this expression is not closed");
        }
        let start = self.tokens[first].range.start;
        let mut text = String::new();
        let mut copied = start;
        for token in &self.tokens[first..self.pos] {
            let string = match &token.token {
                Token::DoubleQuotedString(s) => Some(s.as_str()),
                Token::Word(w) if w.quote_style == Some('"') => Some(w.value.as_str()),
                _ => None,
            };
            if let Some(s) = string {
                text.push_str(&self.sub.text[copied..token.range.start]);
                text.push('\'');
                text.push_str(&super::text::unescape(s).replace('\'', "''"));
                text.push('\'');
                copied = token.range.end;
            }
        }
        let end = self.tokens[self.pos - 1].range.end;
        text.push_str(&self.sub.text[copied..end]);
        Ok(text.trim().to_string())
    }
}
