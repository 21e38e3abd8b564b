//! The syntax of the dataset attributes and of the expectations below them:
//! `#[table(name = "...", comment = "...", partition_cols = [...], table_properties = {...},
//! quarantine = true)]`, and `#[expect("name", "sql")]`, `#[expect_all({"name": "sql"})]`,
//! `#[expect_unique("name", ["col"])]` with their `_or_drop` and `_or_fail` forms.
//!
//! Owns which options and expectation attributes exist, which macro takes which, and the
//! shape of each value. What a value means (a valid dataset name, distinct partition columns,
//! SQL that parses) is `valid.rs`'s business. Parsing goes on after a bad option so that every
//! mistake is reported in one build. Depends on `syn` and `proc_macro2` only, so it is
//! unit-tested without a compiler session.

use proc_macro2::{Ident, Punct, Span, TokenStream, TokenTree};
use quote::ToTokens as _;
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{AttrStyle, Attribute, Error, Lit, LitBool, LitStr, Meta, Token};

/// Which dataset macro is being expanded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Table,
    MaterializedView,
    StreamingTable,
    TemporaryView,
    AppendFlow,
}

impl Kind {
    /// Every dataset macro, in the order the docs list them.
    pub const ALL: [Kind; 5] = [
        Kind::Table,
        Kind::MaterializedView,
        Kind::StreamingTable,
        Kind::TemporaryView,
        Kind::AppendFlow,
    ];

    /// The attribute's name as the user writes it, without `#[]`.
    pub fn attr_name(self) -> &'static str {
        match self {
            Kind::Table => "table",
            Kind::MaterializedView => "materialized_view",
            Kind::StreamingTable => "streaming_table",
            Kind::TemporaryView => "temporary_view",
            Kind::AppendFlow => "append_flow",
        }
    }

    /// The macro whose attribute name is `name`, if any.
    pub fn from_attr_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.attr_name() == name)
    }

    /// The options this macro accepts. Temporary views are never stored, so storage
    /// options make no sense on them.
    fn options(self) -> &'static [Key] {
        match self {
            Kind::TemporaryView => &[Key::Name, Key::Comment],
            Kind::AppendFlow => &[Key::Name, Key::Comment, Key::Target, Key::Once],
            _ => &Key::TABLE,
        }
    }

    /// Why an option of another macro is not allowed on this one.
    fn refusal(self) -> &'static str {
        match self {
            Kind::TemporaryView => {
                "temporary views are never stored; remove it, or use `#[materialized_view]` to store the data"
            }
            Kind::AppendFlow => {
                "an append flow writes its target's table, whose options belong to the target's definition; remove it"
            }
            _ => "it belongs to `#[append_flow]`; remove it",
        }
    }
}

/// The options as written. `None` where an option was left out (or was malformed, in which
/// case an error was reported for it).
#[derive(Debug, Default)]
pub struct Options {
    /// `name = "..."`: the dataset name; the function's name when absent.
    pub name: Option<LitStr>,
    /// `comment = "..."`: a description stored with the dataset.
    pub comment: Option<LitStr>,
    /// `partition_cols = ["a", "b"]`: the columns the stored table is partitioned by.
    pub partition_cols: Option<Vec<LitStr>>,
    /// `table_properties = {"key": "value"}`: properties of the stored table, in order.
    pub table_properties: Option<Vec<(LitStr, LitStr)>>,
    /// `quarantine = true` or `quarantine = "table"`: where the rows drop rules remove go.
    pub quarantine: Option<Quarantine>,
    /// `target = "table"` (append flows): the streaming table the flow writes.
    pub target: Option<LitStr>,
    /// `once = true` (append flows): run the query a single time.
    pub once: Option<LitBool>,
}

/// `quarantine = ...` as written.
#[derive(Debug)]
pub struct Quarantine {
    /// The `quarantine` key, so that errors can cover `quarantine = value`.
    pub key: Ident,
    /// The value after `=`.
    pub value: QuarantineValue,
}

/// The value of `quarantine`.
#[derive(Debug)]
pub enum QuarantineValue {
    /// `true`: a companion table named `<dataset>_quarantine`; `false`: none.
    Flag(LitBool),
    /// `"table_name"`: a companion table with this name.
    Table(LitStr),
}

impl quote::ToTokens for QuarantineValue {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        match self {
            QuarantineValue::Flag(flag) => flag.to_tokens(tokens),
            QuarantineValue::Table(table) => table.to_tokens(tokens),
        }
    }
}

/// One option key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    Name,
    Comment,
    PartitionCols,
    TableProperties,
    Quarantine,
    Target,
    Once,
}

impl Key {
    /// The options of the stored dataset macros.
    const TABLE: [Key; 5] = [
        Key::Name,
        Key::Comment,
        Key::PartitionCols,
        Key::TableProperties,
        Key::Quarantine,
    ];

