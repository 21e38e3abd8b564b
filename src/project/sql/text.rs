//! The text of a SQL file: statements split at `;` outside quotes and comments, line and
//! column positions, `${key}` substitution with the way back to file offsets, and tokens.

use std::ops::Range;

use datafusion::sql::sqlparser::tokenizer::Token;

/// Byte ranges of the statements of `text`, split at `;` outside quotes and comments;
/// statements of only whitespace and comments are left out.
pub(super) fn split_statements(text: &str) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let mut code = false;
    let mut push = |start: usize, end: usize, code: bool| {
        if code {
            out.push(start..end);
        }
    };
    while i < bytes.len() {
        match bytes[i] {
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                let line_start = i;
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                // A Databricks notebook exported as SQL: each cell ends a statement, with or
                // without a `;`.
                let comment = text[line_start..i].trim_end();
                let at_line_start = text[..line_start]
                    .rsplit('\n')
                    .next()
                    .is_some_and(|before| before.trim().is_empty());
                if at_line_start && comment.starts_with("-- COMMAND ---") {
                    push(start, line_start, code);
                    start = i;
                    code = false;
                }
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i += 2;
                continue;
            }
            quote @ (b'\'' | b'"' | b'`') => {
                code = true;
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    if bytes[i] == b'\\' && quote != b'`' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b';' => {
                push(start, i, code);
                start = i + 1;
                code = false;
            }
            c if !c.is_ascii_whitespace() => code = true,
            _ => {}
        }
        i += 1;
    }
    push(start, text.len(), code);
    out
}

/// Line starts of a text, to turn byte offsets into lines and columns and back.
pub(super) struct LineIndex {
    pub(super) starts: Vec<usize>,
}

impl LineIndex {
    pub(super) fn new(text: &str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { starts }
    }

    /// The 1-based line and column (in characters) of byte `offset`.
    pub(super) fn position(&self, text: &str, offset: usize) -> (usize, usize) {
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts[line - 1];
        let column = text
            .get(start..offset.min(text.len()))
            .map_or(1, |s| s.chars().count() + 1);
        (line, column)
    }

    /// The byte offset of a 1-based line and column (in characters).
    pub(super) fn offset(&self, text: &str, line: u64, column: u64) -> usize {
        let Some(&start) = self.starts.get((line.max(1) - 1) as usize) else {
            return text.len();
        };
        text[start..]
            .char_indices()
            .nth((column.max(1) - 1) as usize)
            .map_or(text.len(), |(i, _)| start + i)
    }
}

/// A statement after `${key}` substitution, with the way back to file offsets.
pub(super) struct Substituted {
    pub(super) text: String,
    /// (offset in `text`, offset in the file, length, whether it is a substituted value).
    pub(super) segments: Vec<(usize, usize, usize, bool)>,
}

impl Substituted {
    /// The file offset of `offset` in the substituted text; inside a value, its `${`.
    pub(super) fn file_offset(&self, offset: usize) -> usize {
        for &(at, file, len, value) in &self.segments {
            if offset < at + len || (offset == at + len && !value) {
                return if value {
                    file
                } else {
                    file + offset.saturating_sub(at)
                };
            }
        }
        self.segments
            .last()
            .map_or(0, |&(_, file, len, _)| file + len)
    }
}

/// A token of the statement with its byte range in the substituted text.
#[derive(Debug, Clone)]
pub(super) struct Tok {
    pub(super) token: Token,
    pub(super) range: Range<usize>,
}

impl Tok {
    /// The unquoted word, upper-cased, when the token is one.
    pub(super) fn keyword(&self) -> Option<String> {
        match &self.token {
            Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
            _ => None,
        }
    }

    pub(super) fn is(&self, keyword: &str) -> bool {
        self.keyword().as_deref() == Some(keyword)
    }

    /// The text of an identifier, quoted or not.
    pub(super) fn ident(&self) -> Option<&str> {
        match &self.token {
            Token::Word(w) => Some(&w.value),
            _ => None,
        }
    }

    /// The value of a string literal (single or double quoted).
    pub(super) fn string(&self) -> Option<String> {
        match &self.token {
            Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => Some(unescape(s)),
            // Spark reads "text" as a string; sqlparser's generic dialect as an identifier.
            Token::Word(w) if w.quote_style == Some('"') => Some(unescape(&w.value)),
            _ => None,
        }
    }
}

/// Resolves the backslash escapes and doubled quotes of a raw string literal.
pub(super) fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            },
            '\'' if chars.peek() == Some(&'\'') => {
                chars.next();
                out.push('\'');
            }
            c => out.push(c),
        }
    }
    out
}
