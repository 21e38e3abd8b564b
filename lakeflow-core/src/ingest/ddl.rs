//! Spark's DDL for a schema, as the `schema` and `schemaHints` options give it:
//! `id INT, name STRING, tags ARRAY<STRING>, amount DECIMAL(10,2), address STRUCT<city: STRING>`.
//! Column names may be back-quoted; `NOT NULL` and `COMMENT '..'` are accepted.
//!
//! Types map to Arrow as Spark's map to Delta's: STRING is Utf8, TIMESTAMP is microseconds in
//! UTC, TIMESTAMP_NTZ microseconds without a zone.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, TimeUnit};

/// Parses a schema in Spark DDL; the error says where and what was expected.
pub fn parse_schema(ddl: &str) -> Result<Schema, String> {
    let mut p = Parser {
        text: ddl,
        chars: ddl.char_indices().collect(),
        pos: 0,
    };
    let fields = p.fields(None)?;
    p.skip_space();
    if p.pos < p.chars.len() {
        return Err(p.error("expected `,` and another column"));
    }
    if fields.is_empty() {
        return Err("the schema names no column; write it as `a INT, b STRING`".into());
    }
    Ok(Schema::new(fields))
}

/// A Spark type name (`INT`, `ARRAY<STRING>`, ..).
pub fn parse_type(text: &str) -> Result<DataType, String> {
    let mut p = Parser {
        text,
        chars: text.char_indices().collect(),
        pos: 0,
    };
    let t = p.data_type()?;
    p.skip_space();
    if p.pos < p.chars.len() {
        return Err(p.error("unexpected text after the type"));
    }
    Ok(t)
}

