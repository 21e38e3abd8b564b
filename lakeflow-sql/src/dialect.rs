//! The parser's dialect: Spark SQL as sqlparser reads it, with what Spark accepts and
//! sqlparser's Spark dialect does not — backslash escapes in string literals and
//! `* EXCEPT (t.col)` with qualified names.
//!
//! This module only parses; it never plans.

use std::any::TypeId;

use datafusion::common::{DataFusionError, Result};
use datafusion::sql::sqlparser::ast::{Expr, Statement};
use datafusion::sql::sqlparser::dialect::{Dialect, SparkSqlDialect};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer, Word};

/// sqlparser's Spark dialect with Spark's string escapes; `* EXCEPT (..)` is read as
/// `EXCLUDE`, whose names may be qualified.
#[derive(Debug, Default, Clone, Copy)]
pub struct SparkDialect;

impl Dialect for SparkDialect {
    fn dialect(&self) -> TypeId {
        TypeId::of::<SparkSqlDialect>()
    }
    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        ch == '`'
    }
    fn is_identifier_start(&self, ch: char) -> bool {
        ch.is_ascii_alphabetic() || ch == '_'
    }
    fn is_identifier_part(&self, ch: char) -> bool {
        ch.is_ascii_alphanumeric() || ch == '_'
    }
    fn supports_string_literal_backslash_escape(&self) -> bool {
        true
    }
    /// `12m_payer` is an identifier in Spark.
    fn supports_numeric_prefix(&self) -> bool {
        true
    }
    fn supports_filter_during_aggregation(&self) -> bool {
        true
    }
    fn supports_group_by_expr(&self) -> bool {
        true
    }
    fn supports_lambda_functions(&self) -> bool {
        true
    }
    fn supports_select_wildcard_exclude(&self) -> bool {
        true
    }
    fn supports_struct_literal(&self) -> bool {
        true
    }
    fn supports_nested_comments(&self) -> bool {
        true
    }
    fn supports_long_type_as_bigint(&self) -> bool {
        true
    }
    fn supports_values_as_table_factor(&self) -> bool {
        true
    }
    fn require_interval_qualifier(&self) -> bool {
        true
    }
    fn supports_bang_not_operator(&self) -> bool {
        true
    }
    fn supports_cte_without_as(&self) -> bool {
        true
    }
    /// `SELECT posexplode(x) AS (p, v)`.
    fn supports_select_item_multi_column_alias(&self) -> bool {
        true
    }
    fn supports_map_literal_with_angle_brackets(&self) -> bool {
        true
    }
    fn parse_infix(
        &self,
        parser: &mut Parser,
        expr: &Expr,
        precedence: u8,
    ) -> Option<Result<Expr, ParserError>> {
        SparkSqlDialect.parse_infix(parser, expr, precedence)
    }
}

/// The SQL type a Spark number suffix gives a literal (`1L`, `2S`, `3Y`, `1.5D`, `1.5F`,
/// `1.5BD`).
fn suffix_type(suffix: &str) -> Option<(&'static str, Keyword)> {
    Some(match suffix.to_ascii_uppercase().as_str() {
        "L" => ("BIGINT", Keyword::BIGINT),
        "S" => ("SMALLINT", Keyword::SMALLINT),
        "Y" => ("TINYINT", Keyword::TINYINT),
        "D" => ("DOUBLE", Keyword::DOUBLE),
        "F" => ("FLOAT", Keyword::FLOAT),
        "BD" => ("DECIMAL", Keyword::DECIMAL),
        _ => return None,
    })
}

fn word(value: &str, keyword: Keyword) -> Token {
    Token::Word(Word {
        value: value.into(),
        quote_style: None,
        keyword,
    })
}

