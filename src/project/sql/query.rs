//! The query after `AS`: `STREAM(x)`, `STREAM x` and `read_files(..)` / `cloud_files(..)`
//! become names bound to lakeflow readers, and the pipeline's own qualifiers are removed;
//! the rest of the text goes to DataFusion unchanged.

use std::ops::Range;
use std::path::Path;

use datafusion::sql::sqlparser::tokenizer::Token;

use super::statement::{Parsed, StatementParser, matches_name};
use super::text::{Tok, unescape};
use super::{SqlQuery, TableSource};

impl StatementParser<'_, '_> {
    /// The query from the current token to the end of the statement, with streaming and
    /// file reads replaced by bound names and the pipeline's qualifiers removed.
    pub(super) fn query(&mut self) -> Parsed<SqlQuery> {
        let first = self.pos;
        if first >= self.tokens.len() {
            return self.error("expected a query after AS");
        }
        let mut edits: Vec<(Range<usize>, String)> = Vec::new();
        let mut tables: Vec<(String, TableSource)> = Vec::new();
        let mut watermark: Option<(String, i64)> = None;
        let mut in_from = false;
        let mut i = first;
        while i < self.tokens.len() {
            let token = &self.tokens[i];
            let keyword = token.keyword();
            match keyword.as_deref() {
                Some("FROM" | "JOIN") => in_from = true,
                Some(
                    "SELECT" | "WHERE" | "GROUP" | "HAVING" | "ORDER" | "LIMIT" | "ON" | "USING"
                    | "UNION" | "EXCEPT" | "INTERSECT" | "WINDOW" | "QUALIFY",
                ) => in_from = false,
                _ => {}
            }
            let next_is =
                |k: usize, t: &Token| self.tokens.get(i + k).is_some_and(|x| &x.token == t);
            let alias_name = format!("__lakeflow_source_{}", tables.len());
            // `FROM STREAM(x) WATERMARK ts DELAY OF INTERVAL 10 seconds` (Spark 4): the
            // clause leaves the text and becomes the definition's watermark.
            if in_from
                && token.is("WATERMARK")
                && self.tokens.get(i + 1).is_some_and(|t| t.ident().is_some())
            {
                let (column, delay, after) = self.watermark_at(i)?;
                if watermark.replace((column, delay)).is_some() {
                    return self.error_at(i, "a query takes one WATERMARK clause");
                }
                let end = self.tokens[after - 1].range.end;
                edits.push((token.range.start..end, " ".to_string()));
                i = after;
                continue;
            }
            // STREAM(x), STREAM(LIVE.x), STREAM x, STREAM read_files(..)
            if token.is("STREAM") {
                let parenthesized = next_is(1, &Token::LParen);
                let bare = in_from
                    && i > first
                    && self.tokens.get(i + 1).is_some_and(|t| {
                        t.ident().is_some()
                            && !t
                                .keyword()
                                .is_some_and(|k| CLAUSE_WORDS.contains(&k.as_str()))
                    });
                if parenthesized || bare {
                    let inner = if parenthesized { i + 2 } else { i + 1 };
                    let (source, name, after) = if let Some((source, after)) =
                        self.path_table_at(inner, true)
                    {
                        // Spark reads ``json.`path` `` whole even inside STREAM(..); new
                        // files are what `STREAM read_files(..)` reads.
                        if let TableSource::Files { path, .. } = &source {
                            return self.error_at(
                                    inner,
                                    format!(
                                        "a path table is a batch relation, also in STREAM(..); read the files that are new in each run with STREAM read_files('{path}', format => '{}') [INVALID_FLOW_QUERY_TYPE.BATCH_RELATION_FOR_STREAMING_TABLE]",
                                        self.tokens[inner].ident().unwrap_or_default().to_ascii_lowercase()
                                    ),
                                );
                        }
                        (source, None, after)
                    } else if self.is_file_call(inner) {
                        let (source, after) = self.file_call(inner, true)?;
                        (source, None, after)
                    } else {
                        let (name, after) = self.table_name_at(inner)?;
                        (TableSource::Stream(name.clone()), Some(name), after)
                    };
                    let end = if parenthesized {
                        if self
                            .tokens
                            .get(after)
                            .is_none_or(|t| t.token != Token::RParen)
                        {
                            return self.error_at(after, "expected `)` closing STREAM(");
                        }
                        after + 1
                    } else {
                        after
                    };
                    let replacement = match (&name, self.has_alias(end)) {
                        (Some(name), false) => format!("{alias_name} AS {}", quote(name)),
                        _ => alias_name.clone(),
                    };
                    edits.push((
                        token.range.start..self.tokens[end - 1].range.end,
                        replacement,
                    ));
                    tables.push((alias_name, source));
                    i = end;
                    continue;
                }
            }
            // parquet.`path`, delta.`path`, ...: files by path, relative to the project
            if in_from && let Some((source, after)) = self.path_table_at(i, false) {
                edits.push((
                    token.range.start..self.tokens[after - 1].range.end,
                    alias_name.clone(),
                ));
                tables.push((alias_name, source));
                i = after;
                continue;
            }
            // read_files(..) and the legacy cloud_files(..)
            if self.is_file_call(i) && in_from {
                let (source, after) = self.file_call(i, false)?;
                edits.push((
                    token.range.start..self.tokens[after - 1].range.end,
                    alias_name.clone(),
                ));
                tables.push((alias_name, source));
                i = after;
                continue;
            }
            // LIVE.x and the pipeline's own catalog and database as qualifiers
            if next_is(1, &Token::Period)
                && self.tokens.get(i + 2).is_some_and(|t| t.ident().is_some())
            {
                let qualifier = token.ident().unwrap_or_default();
                let home_schema = |d: &str| matches_name(&self.state.home_database, d);
                let own_catalog = |c: &str| {
                    matches_name(&self.state.home_catalog, c)
                        || matches_name(&self.state.catalog, c)
                };
                // `catalog.db.x` with the pipeline's catalog: `db.x` is the pipeline's dataset
                // `x` when `db` is its schema, and dataset `db.x` of another schema otherwise
                // (never the pipeline's `x`).
                let catalog_then_schema = in_from
                    && !token.is("LIVE")
                    && own_catalog(qualifier)
                    && next_is(3, &Token::Period)
                    && self.tokens[i + 2].ident().is_some()
                    && self.tokens.get(i + 4).is_some_and(|t| t.ident().is_some());
                if catalog_then_schema {
                    let schema = self.tokens[i + 2].ident().unwrap_or_default();
                    let strip_to = if home_schema(schema) {
                        self.tokens[i + 3].range.end
                    } else {
                        self.tokens[i + 1].range.end
                    };
                    edits.push((token.range.start..strip_to, String::new()));
                    i += if home_schema(schema) { 4 } else { 2 };
                    continue;
                }
                let own = token.is("LIVE") || (in_from && home_schema(qualifier));
                if own && token.ident().is_some() {
                    edits.push((
                        token.range.start..self.tokens[i + 1].range.end,
                        String::new(),
                    ));
                    i += 2;
                    continue;
                }
            }
            i += 1;
        }
        let start = self.tokens[first].range.start;
        let end = self.tokens.last().map_or(start, |t| t.range.end);
        let mut text = self.sub.text[start..end].to_string();
        // Where each token outside the edits lands in the edited text, so that an error
        // DataFusion reports at a line and column of `text` names the file's position.
        let mut positions = Vec::new();
        for (index, token) in self.tokens.iter().enumerate().skip(first) {
            let at = token.range.start;
            if edits.iter().any(|(r, _)| r.contains(&at)) {
                continue;
            }
            let shift: isize = edits
                .iter()
                .filter(|(r, _)| r.end <= at)
                .map(|(r, replacement)| replacement.len() as isize - r.len() as isize)
                .sum();
            let edited = (at - start) as isize + shift;
            positions.push((edited.max(0) as usize, self.location_of(index)));
        }
        for (range, replacement) in edits.into_iter().rev() {
            text.replace_range(range.start - start..range.end - start, &replacement);
        }
        self.pos = self.tokens.len();
        let ansi = self
            .state
            .configuration
            .get("spark.sql.ansi.enabled")
            .map(|v| v.trim().eq_ignore_ascii_case("true"));
        let time_zone = self
            .state
            .configuration
            .get("spark.sql.session.timeZone")
            .map(|v| v.trim().to_string());
        let schema = self
            .state
            .database
            .clone()
            .filter(|d| !matches_name(&self.state.home_database, d));
        Ok(SqlQuery {
            text,
            tables,
            positions,
            ansi,
            time_zone,
            schema,
            watermark,
        })
    }

