//! The option syntax of the dataset attributes: `#[table(name = "...", comment = "...",
//! partition_cols = [...], table_properties = {...})]`.
//!
//! Owns which options exist, which macro takes which, and the shape of each value. What a
//! value means (a valid dataset name, distinct partition columns) is `valid.rs`'s business.
//! Parsing goes on after a bad option so that every mistake is reported in one build.
//! Depends on `syn` and `proc_macro2` only, so it is unit-tested without a compiler session.

use proc_macro2::{Ident, Punct, TokenStream, TokenTree};
use quote::ToTokens as _;
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Error, LitStr, Token};

/// Which dataset macro is being expanded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Table,
    MaterializedView,
    StreamingTable,
    TemporaryView,
}

impl Kind {
    /// Every dataset macro, in the order the docs list them.
    pub const ALL: [Kind; 4] = [
        Kind::Table,
        Kind::MaterializedView,
        Kind::StreamingTable,
        Kind::TemporaryView,
    ];

    /// The attribute's name as the user writes it, without `#[]`.
    pub fn attr_name(self) -> &'static str {
        match self {
            Kind::Table => "table",
            Kind::MaterializedView => "materialized_view",
            Kind::StreamingTable => "streaming_table",
            Kind::TemporaryView => "temporary_view",
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
            _ => &Key::ALL,
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
}

/// One option key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    Name,
    Comment,
    PartitionCols,
    TableProperties,
}

impl Key {
    const ALL: [Key; 4] = [
        Key::Name,
        Key::Comment,
        Key::PartitionCols,
        Key::TableProperties,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Key::Name => "name",
            Key::Comment => "comment",
            Key::PartitionCols => "partition_cols",
            Key::TableProperties => "table_properties",
        }
    }

    /// How the option is written, for error messages.
    fn example(self) -> &'static str {
        match self {
            Key::Name => r#"name = "silver_orders""#,
            Key::Comment => r#"comment = "Orders without test rows""#,
            Key::PartitionCols => r#"partition_cols = ["order_date", "country"]"#,
            Key::TableProperties => r#"table_properties = {"delta.appendOnly": "true"}"#,
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
                    "`{}` is not allowed on `#[temporary_view]`: temporary views are never stored; \
                     remove it, or use `#[materialized_view]` to store the data",
                    k.as_str()
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
                "unknown option `coment` (did you mean `comment`?): `#[table]` takes `name`, `comment`, `partition_cols`, `table_properties`"
            ]
        );
        assert_eq!(
            errors(Kind::MaterializedView, quote!(partition_by = ["a"])),
            [
                "unknown option `partition_by` (did you mean `partition_cols`?): `#[materialized_view]` takes `name`, `comment`, `partition_cols`, `table_properties`"
            ]
        );
        assert_eq!(
            errors(Kind::Table, quote!(properties = {})),
            [
                "unknown option `properties` (did you mean `table_properties`?): `#[table]` takes `name`, `comment`, `partition_cols`, `table_properties`"
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
