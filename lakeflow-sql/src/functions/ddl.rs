//! Spark's type strings, as `from_json` and `schema =>` take them: `a INT, b STRING`,
//! `struct<a:int,b:array<string>>`, `array<struct<name: string, n: int>>`, `map<string,int>`.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Fields, TimeUnit};
use datafusion::common::{Result, plan_err};

/// Parses a Spark type string: a column list is a struct of those columns.
pub fn parse_ddl(text: &str) -> Result<DataType> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
        text,
    };
    p.space();
    let t = if p.looks_like_column_list() {
        DataType::Struct(p.fields(None)?)
    } else {
        p.data_type()?
    };
    p.space();
    if p.i < p.s.len() {
        return p.error("unexpected text");
    }
    Ok(t)
}

/// Parses a column list (`a INT, b STRING`) into fields.
pub fn parse_columns(text: &str) -> Result<Fields> {
    match parse_ddl(text)? {
        DataType::Struct(fields) => Ok(fields),
        other => {
            plan_err!("expected a column list such as 'a INT, b STRING', found the type {other}")
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    text: &'a str,
}

impl Parser<'_> {
    fn error<T>(&self, what: &str) -> Result<T> {
        plan_err!(
            "cannot read the type string `{}`: {what} at character {}",
            self.text,
            self.i + 1
        )
    }

    fn space(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.space();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn word(&mut self) -> Option<String> {
        self.space();
        if self.s.get(self.i) == Some(&b'`') {
            let start = self.i + 1;
            let end = self.s[start..].iter().position(|&c| c == b'`')? + start;
            self.i = end + 1;
            return Some(self.text[start..end].to_string());
        }
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_')
        {
            self.i += 1;
        }
        (self.i > start).then(|| self.text[start..self.i].to_string())
    }

    fn number(&mut self) -> Option<u64> {
        self.space();
        let start = self.i;
        while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
            self.i += 1;
        }
        self.text[start..self.i].parse().ok()
    }

    /// `name TYPE, ...` (vs a bare type such as `array<int>`).
    fn looks_like_column_list(&mut self) -> bool {
        let save = self.i;
        let first = self.word();
        let is_list = match first {
            Some(w) => {
                self.space();
                let next = self.s.get(self.i).copied();
                let lower = w.to_ascii_lowercase();
                !(matches!(next, Some(b'<') | Some(b'(')) || next.is_none() && is_type_name(&lower))
            }
            None => false,
        };
        self.i = save;
        is_list
    }

    /// Fields up to `close` (or the end): `name[:] type [NOT NULL] [COMMENT '..']`.
    fn fields(&mut self, close: Option<u8>) -> Result<Fields> {
        let mut fields = Vec::new();
        loop {
            self.space();
            if close.is_some_and(|c| self.s.get(self.i) == Some(&c)) || self.i >= self.s.len() {
                break;
            }
            let Some(name) = self.word() else {
                return self.error("expected a field name");
            };
            self.eat(b':');
            let t = self.data_type()?;
            let mut nullable = true;
            let save = self.i;
            match self.word().map(|w| w.to_ascii_uppercase()).as_deref() {
                Some("NOT") => {
                    if self.word().map(|w| w.to_ascii_uppercase()).as_deref() != Some("NULL") {
                        return self.error("expected NULL after NOT");
                    }
                    nullable = false;
                }
                Some("COMMENT") => {
                    self.space();
                    if self.s.get(self.i) == Some(&b'\'') {
                        let start = self.i + 1;
                        match self.s[start..].iter().position(|&c| c == b'\'') {
                            Some(end) => self.i = start + end + 1,
                            None => return self.error("unterminated comment"),
                        }
                    }
                }
                _ => self.i = save,
            }
            fields.push(Field::new(name, t, nullable));
            if !self.eat(b',') {
                break;
            }
        }
        Ok(Fields::from(fields))
    }

    fn data_type(&mut self) -> Result<DataType> {
        let Some(name) = self.word() else {
            return self.error("expected a type");
        };
        let lower = name.to_ascii_lowercase();
        Ok(match lower.as_str() {
            "string" | "varchar" | "char" | "text" => {
                if self.eat(b'(') {
                    self.number();
                    if !self.eat(b')') {
                        return self.error("expected `)`");
                    }
                }
                DataType::Utf8
            }
            "int" | "integer" => DataType::Int32,
            "bigint" | "long" => DataType::Int64,
            "smallint" | "short" => DataType::Int16,
            "tinyint" | "byte" => DataType::Int8,
            "double" => DataType::Float64,
            "float" | "real" => DataType::Float32,
            "boolean" | "bool" => DataType::Boolean,
            "date" => DataType::Date32,
            "timestamp" | "timestamp_ltz" => {
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            }
            "timestamp_ntz" => DataType::Timestamp(TimeUnit::Microsecond, None),
            "binary" => DataType::Binary,
            "decimal" | "dec" | "numeric" => {
                let (mut precision, mut scale) = (10u8, 0i8);
                if self.eat(b'(') {
                    precision = self.number().unwrap_or(10) as u8;
                    if self.eat(b',') {
                        scale = self.number().unwrap_or(0) as i8;
                    }
                    if !self.eat(b')') {
                        return self.error("expected `)`");
                    }
                }
                DataType::Decimal128(precision, scale)
            }
            "array" => {
                if !self.eat(b'<') {
                    return self.error("expected `<` after array");
                }
                let item = self.data_type()?;
                if !self.eat(b'>') {
                    return self.error("expected `>`");
                }
                DataType::List(Arc::new(Field::new_list_field(item, true)))
            }
            "map" => {
                if !self.eat(b'<') {
                    return self.error("expected `<` after map");
                }
                let key = self.data_type()?;
                if !self.eat(b',') {
                    return self.error("expected `,` between the key and value types");
                }
                let value = self.data_type()?;
                if !self.eat(b'>') {
                    return self.error("expected `>`");
                }
                let entries = Field::new(
                    "entries",
                    DataType::Struct(Fields::from(vec![
                        Field::new("key", key, false),
                        Field::new("value", value, true),
                    ])),
                    false,
                );
                DataType::Map(Arc::new(entries), false)
            }
            "struct" => {
                if !self.eat(b'<') {
                    return self.error("expected `<` after struct");
                }
                let fields = self.fields(Some(b'>'))?;
                if !self.eat(b'>') {
                    return self.error("expected `>`");
                }
                DataType::Struct(fields)
            }
            _ => return self.error(&format!("unknown type `{name}`")),
        })
    }
}

fn is_type_name(word: &str) -> bool {
    matches!(
        word,
        "string"
            | "int"
            | "integer"
            | "bigint"
            | "long"
            | "smallint"
            | "short"
            | "tinyint"
            | "byte"
            | "double"
            | "float"
            | "real"
            | "boolean"
            | "bool"
            | "date"
            | "timestamp"
            | "timestamp_ntz"
            | "timestamp_ltz"
            | "binary"
            | "decimal"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_spark_type_strings() {
        let t = parse_ddl("a INT, b STRING").unwrap();
        assert_eq!(
            t.to_string(),
            DataType::Struct(Fields::from(vec![
                Field::new("a", DataType::Int32, true),
                Field::new("b", DataType::Utf8, true),
            ]))
            .to_string()
        );
        let t = parse_ddl("array<struct<name: string, passed_records: int>>").unwrap();
        assert!(matches!(t, DataType::List(_)));
        assert!(matches!(
            parse_ddl("map<string,int>").unwrap(),
            DataType::Map(..)
        ));
        assert!(matches!(
            parse_ddl("decimal(10,2)").unwrap(),
            DataType::Decimal128(10, 2)
        ));
        assert!(parse_ddl("a WIBBLE").is_err());
    }
}