    const ALL: [Key; 7] = [
        Key::Name,
        Key::Comment,
        Key::PartitionCols,
        Key::TableProperties,
        Key::Quarantine,
        Key::Target,
        Key::Once,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Key::Name => "name",
            Key::Comment => "comment",
            Key::PartitionCols => "partition_cols",
            Key::TableProperties => "table_properties",
            Key::Quarantine => "quarantine",
            Key::Target => "target",
            Key::Once => "once",
        }
    }

    /// How the option is written, for error messages.
    fn example(self) -> &'static str {
        match self {
            Key::Name => r#"name = "silver_orders""#,
            Key::Comment => r#"comment = "Orders without test rows""#,
            Key::PartitionCols => r#"partition_cols = ["order_date", "country"]"#,
            Key::TableProperties => r#"table_properties = {"delta.appendOnly": "true"}"#,
            Key::Quarantine => r#"quarantine = true` or `quarantine = "orders_rejected""#,
            Key::Target => r#"target = "all_orders""#,
            Key::Once => "once = true",
        }
    }

    fn from_str(key: &str) -> Option<Key> {
        Key::ALL.into_iter().find(|k| k.as_str() == key)
    }
}

/// Parses the attribute's arguments (the tokens between the parentheses of `#[table(...)]`).
///
/// Returns the options that parsed and one error per mistake; an option with a mistake is
/// left out of the returned [`Options`].
pub fn parse(kind: Kind, args: TokenStream) -> (Options, Vec<Error>) {
    let mut options = Options::default();
    let mut errors = Vec::new();
    for entry in split_entries(args) {
        if let Err(error) = parse_entry(kind, entry, &mut options) {
            errors.push(error);
        }
    }
    (options, errors)
}

/// One `key = value` between commas, plus the comma that ended it.
struct Entry {
    tokens: Vec<TokenTree>,
    comma: Option<Punct>,
}

/// Splits the arguments at top-level commas. Commas inside `[...]` and `{...}` are inside a
/// group token, so they do not split. A trailing comma makes no empty entry.
fn split_entries(args: TokenStream) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut tokens = Vec::new();
    for token in args {
        match token {
            TokenTree::Punct(comma) if comma.as_char() == ',' => entries.push(Entry {
                tokens: std::mem::take(&mut tokens),
                comma: Some(comma),
            }),
            token => tokens.push(token),
        }
    }
    if !tokens.is_empty() {
        entries.push(Entry {
            tokens,
            comma: None,
        });
    }
    entries
}

fn parse_entry(kind: Kind, entry: Entry, options: &mut Options) -> syn::Result<()> {
    let mut tokens = entry.tokens.into_iter();
    let key = match tokens.next() {
        Some(TokenTree::Ident(key)) => key,
        Some(TokenTree::Literal(literal))
            if syn::parse2::<LitStr>(literal.to_token_stream()).is_ok() =>
        {
            return Err(Error::new_spanned(
                &literal,
                format!(
                    "options are written `key = value`: to name the dataset write `name = {literal}`"
                ),
            ));
        }
        Some(other) => {
            return Err(Error::new_spanned(
                &other,
                format!("expected an option name: {}", options_list(kind)),
            ));
        }
        None => {
            let comma = entry.comma.expect("an empty entry ends in a comma");
            return Err(Error::new_spanned(comma, "unexpected `,`: remove it"));
        }
    };
    let key_name = key.to_string();
    let key_kind = match Key::from_str(&key_name) {
        Some(k) if kind.options().contains(&k) => k,
        Some(k) => {
            return Err(Error::new_spanned(
                &key,
                format!(
                    "`{}` is not allowed on `#[{}]`: {}",
                    k.as_str(),
                    kind.attr_name(),
                    kind.refusal()
                ),
            ));
        }
        None => return Err(unknown_option(kind, &key)),
    };

    let value = match tokens.next() {
        Some(TokenTree::Punct(eq)) if eq.as_char() == '=' => {
            let value: TokenStream = tokens.collect();
            if value.is_empty() {
                return Err(Error::new_spanned(
                    eq,
                    format!("`{key_name} =` needs a value: `{}`", key_kind.example()),
                ));
            }
            value
        }
        Some(other) => {
            return Err(Error::new_spanned(
                other,
                format!("expected `=` after `{key_name}`: `{}`", key_kind.example()),
            ));
        }
        None => {
            return Err(Error::new_spanned(
                &key,
                format!("`{key_name}` needs a value: `{}`", key_kind.example()),
            ));
        }
    };

    let repeated = match key_kind {
        Key::Name => options.name.is_some(),
        Key::Comment => options.comment.is_some(),
        Key::PartitionCols => options.partition_cols.is_some(),
        Key::TableProperties => options.table_properties.is_some(),
        Key::Quarantine => options.quarantine.is_some(),
        Key::Target => options.target.is_some(),
        Key::Once => options.once.is_some(),
    };
    if repeated {
        return Err(Error::new_spanned(
            &key,
            format!("`{key_name}` is given twice: remove one"),
        ));
    }

    // A syn parse error points at the smallest offending token; keep its span, say the fix.
    let wrong_type = |error: Error, what: &str| {
        Error::new(
            error.span(),
            format!("`{key_name}` takes {what}: `{}`", key_kind.example()),
        )
    };
    match key_kind {
        Key::Name => {
            let lit = parse_str(value).map_err(|e| wrong_type(e, "a string literal"))?;
            options.name = Some(lit);
        }
        Key::Comment => {
            let lit = parse_str(value).map_err(|e| wrong_type(e, "a string literal"))?;
            options.comment = Some(lit);
        }
        Key::PartitionCols => {
            let list = parse_str_list
                .parse2(value)
                .map_err(|e| wrong_type(e, "a list of string literals"))?;
            options.partition_cols = Some(list);
        }
        Key::TableProperties => {
            let map = parse_str_map
                .parse2(value)
                .map_err(|e| wrong_type(e, "string keys and values in braces"))?;
            options.table_properties = Some(map);
        }
        Key::Quarantine => {
            let value = match syn::parse2::<Lit>(value) {
                Ok(Lit::Bool(flag)) => QuarantineValue::Flag(flag),
                Ok(Lit::Str(table)) => QuarantineValue::Table(table),
                Ok(other) => {
                    return Err(wrong_type(
                        Error::new_spanned(other, ""),
                        "`true`, `false` or a table name",
                    ));
                }
                Err(error) => return Err(wrong_type(error, "`true`, `false` or a table name")),
            };
            options.quarantine = Some(Quarantine { key, value });
        }
        Key::Target => {
            let lit = parse_str(value).map_err(|e| wrong_type(e, "a string literal"))?;
            options.target = Some(lit);
        }
        Key::Once => {
            let flag =
                syn::parse2::<LitBool>(value).map_err(|e| wrong_type(e, "`true` or `false`"))?;
            options.once = Some(flag);
        }
    }
    Ok(())
}

