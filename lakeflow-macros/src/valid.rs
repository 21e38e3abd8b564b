//! What makes a function a query function, and what makes option values valid.
//!
//! A query function is a free, non-generic, safe Rust function with no parameters that
//! returns `Plan`; it carries one dataset attribute. Whether the return type really is
//! `Plan` is left to the type checker (the expansion points its error at the return type);
//! everything else is checked here, on the syntax, with the error on the offending token.
//! Depends on `attr.rs` for the parsed options, and on nothing in the runtime.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::ext::IdentExt as _;
use syn::{Attribute, Error, FnArg, ItemFn, LitStr, ReturnType};

use crate::attr::{Kind, Options};

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
        let written = path.to_token_stream().to_string().replace(' ', "");
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
}