    /// `WATERMARK column DELAY OF INTERVAL <n unit ...| 'n unit'>` at `index`: the column, the
    /// delay in microseconds and the token after the clause.
    fn watermark_at(&self, index: usize) -> Parsed<(String, i64, usize)> {
        let column = self.tokens[index + 1]
            .ident()
            .unwrap_or_default()
            .to_string();
        let mut at = index + 2;
        for word in ["DELAY", "OF", "INTERVAL"] {
            if !self.tokens.get(at).is_some_and(|t| t.is(word)) {
                return self.error_at(
                    at.min(self.tokens.len().saturating_sub(1)),
                    format!(
                        "expected `WATERMARK {column} DELAY OF INTERVAL 10 seconds`, missing {word}"
                    ),
                );
            }
            at += 1;
        }
        let mut text = String::new();
        while let Some(token) = self.tokens.get(at) {
            let piece = match &token.token {
                Token::Number(n, _) => n.clone(),
                Token::SingleQuotedString(s) => s.clone(),
                Token::Word(w)
                    if lakeflow_sql::functions::window::duration_micros(&format!(
                        "1 {}",
                        w.value
                    ))
                    .is_some() =>
                {
                    w.value.clone()
                }
                _ => break,
            };
            text.push_str(&piece);
            text.push(' ');
            at += 1;
        }
        match lakeflow_sql::functions::window::duration_micros(&text) {
            Some(delay) => Ok((column, delay, at)),
            None => self.error_at(
                index,
                format!(
                    "`{}` is not a delay; write it as `DELAY OF INTERVAL 10 seconds`",
                    text.trim()
                ),
            ),
        }
    }