/// `"..."`, and nothing after it.
fn parse_str(value: TokenStream) -> syn::Result<LitStr> {
    syn::parse2::<LitStr>(value)
}

/// `["a", "b"]`, trailing comma allowed.
fn parse_str_list(input: ParseStream) -> syn::Result<Vec<LitStr>> {
    let content;
    syn::bracketed!(content in input);
    let list = Punctuated::<LitStr, Token![,]>::parse_terminated(&content)?;
    Ok(list.into_iter().collect())
}

/// `{"key": "value", "k2": "v2"}`, trailing comma allowed.
fn parse_str_map(input: ParseStream) -> syn::Result<Vec<(LitStr, LitStr)>> {
    let content;
    syn::braced!(content in input);
    let entries =
        Punctuated::<(LitStr, LitStr), Token![,]>::parse_terminated_with(&content, |input| {
            let key: LitStr = input.parse()?;
            input.parse::<Token![:]>()?;
            let value: LitStr = input.parse()?;
            Ok((key, value))
        })?;
    Ok(entries.into_iter().collect())
}

/// What happens to a row that breaks an expectation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Keep the row and count it (`#[expect]`).
    Warn,
    /// Leave the row out of the dataset (`#[expect_or_drop]`).
    Drop,
    /// Stop the flow (`#[expect_or_fail]`).
    Fail,
}

/// How an expectation attribute states its rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// `("name", "sql")`: one SQL condition each row must meet.
    One,
    /// `({"name": "sql", ...})`: several SQL conditions, each with its name.
    All,
    /// `("name", ["col", ...])`: the columns identify a row; no two rows share them.
    Unique,
}

/// One of the nine expectation attributes: `#[expect]`, `#[expect_all_or_drop]`, ...
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpectKind {
    pub form: Form,
    pub action: Action,
}

impl ExpectKind {
    /// Every expectation attribute, in the order the docs list them.
    pub const ALL: [ExpectKind; 9] = [
        ExpectKind::new(Form::One, Action::Warn),
        ExpectKind::new(Form::One, Action::Drop),
        ExpectKind::new(Form::One, Action::Fail),
        ExpectKind::new(Form::All, Action::Warn),
        ExpectKind::new(Form::All, Action::Drop),
        ExpectKind::new(Form::All, Action::Fail),
        ExpectKind::new(Form::Unique, Action::Warn),
        ExpectKind::new(Form::Unique, Action::Drop),
        ExpectKind::new(Form::Unique, Action::Fail),
    ];

    pub const fn new(form: Form, action: Action) -> ExpectKind {
        ExpectKind { form, action }
    }

