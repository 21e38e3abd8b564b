//! What makes a function a query function, and what makes option values valid.
//!
//! A query function is a free, non-generic, safe Rust function with no parameters that
//! returns `Plan`; it carries one dataset attribute. Whether the return type really is
//! `Plan` is left to the type checker (the expansion points its error at the return type);
//! everything else is checked here, on the syntax, with the error on the offending token.
//!
//! Expectations are checked here too: names, duplicate names, unique columns, and that each
//! SQL rule parses as one expression with `sqlparser`, the parser DataFusion uses, so a typo
//! in a rule fails the build instead of the run. Whether the columns it names exist is only
//! known at dry-run time. Depends on `attr.rs` for the parsed attributes, and on nothing in
//! the runtime.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::Token;
use syn::ext::IdentExt as _;
use syn::{Attribute, Error, FnArg, ItemFn, LitStr, Path, ReturnType};

use crate::attr::{
    Action, ExpectKind, Expectation, Kind, Options, Quarantine, QuarantineValue, Rule,
};

/// The longest dataset name lakeflow accepts (a common limit of catalogs and file systems).
const MAX_NAME_LEN: usize = 255;

/// Every problem with `item` as a query function of `kind` with `options`, in source order.
pub fn check(kind: Kind, item: &ItemFn, options: &Options) -> Vec<Error> {
    let mut errors = Vec::new();
    check_attrs(kind, &item.attrs, &mut errors);
    check_signature(item, &mut errors);
    check_name(item, options.name.as_ref(), &mut errors);
    if let Some(cols) = &options.partition_cols {
        check_partition_cols(cols, &mut errors);
    }
    if let Some(properties) = &options.table_properties {
        check_table_properties(properties, &mut errors);
    }
    if kind == Kind::AppendFlow {
        match &options.target {
            None => errors.push(Error::new(
                Span::call_site(),
                "`#[append_flow]` needs the streaming table it writes: `target = \"all_orders\"`",
            )),
            Some(target) => {
                if let Some(problem) = identifier_problem(&target.value()) {
                    errors.push(Error::new_spanned(
                        target,
                        format!(
                            "invalid target table name {:?}: it {problem}",
                            target.value()
                        ),
                    ));
                }
            }
        }
    }
    errors
}

/// The dataset name: `name = "..."` when given, else the function's name without `r#`.
pub fn dataset_name(item: &ItemFn, name: Option<&LitStr>) -> LitStr {
    match name {
        Some(name) => name.clone(),
        None => {
            let ident = &item.sig.ident;
            LitStr::new(&ident.unraw().to_string(), ident.span())
        }
    }
}

/// A second dataset attribute on the same function (`#[table] #[materialized_view]`). The
/// attribute being expanded has been removed from `attrs` by the compiler; any other one
/// whose last path segment is a dataset macro's name is a second dataset.
fn check_attrs(kind: Kind, attrs: &[Attribute], errors: &mut Vec<Error>) {
    for attr in attrs {
        let path = attr.path();
        let Some(last) = path.segments.last() else {
            continue;
        };
        if Kind::from_attr_name(&last.ident.to_string()).is_none() {
            continue;
        }
        let written = path_as_written(path);
        let ours = kind.attr_name();
        let message = if written == ours {
            format!("a function defines one dataset: remove the repeated `#[{ours}]`")
        } else {
            format!("a function defines one dataset: remove `#[{written}]` or `#[{ours}]`")
        };
        errors.push(Error::new_spanned(attr, message));
    }
}