    /// Whether a table alias follows token `index` (`AS x` or a plain word).
    pub(super) fn has_alias(&self, index: usize) -> bool {
        self.tokens.get(index).is_some_and(|t| {
            t.is("AS")
                || (t.ident().is_some()
                    && !t
                        .keyword()
                        .is_some_and(|k| CLAUSE_WORDS.contains(&k.as_str())))
        })
    }

    /// A dataset name at `index` (qualifiers of the pipeline removed); returns the token
    /// after it.
    pub(super) fn table_name_at(&mut self, index: usize) -> Parsed<(String, usize)> {
        let saved = self.pos;
        self.pos = index;
        let name = self.dataset_name();
        let after = self.pos;
        self.pos = saved;
        Ok((name?, after))
    }

    /// ``format.`path` `` at `index` (Spark's files-by-path table): the source and the token
    /// after it.
    pub(super) fn path_table_at(&self, index: usize, stream: bool) -> Option<(TableSource, usize)> {
        let format = self.tokens.get(index)?.ident()?.to_ascii_lowercase();
        if self.tokens.get(index + 1)?.token != Token::Period {
            return None;
        }
        let Token::Word(w) = &self.tokens.get(index + 2)?.token else {
            return None;
        };
        if w.quote_style != Some('`') {
            return None;
        }
        let path = self.absolute(&w.value);
        let source = match format.as_str() {
            "delta" => TableSource::Delta { path, stream },
            "parquet" => TableSource::Files {
                path,
                format: crate::parquet(),
                stream,
            },
            "json" => TableSource::Files {
                path,
                format: crate::json(),
                stream,
            },
            // Spark reads `csv.`path`` without a header line (columns _c0, _c1, ..).
            "csv" => TableSource::Files {
                path,
                format: crate::csv().has_header(false).into(),
                stream,
            },
            _ => return None,
        };
        Some((source, index + 3))
    }

    pub(super) fn is_file_call(&self, index: usize) -> bool {
        self.tokens
            .get(index)
            .is_some_and(|t| t.is("READ_FILES") || t.is("CLOUD_FILES"))
            && self
                .tokens
                .get(index + 1)
                .is_some_and(|t| t.token == Token::LParen)
    }

    /// `read_files('path' [, key => value ..])` or `cloud_files('path', 'format' [, map(..)])`
    /// at `index`; returns the source and the token after the closing `)`.
    pub(super) fn file_call(&mut self, index: usize, stream: bool) -> Parsed<(TableSource, usize)> {
        let legacy = self.tokens[index].is("CLOUD_FILES");
        let function = if legacy { "cloud_files" } else { "read_files" };
        let saved = self.pos;
        self.pos = index + 2;
        let result = self.file_call_args(function, legacy, stream || legacy);
        let after = self.pos;
        self.pos = saved;
        Ok((result?, after))
    }