    /// The attribute's name as the user writes it, without `#[]`.
    pub fn attr_name(self) -> &'static str {
        match (self.form, self.action) {
            // The bare name is Rust's lint attribute; messages show the path that works.
            (Form::One, Action::Warn) => "lakeflow::expect",
            (Form::One, Action::Drop) => "expect_or_drop",
            (Form::One, Action::Fail) => "expect_or_fail",
            (Form::All, Action::Warn) => "expect_all",
            (Form::All, Action::Drop) => "expect_all_or_drop",
            (Form::All, Action::Fail) => "expect_all_or_fail",
            (Form::Unique, Action::Warn) => "expect_unique",
            (Form::Unique, Action::Drop) => "expect_unique_or_drop",
            (Form::Unique, Action::Fail) => "expect_unique_or_fail",
        }
    }

    /// The attribute whose name is `name`, if any.
    pub fn from_attr_name(name: &str) -> Option<ExpectKind> {
        if name == "expect" || name == "expect_or_warn" {
            return Some(ExpectKind::new(Form::One, Action::Warn));
        }
        ExpectKind::ALL
            .into_iter()
            .find(|kind| kind.attr_name() == name)
    }

    /// "`#[expect]` takes ...: `#[expect("valid_amount", "amount > 0")]`", for errors about
    /// the shape of the arguments.
    pub fn usage(self) -> String {
        let name = self.attr_name();
        match self.form {
            Form::One => format!(
                r#"`#[{name}]` takes a name and a SQL expression: `#[{name}("valid_amount", "amount > 0")]`"#
            ),
            // `Form::One` with `Warn` is named `lakeflow::expect` above.
            Form::All => format!(
                r#"`#[{name}]` takes names and SQL expressions in braces: `#[{name}({{"valid_amount": "amount > 0", "valid_id": "id IS NOT NULL"}})]`"#
            ),
            Form::Unique => format!(
                r#"`#[{name}]` takes a name and a list of columns: `#[{name}("pk", ["order_id"])]`"#
            ),
        }
    }
}

/// One rule as written. An `#[expect_all*]` attribute gives one per entry, in its order.
#[derive(Debug)]
pub struct Expectation {
    /// The attribute the rule was written in.
    pub kind: ExpectKind,
    /// That attribute, for errors about the whole rule.
    pub attr: Attribute,
    /// The rule's name, unique within the dataset.
    pub name: LitStr,
    pub rule: Rule,
}

/// What an expectation checks.
#[derive(Debug)]
pub enum Rule {
    /// A SQL condition each row must meet.
    Sql(LitStr),
    /// Columns no two rows may share; `list` is the span of the brackets.
    Unique { columns: Vec<LitStr>, list: Span },
}

/// Which expectation `attr` is, if it is one. Matched on the last path segment, so that
/// `#[lakeflow::expect_or_drop]` counts. Inner attributes never do.
///
/// A bare `#[expect(...)]` is also Rust's lint attribute: written with lint names
/// (`#[expect(dead_code)]`, `#[expect(clippy::x, reason = "...")]`) it is left alone.
pub fn expectation_kind(attr: &Attribute) -> Option<ExpectKind> {
    if attr.style != AttrStyle::Outer {
        return None;
    }
    let path = attr.path();
    let kind = ExpectKind::from_attr_name(&path.segments.last()?.ident.to_string())?;
    let bare = path.leading_colon.is_none() && path.segments.len() == 1;
    if bare && path.segments[0].ident == "expect" && is_lint_attr(&attr.meta) {
        return None;
    }
    Some(kind)
}

/// `(lint_a, tool::lint_b, reason = "...")`: the arguments of Rust's lint attributes.
fn is_lint_attr(meta: &Meta) -> bool {
    let Meta::List(list) = meta else {
        return false;
    };
    Punctuated::<Meta, Token![,]>::parse_terminated
        .parse2(list.tokens.clone())
        .is_ok_and(|metas| {
            !metas.is_empty()
                && metas.iter().all(|meta| match meta {
                    Meta::Path(_) => true,
                    Meta::NameValue(pair) => pair.path.is_ident("reason"),
                    Meta::List(_) => false,
                })
        })
}

/// Removes the expectation attributes from `attrs` and returns them, in source order.
pub fn take_expectations(attrs: &mut Vec<Attribute>) -> Vec<(ExpectKind, Attribute)> {
    let mut taken = Vec::new();
    attrs.retain(|attr| match expectation_kind(attr) {
        Some(kind) => {
            taken.push((kind, attr.clone()));
            false
        }
        None => true,
    });
    taken
}