fn check_signature(item: &ItemFn, errors: &mut Vec<Error>) {
    let sig = &item.sig;
    let name = &sig.ident;

    if let Some(unsafety) = &sig.unsafety {
        errors.push(Error::new_spanned(
            unsafety,
            "query functions can't be `unsafe`: lakeflow calls them as safe functions; remove `unsafe`",
        ));
    }
    if let Some(abi) = &sig.abi {
        errors.push(Error::new_spanned(
            abi,
            "query functions use the Rust ABI: remove the `extern`",
        ));
    }
    if !sig.generics.params.is_empty() {
        errors.push(Error::new_spanned(
            &sig.generics,
            "query functions are not generic: a dataset has one definition; remove the generic parameters",
        ));
    }
    if let Some(where_clause) = &sig.generics.where_clause {
        errors.push(Error::new_spanned(
            where_clause,
            "query functions are not generic: remove the `where` clause",
        ));
    }

    let mut params = TokenStream::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) => errors.push(Error::new_spanned(
                receiver,
                format!(
                    "query functions take no `self`: a dataset is a free function; \
                     move `{name}` out of the `impl` block and remove `self`"
                ),
            )),
            FnArg::Typed(param) => param.to_tokens(&mut params),
        }
    }
    if let Some(variadic) = &sig.variadic {
        variadic.to_tokens(&mut params);
    }
    if !params.is_empty() {
        errors.push(Error::new_spanned(
            params,
            "query functions take no arguments: read upstream datasets with `read(\"name\")` \
             inside the body instead of taking parameters",
        ));
    }

    if let ReturnType::Default = sig.output {
        errors.push(Error::new_spanned(
            name,
            format!("query functions must return `Plan`: write `fn {name}() -> Plan`"),
        ));
    }
}

fn check_name(item: &ItemFn, name: Option<&LitStr>, errors: &mut Vec<Error>) {
    match name {
        Some(lit) => {
            if let Some(problem) = identifier_problem(&lit.value()) {
                errors.push(Error::new_spanned(
                    lit,
                    format!("invalid dataset name {:?}: it {problem}", lit.value()),
                ));
            }
        }
        None => {
            let ident = &item.sig.ident;
            let default = ident.unraw().to_string();
            if let Some(problem) = identifier_problem(&default) {
                errors.push(Error::new_spanned(
                    ident,
                    format!(
                        "the function name `{default}` is not a valid dataset name: it {problem}; \
                         give the dataset a name with `name = \"...\"`"
                    ),
                ));
            }
        }
    }
}

/// The problems of a `partition_cols` list.
pub fn partition_col_errors(cols: &[LitStr]) -> Vec<Error> {
    let mut errors = Vec::new();
    check_partition_cols(cols, &mut errors);
    errors
}

fn check_partition_cols(cols: &[LitStr], errors: &mut Vec<Error>) {
    for (i, col) in cols.iter().enumerate() {
        let value = col.value();
        if let Some(problem) = identifier_problem(&value) {
            errors.push(Error::new_spanned(
                col,
                format!("invalid partition column {value:?}: it {problem}"),
            ));
        } else if cols[..i].iter().any(|earlier| earlier.value() == value) {
            errors.push(Error::new_spanned(
                col,
                format!("partition column {value:?} is listed twice: remove one"),
            ));
        }
    }
}

fn check_table_properties(properties: &[(LitStr, LitStr)], errors: &mut Vec<Error>) {
    for (i, (key, _)) in properties.iter().enumerate() {
        let value = key.value();
        if value.trim().is_empty() {
            errors.push(Error::new_spanned(
                key,
                "table property keys can't be empty: write a key such as \"delta.appendOnly\"",
            ));
        } else if properties[..i]
            .iter()
            .any(|(earlier, _)| earlier.value() == value)
        {
            errors.push(Error::new_spanned(
                key,
                format!("table property {value:?} is given twice: remove one"),
            ));
        }
    }
}

/// Every problem with the expectations of dataset `dataset` (its resolved name) and with its
/// `quarantine` option, in source order.
pub fn check_expectations(
    kind: Kind,
    dataset: &str,
    expectations: &[Expectation],
    quarantine: Option<&Quarantine>,
) -> Vec<Error> {
    let mut errors = Vec::new();
    for (i, expectation) in expectations.iter().enumerate() {
        let name = expectation.name.value();
        if let Some(problem) = identifier_problem(&name) {
            errors.push(Error::new_spanned(
                &expectation.name,
                format!("invalid expectation name {name:?}: it {problem}"),
            ));
        } else if expectations[..i]
            .iter()
            .any(|earlier| earlier.name.value() == name)
        {
            errors.push(Error::new_spanned(
                &expectation.name,
                format!(
                    "expectation `{name}` is defined twice on `{dataset}`: \
                     give each expectation its own name"
                ),
            ));
        }
        if kind == Kind::TemporaryView {
            errors.push(Error::new_spanned(
                &expectation.attr,
                format!(
                    "`#[{}]` is not allowed on `#[temporary_view]`: a view is never \
                     materialized, so its rules would never be counted; put the rule on the \
                     table that reads it",
                    expectation.kind.attr_name()
                ),
            ));
        }
        match &expectation.rule {
            Rule::Sql(sql) => check_sql(&name, sql, &mut errors),
            Rule::Unique { columns, list } => {
                check_unique_columns(&name, columns, *list, &mut errors);
            }
        }
    }
    if let Some(quarantine) = quarantine {
        check_quarantine(dataset, expectations, quarantine, &mut errors);
    }
    errors
}