struct Parser<'a> {
    text: &'a str,
    chars: Vec<(usize, char)>,
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, expected: &str) -> String {
        let at = self.chars.get(self.pos).map_or(self.text.len(), |c| c.0);
        format!(
            "{expected} at position {} of `{}`",
            at + 1,
            self.text.trim()
        )
    }

    fn skip_space(&mut self) {
        while self
            .chars
            .get(self.pos)
            .is_some_and(|c| c.1.is_whitespace())
        {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_space();
        if self.chars.get(self.pos).is_some_and(|x| x.1 == c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn word(&mut self) -> Option<String> {
        self.skip_space();
        let start = self.pos;
        while self
            .chars
            .get(self.pos)
            .is_some_and(|c| c.1.is_alphanumeric() || c.1 == '_')
        {
            self.pos += 1;
        }
        (self.pos > start).then(|| self.chars[start..self.pos].iter().map(|c| c.1).collect())
    }

    fn name(&mut self) -> Result<String, String> {
        self.skip_space();
        if self.eat('`') {
            let mut name = String::new();
            loop {
                match self.chars.get(self.pos) {
                    None => return Err(self.error("expected a closing backquote")),
                    Some((_, '`')) if self.chars.get(self.pos + 1).is_some_and(|c| c.1 == '`') => {
                        name.push('`');
                        self.pos += 2;
                    }
                    Some((_, '`')) => {
                        self.pos += 1;
                        return Ok(name);
                    }
                    Some((_, c)) => {
                        name.push(*c);
                        self.pos += 1;
                    }
                }
            }
        }
        self.word()
            .ok_or_else(|| self.error("expected a column name"))
    }

    fn number(&mut self) -> Result<i64, String> {
        self.skip_space();
        let negative = self.eat('-');
        let digits = self.word().unwrap_or_default();
        let n: i64 = digits
            .parse()
            .map_err(|_| self.error("expected a number"))?;
        Ok(if negative { -n } else { n })
    }

    /// Columns separated by `,` up to `end` (or the end of the text).
    fn fields(&mut self, end: Option<char>) -> Result<Vec<Field>, String> {
        let mut fields = Vec::new();
        loop {
            self.skip_space();
            if self.pos >= self.chars.len() || end.is_some_and(|e| self.chars[self.pos].1 == e) {
                return Ok(fields);
            }
            let name = self.name()?;
            // STRUCT<a: INT> puts a colon after the name.
            self.eat(':');
            let data_type = self.data_type()?;
            let mut nullable = true;
            loop {
                let saved = self.pos;
                match self.word().map(|w| w.to_ascii_uppercase()).as_deref() {
                    Some("NOT") => {
                        if self.word().map(|w| w.to_ascii_uppercase()).as_deref() != Some("NULL") {
                            return Err(self.error("expected NULL after NOT"));
                        }
                        nullable = false;
                    }
                    Some("COMMENT") => {
                        self.skip_space();
                        let quote = self.chars.get(self.pos).map(|c| c.1);
                        if !matches!(quote, Some('\'' | '"')) {
                            return Err(self.error("expected a quoted comment"));
                        }
                        self.pos += 1;
                        while self.chars.get(self.pos).is_some_and(|c| Some(c.1) != quote) {
                            self.pos += 1;
                        }
                        if !self.eat(quote.unwrap_or('\'')) {
                            return Err(self.error("expected the comment's closing quote"));
                        }
                    }
                    _ => {
                        self.pos = saved;
                        break;
                    }
                }
            }
            fields.push(Field::new(name, data_type, nullable));
            if !self.eat(',') {
                return Ok(fields);
            }
        }
    }

    fn data_type(&mut self) -> Result<DataType, String> {
        let Some(word) = self.word() else {
            return Err(self.error("expected a type such as INT or STRING"));
        };
        Ok(match word.to_ascii_uppercase().as_str() {
            "STRING" | "TEXT" => DataType::Utf8,
            "VARCHAR" | "CHAR" => {
                if self.eat('(') {
                    self.number()?;
                    if !self.eat(')') {
                        return Err(self.error("expected `)`"));
                    }
                }
                DataType::Utf8
            }
            "BOOLEAN" | "BOOL" => DataType::Boolean,
            "TINYINT" | "BYTE" => DataType::Int8,
            "SMALLINT" | "SHORT" => DataType::Int16,
            "INT" | "INTEGER" => DataType::Int32,
            "BIGINT" | "LONG" => DataType::Int64,
            "FLOAT" | "REAL" => DataType::Float32,
            "DOUBLE" => DataType::Float64,
            "DATE" => DataType::Date32,
            "TIMESTAMP" | "TIMESTAMP_LTZ" => {
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            }
            "TIMESTAMP_NTZ" => DataType::Timestamp(TimeUnit::Microsecond, None),
            "BINARY" => DataType::Binary,
            "DECIMAL" | "DEC" | "NUMERIC" => {
                let (mut precision, mut scale) = (10, 0);
                if self.eat('(') {
                    precision = self.number()?;
                    if self.eat(',') {
                        scale = self.number()?;
                    }
                    if !self.eat(')') {
                        return Err(self.error("expected `)` after the decimal's precision"));
                    }
                }
                if !(1..=38).contains(&precision) || scale < 0 || scale > precision {
                    return Err(format!(
                        "DECIMAL({precision},{scale}) is not a decimal type: precision is 1 to 38, scale 0 to the precision"
                    ));
                }
                DataType::Decimal128(precision as u8, scale as i8)
            }
            "ARRAY" => {
                if !self.eat('<') {
                    return Err(self.error("expected `<` after ARRAY"));
                }
                let item = self.data_type()?;
                if !self.eat('>') {
                    return Err(self.error("expected `>` closing ARRAY<"));
                }
                DataType::List(Arc::new(Field::new("element", item, true)))
            }
            "MAP" => {
                if !self.eat('<') {
                    return Err(self.error("expected `<` after MAP"));
                }
                let key = self.data_type()?;
                if !self.eat(',') {
                    return Err(self.error("expected `,` between the MAP's key and value types"));
                }
                let value = self.data_type()?;
                if !self.eat('>') {
                    return Err(self.error("expected `>` closing MAP<"));
                }
                let entries = Field::new(
                    "key_value",
                    DataType::Struct(Fields::from(vec![
                        Field::new("key", key, false),
                        Field::new("value", value, true),
                    ])),
                    false,
                );
                DataType::Map(Arc::new(entries), false)
            }
            "STRUCT" => {
                if !self.eat('<') {
                    return Err(self.error("expected `<` after STRUCT"));
                }
                let fields = self.fields(Some('>'))?;
                if !self.eat('>') {
                    return Err(self.error("expected `>` closing STRUCT<"));
                }
                DataType::Struct(Fields::from(fields))
            }
            other => {
                return Err(format!(
                    "`{other}` is not a Spark type; use STRING, INT, BIGINT, DOUBLE, DECIMAL(p,s), BOOLEAN, DATE, TIMESTAMP, ARRAY<..>, STRUCT<..> or MAP<..>"
                ));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spark_ddl_parses() {
        let schema = parse_schema(
            "id INT NOT NULL, `full name` STRING COMMENT 'x', amount DECIMAL(10,2), tags ARRAY<STRING>, address STRUCT<city: STRING, zip INT>, at TIMESTAMP",
        )
        .unwrap();
        let names: Vec<_> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(
            names,
            ["id", "full name", "amount", "tags", "address", "at"]
        );
        assert!(!schema.field(0).is_nullable());
        assert_eq!(schema.field(2).data_type(), &DataType::Decimal128(10, 2));
        let DataType::Struct(inner) = schema.field(4).data_type() else {
            panic!("a struct")
        };
        assert_eq!(inner[1].data_type(), &DataType::Int32);
    }

    #[test]
    fn mistakes_say_what_was_expected() {
        let e = parse_schema("a INTEGR").unwrap_err();
        assert!(e.contains("`INTEGR` is not a Spark type"), "{e}");
        let e = parse_schema("a INT b STRING").unwrap_err();
        assert!(e.contains("expected `,`"), "{e}");
        assert!(parse_schema("").is_err());
        assert!(parse_schema("a ARRAY<INT").is_err());
    }
}