/// Parses one expectation attribute into its rules.
pub fn parse_expectation(kind: ExpectKind, attr: &Attribute) -> syn::Result<Vec<Expectation>> {
    let Meta::List(list) = &attr.meta else {
        return Err(Error::new_spanned(attr, kind.usage()));
    };
    let entries: Vec<TokenStream> = split_entries(list.tokens.clone())
        .into_iter()
        .map(|entry| entry.tokens.into_iter().collect())
        .collect();
    let arity = match kind.form {
        Form::One | Form::Unique => 2,
        Form::All => 1,
    };
    if entries.len() != arity || entries.iter().any(TokenStream::is_empty) {
        return Err(if list.tokens.is_empty() {
            Error::new_spanned(attr, kind.usage())
        } else {
            Error::new_spanned(&list.tokens, kind.usage())
        });
    }
    // A syn parse error points at the smallest offending token; keep its span, say the form.
    let wrong = |error: Error| Error::new(error.span(), kind.usage());
    let mut entries = entries.into_iter();
    let mut next = || entries.next().expect("the arity was checked");
    let rule = |name, rule| Expectation {
        kind,
        attr: attr.clone(),
        name,
        rule,
    };
    Ok(match kind.form {
        Form::One => {
            let name = parse_str(next()).map_err(wrong)?;
            let sql = parse_str(next()).map_err(wrong)?;
            vec![rule(name, Rule::Sql(sql))]
        }
        Form::All => parse_str_map
            .parse2(next())
            .map_err(wrong)?
            .into_iter()
            .map(|(name, sql)| rule(name, Rule::Sql(sql)))
            .collect(),
        Form::Unique => {
            let name = parse_str(next()).map_err(wrong)?;
            let (columns, list) = parse_column_list.parse2(next()).map_err(wrong)?;
            vec![rule(name, Rule::Unique { columns, list })]
        }
    })
}

/// `["a", "b"]` with the span of its brackets, trailing comma allowed.
fn parse_column_list(input: ParseStream) -> syn::Result<(Vec<LitStr>, Span)> {
    let content;
    let brackets = syn::bracketed!(content in input);
    let list = Punctuated::<LitStr, Token![,]>::parse_terminated(&content)?;
    Ok((list.into_iter().collect(), brackets.span.join()))
}

fn unknown_option(kind: Kind, key: &Ident) -> Error {
    let written = key.to_string();
    let suggestion = kind
        .options()
        .iter()
        .map(|k| k.as_str())
        .find(|valid| is_near(&written, valid))
        .map(|valid| format!(" (did you mean `{valid}`?)"))
        .unwrap_or_default();
    Error::new_spanned(
        key,
        format!(
            "unknown option `{written}`{suggestion}: {}",
            options_list(kind)
        ),
    )
}

/// "`#[table]` takes `name`, `comment`, ..." for error messages.
fn options_list(kind: Kind) -> String {
    let names: Vec<String> = kind
        .options()
        .iter()
        .map(|k| format!("`{}`", k.as_str()))
        .collect();
    format!("`#[{}]` takes {}", kind.attr_name(), names.join(", "))
}