/// The companion table the rows drop rules remove go to: `<dataset>_quarantine` for
/// `quarantine = true`, the given name for `quarantine = "..."`, none when not set or `false`.
pub fn quarantine_table(dataset: &str, quarantine: Option<&Quarantine>) -> Option<LitStr> {
    match &quarantine?.value {
        QuarantineValue::Flag(flag) if flag.value => {
            Some(LitStr::new(&format!("{dataset}_quarantine"), flag.span))
        }
        QuarantineValue::Flag(_) => None,
        QuarantineValue::Table(table) => Some(table.clone()),
    }
}

fn check_sql(name: &str, sql: &LitStr, errors: &mut Vec<Error>) {
    let text = sql.value();
    let message = if text.trim().is_empty() {
        format!(
            "expectation `{name}` has an empty SQL expression: write the condition each row \
             must meet, such as \"amount > 0\""
        )
    } else if let Some(problem) = sql_problem(&text) {
        format!("expectation `{name}`: `{text}` is not a valid SQL expression: {problem}")
    } else {
        return;
    };
    errors.push(Error::new_spanned(sql, message));
}

/// Why `sql` is not exactly one SQL expression, in the words of the parser DataFusion uses,
/// or `None` when it is one.
pub fn sql_problem(sql: &str) -> Option<String> {
    let dialect = GenericDialect {};
    let parsed = Parser::new(&dialect)
        .try_with_sql(sql)
        .and_then(|mut parser| {
            parser.parse_expr()?;
            let next = parser.peek_token();
            if next.token == Token::EOF {
                Ok(())
            } else {
                parser.expected("end of expression", next)
            }
        });
    match parsed {
        Ok(()) => None,
        Err(ParserError::TokenizerError(message) | ParserError::ParserError(message)) => {
            Some(message)
        }
        Err(ParserError::RecursionLimitExceeded) => {
            Some("it is nested too deeply; split it into several expectations".to_owned())
        }
    }
}

fn check_unique_columns(name: &str, columns: &[LitStr], list: Span, errors: &mut Vec<Error>) {
    if columns.is_empty() {
        errors.push(Error::new(
            list,
            format!(
                "uniqueness rule `{name}` needs at least one column: \
                 list the columns that identify a row, such as [\"order_id\"]"
            ),
        ));
    }
    for (i, column) in columns.iter().enumerate() {
        let value = column.value();
        if let Some(problem) = identifier_problem(&value) {
            errors.push(Error::new_spanned(
                column,
                format!("invalid column {value:?} in uniqueness rule `{name}`: it {problem}"),
            ));
        } else if columns[..i].iter().any(|earlier| earlier.value() == value) {
            errors.push(Error::new_spanned(
                column,
                format!("column {value:?} is listed twice in uniqueness rule `{name}`: remove one"),
            ));
        }
    }
}