/// The tokens of `sql`: `EXCEPT` after a `*` read as `EXCLUDE`, and typed number literals
/// (`1L`, `1.5D`, `2BD`) as casts.
pub fn tokens(sql: &str) -> Result<Vec<TokenWithSpan>> {
    let raw = Tokenizer::new(&SparkDialect, sql)
        .tokenize_with_location()
        .map_err(|e| DataFusionError::SQL(Box::new(e.into()), None))?;
    let mut tokens: Vec<TokenWithSpan> = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        // With identifiers that may start with digits, `10L` is one word.
        if let Token::Word(w) = &raw[i].token
            && w.quote_style.is_none()
            && let Some(split) = w.value.find(|c: char| !(c.is_ascii_digit() || c == '.'))
            && split > 0
            && w.value[..split].matches('.').count() <= 1
            && w.value[..split].chars().any(|c| c.is_ascii_digit())
            && let Some((t, keyword)) = suffix_type(&w.value[split..])
        {
            let span = raw[i].span;
            let digits = w.value[..split].to_string();
            let mut push = |token: Token| tokens.push(TokenWithSpan::new(token, span));
            push(word("CAST", Keyword::CAST));
            push(Token::LParen);
            push(Token::Number(digits.clone(), false));
            push(word("AS", Keyword::AS));
            push(word(t, keyword));
            if t == "DECIMAL" {
                let precision = digits.chars().filter(char::is_ascii_digit).count().max(1);
                let scale = digits.split_once('.').map_or(0, |(_, f)| f.len());
                push(Token::LParen);
                push(Token::Number(precision.max(scale).to_string(), false));
                push(Token::Comma);
                push(Token::Number(scale.to_string(), false));
                push(Token::RParen);
            }
            push(Token::RParen);
            i += 1;
            continue;
        }
        if let (Token::Number(n, _), Some(next)) = (&raw[i].token, raw.get(i + 1))
            && let Token::Word(w) = &next.token
            && w.quote_style.is_none()
            && next.span.start == raw[i].span.end
            && let Some((t, keyword)) = suffix_type(&w.value)
        {
            let span = raw[i].span;
            let mut push = |token: Token| tokens.push(TokenWithSpan::new(token, span));
            let decimal = t == "DECIMAL";
            push(word("CAST", Keyword::CAST));
            push(Token::LParen);
            push(Token::Number(n.clone(), false));
            push(word("AS", Keyword::AS));
            push(word(t, keyword));
            if decimal {
                // Spark types 1.50BD as decimal(3,2): as many digits as written.
                let digits = n.chars().filter(char::is_ascii_digit).count().max(1);
                let scale = n.split_once('.').map_or(0, |(_, f)| f.len());
                push(Token::LParen);
                push(Token::Number(digits.max(scale).to_string(), false));
                push(Token::Comma);
                push(Token::Number(scale.to_string(), false));
                push(Token::RParen);
            }
            push(Token::RParen);
            i += 2;
            continue;
        }
        tokens.push(raw[i].clone());
        i += 1;
    }
    let mut previous: Option<usize> = None;
    for i in 0..tokens.len() {
        if matches!(tokens[i].token, Token::Whitespace(_)) {
            continue;
        }
        // Spark reads `x OUTER JOIN y` (no LEFT, RIGHT or FULL) as `x AS outer JOIN y`.
        if let Token::Word(w) = &tokens[i].token
            && w.keyword == Keyword::OUTER
            && w.quote_style.is_none()
            && !previous.is_some_and(|p| {
                matches!(&tokens[p].token, Token::Word(p) if matches!(p.keyword, Keyword::LEFT | Keyword::RIGHT | Keyword::FULL))
            })
            && tokens[i + 1..]
                .iter()
                .find(|t| !matches!(t.token, Token::Whitespace(_)))
                .is_some_and(|t| matches!(&t.token, Token::Word(j) if j.keyword == Keyword::JOIN))
        {
            tokens[i].token = Token::Word(Word {
                value: "outer".into(),
                quote_style: Some('`'),
                keyword: Keyword::NoKeyword,
            });
        }
        let after_star = previous.is_some_and(|p| tokens[p].token == Token::Mul);
        if after_star
            && let Token::Word(w) = &tokens[i].token
            && w.keyword == Keyword::EXCEPT
        {
            tokens[i].token = Token::Word(Word {
                value: "EXCLUDE".into(),
                quote_style: None,
                keyword: Keyword::EXCLUDE,
            });
        }
        previous = Some(i);
    }
    Ok(tokens)
}

/// Parses one statement.
pub fn parse_statement(sql: &str) -> Result<Statement> {
    let mut parser = Parser::new(&SparkDialect).with_tokens_with_locations(tokens(sql)?);
    let statement = parser.parse_statement().map_err(parse_error)?;
    while parser.consume_token(&Token::SemiColon) {}
    if parser.peek_token_ref().token != Token::EOF {
        let found = parser.peek_token();
        return Err(parse_error(ParserError::ParserError(format!(
            "expected the end of the statement, found {} at {}",
            found.token, found.span.start
        ))));
    }
    Ok(statement)
}

/// Parses one expression.
pub fn parse_expr(sql: &str) -> Result<Expr> {
    let mut parser = Parser::new(&SparkDialect).with_tokens_with_locations(tokens(sql)?);
    let expr = parser.parse_expr().map_err(parse_error)?;
    if parser.peek_token_ref().token != Token::EOF {
        let found = parser.peek_token();
        return Err(parse_error(ParserError::ParserError(format!(
            "expected the end of the expression, found {} at {}",
            found.token, found.span.start
        ))));
    }
    Ok(expr)
}

fn parse_error(e: ParserError) -> DataFusionError {
    DataFusionError::SQL(Box::new(e), None)
}