/// Whether `written` looks like a misspelling of `valid`: a few edits away, or sharing its
/// distinctive word (`partition_by` for `partition_cols`, `properties` for
/// `table_properties`).
fn is_near(written: &str, valid: &str) -> bool {
    let written = written.to_ascii_lowercase();
    let distinctive = valid.split('_').find(|word| word.len() > 5);
    edit_distance(&written, valid) <= valid.len() / 3
        || distinctive.is_some_and(|word| written.contains(&word[..6]))
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn errors(kind: Kind, args: TokenStream) -> Vec<String> {
        parse(kind, args).1.iter().map(|e| e.to_string()).collect()
    }

    fn values(list: &[LitStr]) -> Vec<String> {
        list.iter().map(LitStr::value).collect()
    }

    #[test]
    fn no_arguments_is_no_options() {
        let (options, errors) = parse(Kind::Table, quote!());
        assert!(errors.is_empty());
        assert!(options.name.is_none() && options.comment.is_none());
        assert!(options.partition_cols.is_none() && options.table_properties.is_none());
        assert!(options.quarantine.is_none());
    }

    #[test]
    fn every_option_in_any_order() {
        let (options, errors) = parse(
            Kind::Table,
            quote!(
                table_properties = {"delta.appendOnly": "true", "k2": "v2",},
                partition_cols = ["a", "b"],
                comment = "the comment",
                name = "silver",
            ),
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(options.name.unwrap().value(), "silver");
        assert_eq!(options.comment.unwrap().value(), "the comment");
        assert_eq!(values(&options.partition_cols.unwrap()), ["a", "b"]);
        let props: Vec<(String, String)> = options
            .table_properties
            .unwrap()
            .iter()
            .map(|(k, v)| (k.value(), v.value()))
            .collect();
        assert_eq!(
            props,
            [
                ("delta.appendOnly".to_owned(), "true".to_owned()),
                ("k2".to_owned(), "v2".to_owned())
            ]
        );
    }

    #[test]
    fn empty_list_and_map_are_allowed() {
        let (options, errors) = parse(
            Kind::StreamingTable,
            quote!(partition_cols = [], table_properties = {}),
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert!(options.partition_cols.unwrap().is_empty());
        assert!(options.table_properties.unwrap().is_empty());
    }

    #[test]
    fn unknown_option_suggests_the_near_one() {
        assert_eq!(
            errors(Kind::Table, quote!(coment = "x")),
            [
                "unknown option `coment` (did you mean `comment`?): `#[table]` takes `name`, `comment`, `partition_cols`, `table_properties`, `quarantine`"
            ]
        );
        assert_eq!(
            errors(Kind::MaterializedView, quote!(partition_by = ["a"])),
            [
                "unknown option `partition_by` (did you mean `partition_cols`?): `#[materialized_view]` takes `name`, `comment`, `partition_cols`, `table_properties`, `quarantine`"
            ]
        );
        assert_eq!(
            errors(Kind::Table, quote!(properties = {})),
            [
                "unknown option `properties` (did you mean `table_properties`?): `#[table]` takes `name`, `comment`, `partition_cols`, `table_properties`, `quarantine`"
            ]
        );
        assert_eq!(
            errors(Kind::TemporaryView, quote!(schedule = "daily")),
            ["unknown option `schedule`: `#[temporary_view]` takes `name`, `comment`"]
        );
    }

    #[test]
    fn storage_options_are_refused_on_temporary_views() {
        let message = |key: &str| {
            format!(
                "`{key}` is not allowed on `#[temporary_view]`: temporary views are never stored; \
                 remove it, or use `#[materialized_view]` to store the data"
            )
        };
        assert_eq!(
            errors(
                Kind::TemporaryView,
                quote!(partition_cols = ["a"], table_properties = {"k": "v"})
            ),
            [message("partition_cols"), message("table_properties")]
        );
    }

    #[test]
    fn repeated_option() {
        let (options, errors) = parse(Kind::Table, quote!(name = "a", comment = "c", name = "b"));
        let errors: Vec<String> = errors.iter().map(Error::to_string).collect();
        assert_eq!(errors, ["`name` is given twice: remove one"]);
        assert_eq!(options.name.unwrap().value(), "a");
    }

    #[test]
    fn wrong_value_types_say_how_to_write_them() {
        assert_eq!(
            errors(Kind::Table, quote!(name = 5)),
            [r#"`name` takes a string literal: `name = "silver_orders"`"#]
        );
        assert_eq!(
            errors(Kind::Table, quote!(name = silver)),
            [r#"`name` takes a string literal: `name = "silver_orders"`"#]
        );
        assert_eq!(
            errors(Kind::Table, quote!(comment = "a" "b")),
            [r#"`comment` takes a string literal: `comment = "Orders without test rows"`"#]
        );
        assert_eq!(
            errors(Kind::Table, quote!(partition_cols = "a")),
            [
                r#"`partition_cols` takes a list of string literals: `partition_cols = ["order_date", "country"]`"#
            ]
        );
        assert_eq!(
            errors(Kind::Table, quote!(partition_cols = ["a", 1])),
            [
                r#"`partition_cols` takes a list of string literals: `partition_cols = ["order_date", "country"]`"#
            ]
        );
        assert_eq!(
            errors(Kind::Table, quote!(table_properties = { "k" = "v" })),
            [
                r#"`table_properties` takes string keys and values in braces: `table_properties = {"delta.appendOnly": "true"}`"#
            ]
        );
        assert_eq!(
            errors(Kind::Table, quote!(table_properties = ["k", "v"])),
            [
                r#"`table_properties` takes string keys and values in braces: `table_properties = {"delta.appendOnly": "true"}`"#
            ]
        );
    }

    #[test]
    fn malformed_entries() {
        assert_eq!(
            errors(Kind::Table, quote!("silver")),
            [r#"options are written `key = value`: to name the dataset write `name = "silver"`"#]
        );
        assert_eq!(
            errors(Kind::Table, quote!(name)),
            [r#"`name` needs a value: `name = "silver_orders"`"#]
        );
        assert_eq!(
            errors(Kind::Table, quote!(name =)),
            [r#"`name =` needs a value: `name = "silver_orders"`"#]
        );
        assert_eq!(
            errors(Kind::Table, quote!(name: "x")),
            [r#"expected `=` after `name`: `name = "silver_orders"`"#]
        );
        assert_eq!(
            errors(Kind::Table, quote!(name = "a",, comment = "c")),
            ["unexpected `,`: remove it"]
        );
        assert_eq!(
            errors(Kind::TemporaryView, quote!(5)),
            ["expected an option name: `#[temporary_view]` takes `name`, `comment`"]
        );
    }

    #[test]
    fn every_mistake_is_reported() {
        let errors = errors(
            Kind::Table,
            quote!(
                nme = "a",
                comment = 1,
                partition_cols = ["a"],
                partition_cols = ["b"]
            ),
        );
        assert_eq!(errors.len(), 3, "{errors:?}");
    }

    fn quarantine(kind: Kind, args: TokenStream) -> Option<String> {
        let (options, errors) = parse(kind, args);
        assert!(errors.is_empty(), "{errors:?}");
        options.quarantine.map(|q| match q.value {
            QuarantineValue::Flag(flag) => flag.value.to_string(),
            QuarantineValue::Table(table) => format!("{:?}", table.value()),
        })
    }

    #[test]
    fn quarantine_is_a_flag_or_a_table_name() {
        assert_eq!(
            quarantine(Kind::Table, quote!(quarantine = true)).as_deref(),
            Some("true")
        );
        assert_eq!(
            quarantine(Kind::StreamingTable, quote!(quarantine = false)).as_deref(),
            Some("false")
        );
        assert_eq!(
            quarantine(Kind::MaterializedView, quote!(quarantine = "rejects")).as_deref(),
            Some("\"rejects\"")
        );
        let expected = r#"`quarantine` takes `true`, `false` or a table name: `quarantine = true` or `quarantine = "orders_rejected"`"#;
        assert_eq!(errors(Kind::Table, quote!(quarantine = 1)), [expected]);
        assert_eq!(errors(Kind::Table, quote!(quarantine = yes)), [expected]);
        assert_eq!(errors(Kind::Table, quote!(quarantine = ["a"])), [expected]);
        assert_eq!(
            errors(Kind::Table, quote!(quarantine = true, quarantine = false)),
            ["`quarantine` is given twice: remove one"]
        );
        assert_eq!(
            errors(Kind::Table, quote!(quarantaine = true)),
            [
                "unknown option `quarantaine` (did you mean `quarantine`?): `#[table]` takes `name`, `comment`, `partition_cols`, `table_properties`, `quarantine`"
            ]
        );
        assert_eq!(
            errors(Kind::TemporaryView, quote!(quarantine = true)),
            [
                "`quarantine` is not allowed on `#[temporary_view]`: temporary views are never stored; \
                 remove it, or use `#[materialized_view]` to store the data"
            ]
        );
    }

    fn kind_of(attr: Attribute) -> Option<&'static str> {
        expectation_kind(&attr).map(ExpectKind::attr_name)
    }

    #[test]
    fn expectation_attributes_are_found_by_their_last_segment() {
        for kind in ExpectKind::ALL {
            let ident = Ident::new(
                kind.attr_name().rsplit("::").next().unwrap(),
                Span::call_site(),
            );
            assert_eq!(
                kind_of(syn::parse_quote!(#[#ident("a", "b")])),
                Some(kind.attr_name())
            );
            assert_eq!(
                kind_of(syn::parse_quote!(#[lakeflow::#ident("a", "b")])),
                Some(kind.attr_name())
            );
            assert_eq!(ExpectKind::from_attr_name(kind.attr_name()), Some(kind));
        }
        assert_eq!(
            kind_of(syn::parse_quote!(#[::lakeflow::expect_all({})])),
            Some("expect_all")
        );
        assert_eq!(kind_of(syn::parse_quote!(#[expectation("a", "b")])), None);
        assert_eq!(kind_of(syn::parse_quote!(#[table])), None);
        assert_eq!(
            kind_of(syn::parse_quote!(#![expect_or_drop("a", "b")])),
            None
        );
    }

    #[test]
    fn the_rust_lint_expect_is_left_alone() {
        assert_eq!(kind_of(syn::parse_quote!(#[expect(dead_code)])), None);
        assert_eq!(
            kind_of(syn::parse_quote!(#[expect(clippy::unwrap_used, unused, reason = "why")])),
            None
        );
        // Ours when it can't be a lint attribute, so that a malformed rule is reported.
        assert_eq!(
            kind_of(syn::parse_quote!(#[expect])),
            Some("lakeflow::expect")
        );
        assert_eq!(
            kind_of(syn::parse_quote!(#[expect()])),
            Some("lakeflow::expect")
        );
        assert_eq!(
            kind_of(syn::parse_quote!(#[expect(name, "x")])),
            Some("lakeflow::expect")
        );
        assert_eq!(
            kind_of(syn::parse_quote!(#[expect("only_name")])),
            Some("lakeflow::expect")
        );
        // A path always means ours.
        assert_eq!(
            kind_of(syn::parse_quote!(#[lakeflow::expect(dead_code)])),
            Some("lakeflow::expect")
        );
    }

    #[test]
    fn take_expectations_keeps_the_other_attributes() {
        let mut attrs: Vec<Attribute> = vec![
            syn::parse_quote!(#[doc = "x"]),
            syn::parse_quote!(#[expect_or_drop("a", "x > 0")]),
            syn::parse_quote!(#[expect(dead_code)]),
            syn::parse_quote!(#[lakeflow::expect("b", "y > 0")]),
            syn::parse_quote!(#[allow(unused)]),
        ];
        let taken: Vec<&str> = take_expectations(&mut attrs)
            .iter()
            .map(|(kind, _)| kind.attr_name())
            .collect();
        assert_eq!(taken, ["expect_or_drop", "lakeflow::expect"]);
        let kept: Vec<String> = attrs
            .iter()
            .map(|attr| attr.to_token_stream().to_string())
            .collect();
        assert_eq!(
            kept,
            [
                "# [doc = \"x\"]",
                "# [expect (dead_code)]",
                "# [allow (unused)]"
            ]
        );
    }

    /// `(kind, name, rule)` of each parsed rule, the rule as `sql` or `[col, ...]`.
    fn rules(attr: Attribute) -> Vec<(&'static str, String, String)> {
        let kind = expectation_kind(&attr).expect("an expectation attribute");
        parse_expectation(kind, &attr)
            .unwrap()
            .into_iter()
            .map(|e| {
                let rule = match e.rule {
                    Rule::Sql(sql) => sql.value(),
                    Rule::Unique { columns, .. } => format!("{:?}", values(&columns)),
                };
                (e.kind.attr_name(), e.name.value(), rule)
            })
            .collect()
    }

    fn owned(rules: &[(&'static str, &str, &str)]) -> Vec<(&'static str, String, String)> {
        rules
            .iter()
            .map(|&(kind, name, rule)| (kind, name.to_owned(), rule.to_owned()))
            .collect()
    }

    #[test]
    fn every_expectation_form_parses() {
        assert_eq!(
            rules(syn::parse_quote!(#[expect("valid_amount", "amount > 0")])),
            owned(&[("lakeflow::expect", "valid_amount", "amount > 0")])
        );
        assert_eq!(
            rules(syn::parse_quote!(#[lakeflow::expect_or_fail("a", r"x = 'y'",)])),
            owned(&[("expect_or_fail", "a", "x = 'y'")])
        );
        assert_eq!(
            rules(syn::parse_quote!(#[expect_all_or_drop({
                "valid_b": "b IS NOT NULL",
                "valid_a": "a > 0",
            })])),
            owned(&[
                ("expect_all_or_drop", "valid_b", "b IS NOT NULL"),
                ("expect_all_or_drop", "valid_a", "a > 0"),
            ])
        );
        assert!(rules(syn::parse_quote!(#[expect_all({})])).is_empty());
        assert_eq!(
            rules(syn::parse_quote!(#[expect_unique_or_drop("pk", ["order_id", "line",])])),
            owned(&[("expect_unique_or_drop", "pk", r#"["order_id", "line"]"#)])
        );
        assert_eq!(
            rules(syn::parse_quote!(#[expect_unique("pk", [])])),
            owned(&[("expect_unique", "pk", "[]")])
        );
    }

    fn form_error(attr: Attribute) -> String {
        let kind = expectation_kind(&attr).expect("an expectation attribute");
        parse_expectation(kind, &attr).unwrap_err().to_string()
    }

    #[test]
    fn wrong_expectation_forms_show_the_right_one() {
        let one = r#"`#[lakeflow::expect]` takes a name and a SQL expression: `#[lakeflow::expect("valid_amount", "amount > 0")]`"#;
        for attr in [
            syn::parse_quote!(#[expect("only_name")]),
            syn::parse_quote!(#[expect(name, "x")]),
            syn::parse_quote!(#[expect]),
            syn::parse_quote!(#[expect()]),
            syn::parse_quote!(#[expect = "x"]),
            syn::parse_quote!(#[expect("a", "b", "c")]),
            syn::parse_quote!(#[expect("a",, "b")]),
            syn::parse_quote!(#[expect("a", "b" "c")]),
            syn::parse_quote!(#[expect("a", 1)]),
            syn::parse_quote!(#[expect({"a": "b"})]),
        ] {
            assert_eq!(form_error(attr), one);
        }
        assert_eq!(
            form_error(syn::parse_quote!(#[expect_or_drop(valid, amount > 0)])),
            r#"`#[expect_or_drop]` takes a name and a SQL expression: `#[expect_or_drop("valid_amount", "amount > 0")]`"#
        );
        let all = r#"`#[expect_all_or_fail]` takes names and SQL expressions in braces: `#[expect_all_or_fail({"valid_amount": "amount > 0", "valid_id": "id IS NOT NULL"})]`"#;
        for attr in [
            syn::parse_quote!(#[expect_all_or_fail("a", "b")]),
            syn::parse_quote!(#[expect_all_or_fail({"a" = "b"})]),
            syn::parse_quote!(#[expect_all_or_fail({a: "b"})]),
            syn::parse_quote!(#[expect_all_or_fail]),
        ] {
            assert_eq!(form_error(attr), all);
        }
        let unique = r#"`#[expect_unique]` takes a name and a list of columns: `#[expect_unique("pk", ["order_id"])]`"#;
        for attr in [
            syn::parse_quote!(#[expect_unique("pk")]),
            syn::parse_quote!(#[expect_unique("pk", "order_id")]),
            syn::parse_quote!(#[expect_unique("pk", [order_id])]),
            syn::parse_quote!(#[expect_unique(["order_id"])]),
        ] {
            assert_eq!(form_error(attr), unique);
        }
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in Kind::ALL {
            assert_eq!(Kind::from_attr_name(kind.attr_name()), Some(kind));
        }
        assert_eq!(Kind::from_attr_name("view"), None);
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("name", "name"), 0);
        assert_eq!(edit_distance("nmae", "name"), 2);
        assert_eq!(edit_distance("comments", "comment"), 1);
    }
}