    pub(super) fn file_call_args(
        &mut self,
        function: &str,
        legacy: bool,
        stream: bool,
    ) -> Parsed<TableSource> {
        let path_at = self.pos;
        let path = self.string(&format!("the path of {function}(..)"))?;
        let mut options: Vec<(String, String, usize)> = Vec::new();
        if legacy && self.eat_token(&Token::Comma) {
            let at = self.pos;
            options.push((
                "format".into(),
                self.string("the format of cloud_files(..)")?,
                at,
            ));
            if self.eat_token(&Token::Comma) {
                if !self.eat("MAP") {
                    return self.error("expected map('key', 'value', ..) with cloud_files options");
                }
                self.expect_token(Token::LParen)?;
                while !self.eat_token(&Token::RParen) {
                    let at = self.pos;
                    let key = self.string("an option name")?;
                    self.expect_token(Token::Comma)?;
                    let value = self.string("an option value")?;
                    options.push((key, value, at));
                    if !self.eat_token(&Token::Comma)
                        && self.peek().is_none_or(|t| t.token != Token::RParen)
                    {
                        return self
                            .error(format!("expected `,` or `)`, found {}", self.describe()));
                    }
                }
            }
        }
        while !legacy && self.eat_token(&Token::Comma) {
            let at = self.pos;
            let mut key = match self.next().and_then(Tok::ident) {
                Some(key) => key.to_string(),
                None => return self.error_at(at, "expected an option such as format => 'csv'"),
            };
            // cloudFiles.format => 'csv' without backquotes
            while self.eat_token(&Token::Period) {
                match self.next().and_then(Tok::ident) {
                    Some(part) => key = format!("{key}.{part}"),
                    None => {
                        return self.error_at(self.pos - 1, "expected the rest of the option name");
                    }
                }
            }
            if !self.eat_token(&Token::RArrow) {
                return self.error(format!(
                    "expected `=>` after option `{key}`, found {}",
                    self.describe()
                ));
            }
            let value = match self.next().map(|t| t.token.clone()) {
                Some(Token::SingleQuotedString(s) | Token::DoubleQuotedString(s)) => unescape(&s),
                Some(Token::Number(n, _)) => n,
                Some(Token::Word(w)) => w.value,
                _ => {
                    return self
                        .error_at(self.pos - 1, format!("expected a value for option `{key}`"));
                }
            };
            options.push((key, value, at));
        }
        self.expect_token(Token::RParen)?;
        let is_format = |k: &str| {
            k.eq_ignore_ascii_case("format") || k.eq_ignore_ascii_case("cloudFiles.format")
        };
        let path = self.absolute(&path);
        let inferred = Path::new(&path)
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let format = match options.iter().find(|(k, _, _)| is_format(k)) {
            Some((_, format, at)) => (format.to_ascii_lowercase(), *at),
            None => match inferred.as_deref() {
                Some(ext @ ("csv" | "json" | "parquet" | "txt")) => {
                    (ext.replace("txt", "text"), path_at)
                }
                Some("jsonl" | "ndjson") => ("json".to_string(), path_at),
                _ => {
                    return self.error_at(
                        path_at,
                        format!("say which format the files are in: {function}('{path}', format => 'csv') (csv, json, parquet, text or delta)"),
                    );
                }
            },
        };
        if format.0 == "delta" {
            return Ok(TableSource::Delta { path, stream });
        }
        let Some(ingest) = lakeflow_core::ingest::IngestFormat::parse(&format.0) else {
            return self.error_at(
                format.1,
                format!(
                    "format `{}` is not supported; use csv, json, parquet, text or delta",
                    format.0
                ),
            );
        };
        // read_files infers column types; Auto Loader (cloud_files) reads text as STRING.
        let mut file_options = if legacy {
            lakeflow_core::FileOptions::auto_loader(ingest)
        } else {
            lakeflow_core::FileOptions::for_format(ingest)
        };
        for (key, value, at) in &options {
            if is_format(key) {
                continue;
            }
            if let Err(message) = file_options.set(key, value) {
                return self.error_at(*at, format!("{function}: {message}"));
            }
        }
        if let Err(message) = file_options.check() {
            return self.error_at(path_at, format!("{function}: {message}"));
        }
        // Options that mean nothing here are warned about when the source is opened.
        // `_metadata` is a column of the rows only when the query asks for it, so that
        // `SELECT *` keeps the files' own columns.
        let metadata = self.tokens.iter().any(|t| {
            t.ident().is_some_and(|i| {
                i.eq_ignore_ascii_case(lakeflow_core::ingest::METADATA_COLUMN)
                    || i.eq_ignore_ascii_case("input_file_name")
            })
        });
        if metadata {
            file_options = file_options.with_metadata();
        }
        Ok(TableSource::Files {
            path,
            format: file_options.into(),
            stream,
        })
    }

    /// A path relative to the project root made absolute; URLs are left as they are.
    pub(super) fn absolute(&self, path: &str) -> String {
        crate::project::in_project(self.state.root, path)
    }
}

/// Words that end a table reference (so they are not an alias or a name after `STREAM`).
pub(super) const CLAUSE_WORDS: [&str; 22] = [
    "WHERE",
    "JOIN",
    "INNER",
    "LEFT",
    "RIGHT",
    "FULL",
    "CROSS",
    "NATURAL",
    "ON",
    "GROUP",
    "ORDER",
    "LIMIT",
    "HAVING",
    "UNION",
    "EXCEPT",
    "INTERSECT",
    "WINDOW",
    "LATERAL",
    "USING",
    "QUALIFY",
    "ANTI",
    "SEMI",
];

/// A name as a SQL identifier: bare when it is a plain lower-case word, else quoted.
pub(super) fn quote(name: &str) -> String {
    let plain = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.chars().next().is_some_and(|c| !c.is_ascii_digit());
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}