fn check_quarantine(
    dataset: &str,
    expectations: &[Expectation],
    quarantine: &Quarantine,
    errors: &mut Vec<Error>,
) {
    let Quarantine { key, value } = quarantine;
    let whole = quote!(#key = #value);
    let table = match value {
        QuarantineValue::Flag(flag) if !flag.value => return,
        QuarantineValue::Flag(_) => format!("{dataset}_quarantine"),
        QuarantineValue::Table(table) => {
            let value = table.value();
            if let Some(problem) = identifier_problem(&value) {
                errors.push(Error::new_spanned(
                    table,
                    format!("invalid quarantine table name {value:?}: it {problem}"),
                ));
                return;
            }
            if value == dataset {
                errors.push(Error::new_spanned(
                    table,
                    format!(
                        "the quarantine table needs a name of its own, not `{dataset}`: \
                         write `quarantine = true` for `{dataset}_quarantine`"
                    ),
                ));
                return;
            }
            value
        }
    };
    if !expectations.iter().any(|e| e.kind.action == Action::Drop) {
        errors.push(Error::new_spanned(
            &whole,
            format!(
                "quarantine keeps the rows drop rules remove, but `{dataset}` has no \
                 `#[expect_or_drop]`; add one or remove `quarantine`"
            ),
        ));
    } else if identifier_problem(dataset).is_none()
        && let Some(problem) = identifier_problem(&table)
    {
        // Only `quarantine = true` gets here: a long dataset name plus `_quarantine`.
        errors.push(Error::new_spanned(
            &whole,
            format!(
                "the quarantine table `{table}` is not a valid name: it {problem}; \
                 name it with `quarantine = \"...\"`"
            ),
        ));
    }
}

/// The error of an expectation attribute that expanded itself: the dataset attribute that
/// should have read it is below it in `attrs`, or missing.
pub fn misplaced(expect: ExpectKind, attrs: &[Attribute]) -> Error {
    let ours = expect.attr_name();
    let dataset = attrs.iter().map(Attribute::path).find(|path| {
        path.segments
            .last()
            .is_some_and(|last| Kind::from_attr_name(&last.ident.to_string()).is_some())
    });
    let message = match dataset {
        Some(path) => format!("`#[{ours}]` must come below `#[{}]`", path_as_written(path)),
        None => format!(
            "`#[{ours}]` needs a dataset attribute above it: add `#[table]`, \
             `#[materialized_view]`, `#[streaming_table]` or `#[temporary_view]`"
        ),
    };
    Error::new(Span::call_site(), message)
}

/// The error of an expectation attribute written above the dataset attribute `kind` but read
/// by it: only a bare `#[expect]` gets there, since rustc leaves the names of its own
/// attributes (`expect` is its lint attribute) for last.
pub fn written_above(kind: Kind, expect: ExpectKind, attr: &Attribute) -> Error {
    Error::new_spanned(
        attr,
        format!(
            "`#[{}]` must come below `#[{}]`",
            expect.attr_name(),
            kind.attr_name()
        ),
    )
}

/// A path as written, without spaces: `lakeflow::table`.
fn path_as_written(path: &Path) -> String {
    path.to_token_stream().to_string().replace(' ', "")
}

/// Why `name` is not a valid dataset or column name, completing "it ...", or `None` when it
/// is valid: `[A-Za-z_][A-Za-z0-9_]*`, at most 255 characters. Such names need no quoting
/// in SQL, in paths or in Delta's schema.
pub fn identifier_problem(name: &str) -> Option<String> {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return Some("is empty".to_owned());
    };
    if !(first.is_ascii_alphabetic() || first == '_') {
        return Some(format!(
            "starts with {first:?}; names start with an ASCII letter or `_`, as in \"silver_orders\""
        ));
    }
    if let Some(bad) = chars.find(|c| !(c.is_ascii_alphanumeric() || *c == '_')) {
        return Some(format!(
            "contains {bad:?}; names have only ASCII letters, digits and `_`, as in \"silver_orders\""
        ));
    }
    let len = name.chars().count();
    if len > MAX_NAME_LEN {
        return Some(format!(
            "is {len} characters long; names have at most {MAX_NAME_LEN}"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proc_macro2::Span;
    use quote::quote;

    fn check_fn(kind: Kind, item: TokenStream) -> Vec<String> {
        let item: ItemFn = syn::parse2(item).unwrap();
        check(kind, &item, &Options::default())
            .iter()
            .map(Error::to_string)
            .collect()
    }

    fn check_options(options: TokenStream) -> Vec<String> {
        let (options, errors) = crate::attr::parse(Kind::Table, options);
        assert!(errors.is_empty(), "{errors:?}");
        let item: ItemFn = syn::parse2(quote!(
            fn silver() -> Plan {
                read("x")
            }
        ))
        .unwrap();
        check(Kind::Table, &item, &options)
            .iter()
            .map(Error::to_string)
            .collect()
    }

    #[test]
    fn a_plain_query_function_is_valid() {
        let ok = [
            quote!(
                fn silver() -> Plan {
                    read("x")
                }
            ),
            quote!(
                pub async fn silver() -> Plan {
                    Ok(read("x")?.limit(0, None)?)
                }
            ),
            quote!(
                #[doc = "x"]
                #[allow(unused)]
                pub(crate) const fn r#silver() -> Plan {
                    todo!()
                }
            ),
            quote!(
                #[lakeflow::expect("a", "b")]
                fn silver() -> lakeflow::Result<DataFrame> {
                    todo!()
                }
            ),
        ];
        for item in ok {
            assert_eq!(
                check_fn(Kind::Table, item.clone()),
                Vec::<String>::new(),
                "{item}"
            );
        }
    }

    #[test]
    fn parameters_are_refused_once() {
        assert_eq!(
            check_fn(
                Kind::Table,
                quote!(
                    fn silver(a: i32, b: DataFrame) -> Plan {
                        todo!()
                    }
                )
            ),
            [
                "query functions take no arguments: read upstream datasets with `read(\"name\")` \
              inside the body instead of taking parameters"
            ]
        );
    }

    #[test]
    fn self_is_refused() {
        assert_eq!(
            check_fn(
                Kind::Table,
                quote!(
                    fn silver(&self) -> Plan {
                        todo!()
                    }
                )
            ),
            [
                "query functions take no `self`: a dataset is a free function; \
              move `silver` out of the `impl` block and remove `self`"
            ]
        );
    }

    #[test]
    fn generics_are_refused() {
        assert_eq!(
            check_fn(
                Kind::MaterializedView,
                quote!(
                    fn silver<T: Into<String>>() -> Plan {
                        todo!()
                    }
                )
            ),
            [
                "query functions are not generic: a dataset has one definition; remove the generic parameters"
            ]
        );
        assert_eq!(
            check_fn(
                Kind::MaterializedView,
                quote!(
                    fn silver<'a>() -> Plan
                    where
                        'a: 'static,
                    {
                        todo!()
                    }
                )
            ),
            [
                "query functions are not generic: a dataset has one definition; remove the generic parameters",
                "query functions are not generic: remove the `where` clause",
            ]
        );
    }

    #[test]
    fn a_return_type_is_required() {
        assert_eq!(
            check_fn(
                Kind::StreamingTable,
                quote!(
                    fn silver() {}
                )
            ),
            ["query functions must return `Plan`: write `fn silver() -> Plan`"]
        );
    }

    #[test]
    fn unsafe_and_extern_are_refused() {
        assert_eq!(
            check_fn(
                Kind::Table,
                quote!(
                    unsafe extern "C" fn silver() -> Plan {
                        todo!()
                    }
                )
            ),
            [
                "query functions can't be `unsafe`: lakeflow calls them as safe functions; remove `unsafe`",
                "query functions use the Rust ABI: remove the `extern`",
            ]
        );
    }

    #[test]
    fn a_second_dataset_attribute_is_refused() {
        assert_eq!(
            check_fn(
                Kind::Table,
                quote!(
                    #[materialized_view]
                    fn silver() -> Plan {
                        todo!()
                    }
                )
            ),
            ["a function defines one dataset: remove `#[materialized_view]` or `#[table]`"]
        );
        assert_eq!(
            check_fn(
                Kind::Table,
                quote!(
                    #[dp::streaming_table(name = "x")]
                    fn silver() -> Plan {
                        todo!()
                    }
                )
            ),
            ["a function defines one dataset: remove `#[dp::streaming_table]` or `#[table]`"]
        );
        assert_eq!(
            check_fn(
                Kind::TemporaryView,
                quote!(
                    #[::lakeflow::temporary_view]
                    fn silver() -> Plan {
                        todo!()
                    }
                )
            ),
            [
                "a function defines one dataset: remove `#[::lakeflow::temporary_view]` or `#[temporary_view]`"
            ]
        );
        assert_eq!(
            check_fn(
                Kind::Table,
                quote!(
                    #[table]
                    fn silver() -> Plan {
                        todo!()
                    }
                )
            ),
            ["a function defines one dataset: remove the repeated `#[table]`"]
        );
    }

    #[test]
    fn all_signature_errors_are_reported_together() {
        let errors = check_fn(
            Kind::Table,
            quote!(
                #[table]
                fn silver<T>(x: T)
                where
                    T: Clone,
                {
                }
            ),
        );
        assert_eq!(errors.len(), 5, "{errors:?}");
    }

    #[test]
    fn dataset_names() {
        assert_eq!(identifier_problem("silver_orders_2"), None);
        assert_eq!(identifier_problem("_x"), None);
        assert_eq!(identifier_problem(&"a".repeat(255)), None);
        assert_eq!(identifier_problem("").unwrap(), "is empty");
        assert_eq!(
            identifier_problem("2x").unwrap(),
            "starts with '2'; names start with an ASCII letter or `_`, as in \"silver_orders\""
        );
        assert_eq!(
            identifier_problem("my-table").unwrap(),
            "contains '-'; names have only ASCII letters, digits and `_`, as in \"silver_orders\""
        );
        assert_eq!(
            identifier_problem(&"a".repeat(256)).unwrap(),
            "is 256 characters long; names have at most 255"
        );
    }

    #[test]
    fn invalid_names_in_options() {
        assert_eq!(
            check_options(quote!(name = "gold-daily")),
            [
                "invalid dataset name \"gold-daily\": it contains '-'; names have only ASCII letters, \
              digits and `_`, as in \"silver_orders\""
            ]
        );
        assert_eq!(
            check_options(quote!(name = "")),
            ["invalid dataset name \"\": it is empty"]
        );
    }

    #[test]
    fn an_invalid_function_name_asks_for_a_name() {
        assert_eq!(
            check_fn(
                Kind::Table,
                quote!(
                    fn café() -> Plan {
                        todo!()
                    }
                )
            ),
            [
                "the function name `café` is not a valid dataset name: it contains 'é'; names have only \
              ASCII letters, digits and `_`, as in \"silver_orders\"; give the dataset a name with `name = \"...\"`"
            ]
        );
        assert_eq!(
            check_fn(
                Kind::Table,
                quote!(
                    fn r#match() -> Plan {
                        todo!()
                    }
                )
            ),
            Vec::<String>::new()
        );
    }

    #[test]
    fn partition_cols_and_properties() {
        assert_eq!(
            check_options(quote!(partition_cols = ["a", "", "b c", "a"])),
            [
                "invalid partition column \"\": it is empty",
                "invalid partition column \"b c\": it contains ' '; names have only ASCII letters, \
                 digits and `_`, as in \"silver_orders\"",
                "partition column \"a\" is listed twice: remove one",
            ]
        );
        assert_eq!(
            check_options(quote!(table_properties = {"k": "1", "": "2", "k": "3"})),
            [
                "table property keys can't be empty: write a key such as \"delta.appendOnly\"",
                "table property \"k\" is given twice: remove one",
            ]
        );
    }

    #[test]
    fn dataset_name_defaults_to_the_function_name() {
        let item: ItemFn = syn::parse2(quote!(
            fn r#type() -> Plan {
                todo!()
            }
        ))
        .unwrap();
        assert_eq!(dataset_name(&item, None).value(), "type");
        let name = LitStr::new("gold", Span::call_site());
        assert_eq!(dataset_name(&item, Some(&name)).value(), "gold");
    }

    /// The errors of `check_expectations` for dataset `silver` of `kind` with these options
    /// and expectation attributes; the attributes must parse.
    fn check_rules(kind: Kind, options: TokenStream, attrs: Vec<Attribute>) -> Vec<String> {
        let (options, errors) = crate::attr::parse(kind, options);
        assert!(errors.is_empty(), "{errors:?}");
        let mut expectations = Vec::new();
        for attr in &attrs {
            let expect = crate::attr::expectation_kind(attr).expect("an expectation");
            expectations.extend(crate::attr::parse_expectation(expect, attr).unwrap());
        }
        check_expectations(kind, "silver", &expectations, options.quarantine.as_ref())
            .iter()
            .map(Error::to_string)
            .collect()
    }

    #[test]
    fn sql_rules_must_be_one_expression() {
        for ok in [
            "amount > 0",
            "customer_id IS NOT NULL",
            "status IN ('a', 'b') AND qty BETWEEN 1 AND 10",
            "CASE WHEN a > 0 THEN true ELSE false END",
            "length(name) > 0 OR name LIKE 'x%'",
            "CAST(x AS INT) <> 0 -- a comment",
            "\"quoted col\" > 0",
            "EXISTS (SELECT 1 FROM t)",
        ] {
            assert_eq!(sql_problem(ok), None, "{ok}");
        }
        assert_eq!(
            sql_problem("amount >").unwrap(),
            "Expected: an expression, found: EOF"
        );
        assert_eq!(
            sql_problem("amount > 0 amount").unwrap(),
            "Expected: end of expression, found: amount at Line: 1, Column: 12"
        );
        assert_eq!(
            sql_problem("a > 0; DROP TABLE x").unwrap(),
            "Expected: end of expression, found: ; at Line: 1, Column: 6"
        );
        assert_eq!(
            sql_problem("a > 0, b > 0").unwrap(),
            "Expected: end of expression, found: , at Line: 1, Column: 6"
        );
        assert_eq!(
            sql_problem("status = 'ok").unwrap(),
            "Unterminated string literal at Line: 1, Column: 10"
        );
        assert_eq!(
            sql_problem(&"(".repeat(100)).unwrap(),
            "it is nested too deeply; split it into several expectations"
        );
    }

    #[test]
    fn bad_sql_names_the_expectation() {
        assert_eq!(
            check_rules(
                Kind::Table,
                quote!(),
                vec![
                    syn::parse_quote!(#[expect("valid_amount", "amount >")]),
                    syn::parse_quote!(#[expect_all_or_fail({"ok": "a > 0", "blank": "  "})]),
                ]
            ),
            [
                "expectation `valid_amount`: `amount >` is not a valid SQL expression: \
                 Expected: an expression, found: EOF",
                "expectation `blank` has an empty SQL expression: write the condition each row \
                 must meet, such as \"amount > 0\"",
            ]
        );
    }

    #[test]
    fn expectation_names_are_valid_and_distinct_across_all_rules() {
        assert_eq!(
            check_rules(
                Kind::StreamingTable,
                quote!(),
                vec![
                    syn::parse_quote!(#[expect("valid amount", "amount > 0")]),
                    syn::parse_quote!(#[expect_or_drop("pk", "id IS NOT NULL")]),
                    syn::parse_quote!(#[expect_all({"a": "a > 0", "pk": "b > 0"})]),
                    syn::parse_quote!(#[expect_unique_or_fail("a", ["id"])]),
                    syn::parse_quote!(#[expect("", "x > 0")]),
                ]
            ),
            [
                "invalid expectation name \"valid amount\": it contains ' '; names have only \
                 ASCII letters, digits and `_`, as in \"silver_orders\"",
                "expectation `pk` is defined twice on `silver`: give each expectation its own name",
                "expectation `a` is defined twice on `silver`: give each expectation its own name",
                "invalid expectation name \"\": it is empty",
            ]
        );
    }

    #[test]
    fn unique_columns() {
        assert_eq!(
            check_rules(
                Kind::MaterializedView,
                quote!(),
                vec![
                    syn::parse_quote!(#[expect_unique("pk", [])]),
                    syn::parse_quote!(#[expect_unique_or_drop("key", ["id", "line no", "id"])]),
                    syn::parse_quote!(#[expect_unique_or_fail("ok", ["id", "line"])]),
                ]
            ),
            [
                "uniqueness rule `pk` needs at least one column: list the columns that identify \
                 a row, such as [\"order_id\"]",
                "invalid column \"line no\" in uniqueness rule `key`: it contains ' '; names have \
                 only ASCII letters, digits and `_`, as in \"silver_orders\"",
                "column \"id\" is listed twice in uniqueness rule `key`: remove one",
            ]
        );
    }

    #[test]
    fn temporary_views_take_no_rules() {
        assert_eq!(
            check_rules(
                Kind::TemporaryView,
                quote!(),
                vec![
                    syn::parse_quote!(#[expect_or_warn("a", "a > 0")]),
                    syn::parse_quote!(#[expect_unique_or_drop("pk", ["id"])]),
                ]
            ),
            [
                "`#[lakeflow::expect]` is not allowed on `#[temporary_view]`: a view is never \
                 materialized, so its rules would never be counted; put the rule on the table \
                 that reads it",
                "`#[expect_unique_or_drop]` is not allowed on `#[temporary_view]`: a view is \
                 never materialized, so its rules would never be counted; put the rule on the \
                 table that reads it"
            ]
        );
    }

    #[test]
    fn quarantine_needs_a_drop_rule() {
        let message = "quarantine keeps the rows drop rules remove, but `silver` has no \
                       `#[expect_or_drop]`; add one or remove `quarantine`";
        assert_eq!(
            check_rules(
                Kind::Table,
                quote!(quarantine = true),
                vec![
                    syn::parse_quote!(#[expect("a", "a > 0")]),
                    syn::parse_quote!(#[expect_or_fail("b", "b > 0")]),
                    syn::parse_quote!(#[expect_all_or_drop({})]),
                ]
            ),
            [message]
        );
        assert_eq!(
            check_rules(Kind::Table, quote!(quarantine = "rejects"), vec![]),
            [message]
        );
        for drop in [
            syn::parse_quote!(#[expect_or_drop("a", "a > 0")]),
            syn::parse_quote!(#[expect_all_or_drop({"a": "a > 0"})]),
            syn::parse_quote!(#[expect_unique_or_drop("a", ["id"])]),
        ] {
            assert_eq!(
                check_rules(Kind::StreamingTable, quote!(quarantine = true), vec![drop]),
                Vec::<String>::new()
            );
        }
        assert_eq!(
            check_rules(Kind::Table, quote!(quarantine = false), vec![]),
            Vec::<String>::new()
        );
    }

    #[test]
    fn quarantine_table_names() {
        let drop: Vec<Attribute> = vec![syn::parse_quote!(#[expect_or_drop("a", "a > 0")])];
        assert_eq!(
            check_rules(
                Kind::Table,
                quote!(quarantine = "silver-rejects"),
                drop.clone()
            ),
            [
                "invalid quarantine table name \"silver-rejects\": it contains '-'; names have \
                 only ASCII letters, digits and `_`, as in \"silver_orders\""
            ]
        );
        assert_eq!(
            check_rules(Kind::Table, quote!(quarantine = "silver"), drop.clone()),
            [
                "the quarantine table needs a name of its own, not `silver`: \
                 write `quarantine = true` for `silver_quarantine`"
            ]
        );

        let (options, _) = crate::attr::parse(Kind::Table, quote!(quarantine = true));
        let expect = crate::attr::parse_expectation(
            crate::attr::expectation_kind(&drop[0]).unwrap(),
            &drop[0],
        )
        .unwrap();
        let long = "a".repeat(250);
        let errors: Vec<String> =
            check_expectations(Kind::Table, &long, &expect, options.quarantine.as_ref())
                .iter()
                .map(Error::to_string)
                .collect();
        assert_eq!(
            errors,
            [format!(
                "the quarantine table `{long}_quarantine` is not a valid name: it is 261 \
                 characters long; names have at most 255; name it with `quarantine = \"...\"`"
            )]
        );
    }

    #[test]
    fn quarantine_table_resolution() {
        let resolve = |args: TokenStream| {
            let (options, _) = crate::attr::parse(Kind::Table, args);
            quarantine_table("silver", options.quarantine.as_ref()).map(|lit| lit.value())
        };
        assert_eq!(resolve(quote!()), None);
        assert_eq!(resolve(quote!(quarantine = false)), None);
        assert_eq!(
            resolve(quote!(quarantine = true)).as_deref(),
            Some("silver_quarantine")
        );
        assert_eq!(
            resolve(quote!(quarantine = "rejects")).as_deref(),
            Some("rejects")
        );
    }

    #[test]
    fn misplaced_expectations_say_where_they_go() {
        let attrs: Vec<Attribute> = vec![
            syn::parse_quote!(#[doc = "x"]),
            syn::parse_quote!(#[lakeflow::materialized_view(name = "gold")]),
        ];
        let drop = ExpectKind::new(crate::attr::Form::One, Action::Drop);
        assert_eq!(
            misplaced(drop, &attrs).to_string(),
            "`#[expect_or_drop]` must come below `#[lakeflow::materialized_view]`"
        );
        let all = ExpectKind::new(crate::attr::Form::All, Action::Warn);
        assert_eq!(
            misplaced(all, &attrs[..1]).to_string(),
            "`#[expect_all]` needs a dataset attribute above it: add `#[table]`, \
             `#[materialized_view]`, `#[streaming_table]` or `#[temporary_view]`"
        );
        let attr: Attribute = syn::parse_quote!(#[expect("a", "b")]);
        let warn = ExpectKind::new(crate::attr::Form::One, Action::Warn);
        assert_eq!(
            written_above(Kind::StreamingTable, warn, &attr).to_string(),
            "`#[lakeflow::expect]` must come below `#[streaming_table]`"
        );
    }
}
