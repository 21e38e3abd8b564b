//! Code generation: the user's function plus one const `DatasetRecord` submitted with
//! `inventory`.
//!
//! The function is emitted as written, less the expectation attributes below the dataset
//! attribute, which move into the record. The generated code names only
//! `::lakeflow::__private::…` items, so a user needs nothing but `lakeflow` in Cargo.toml.
//! The record lives in a `const _: () = { ... };` block: it adds no name to the user's
//! module, and it sees the function even when it is private. On any error the function is
//! still emitted next to the `compile_error!`s, so the IDE keeps resolving it (tokio's
//! `token_stream_with_error`).

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::parse::{ParseStream, Parser as _};
use syn::spanned::Spanned as _;
use syn::{Attribute, Error, Item, ItemFn, ReturnType};

use crate::attr::{self, Action, ExpectKind, Expectation, Kind, Options, Rule};
use crate::valid;

/// Expands `#[kind(args)] item`.
pub fn dataset(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    let (options, mut errors) = attr::parse(kind, args);
    let mut func = match syn::parse2::<Item>(item.clone()) {
        Ok(Item::Fn(func)) => func,
        parsed => {
            let found = parsed
                .ok()
                .and_then(|item| describe(&item))
                .map_or_else(String::new, |what| format!(", not on {what}"));
            errors.push(Error::new(
                Span::call_site(),
                format!(
                    "`#[{}]` must be placed on a function returning `Plan`{found}",
                    kind.attr_name()
                ),
            ));
            // The expectations go too: left in, each would add "needs a dataset attribute".
            return with_errors(without_expectations(item), errors);
        }
    };

    let taken = attr::take_expectations(&mut func.attrs);
    let mut expectations = Vec::new();
    for (expect, attr) in &taken {
        if written_above(attr, &func) {
            errors.push(valid::written_above(kind, *expect, attr));
        }
        match attr::parse_expectation(*expect, attr) {
            Ok(rules) => expectations.extend(rules),
            Err(error) => errors.push(error),
        }
    }
    errors.extend(valid::check(kind, &func, &options));
    let name = valid::dataset_name(&func, options.name.as_ref()).value();
    errors.extend(valid::check_expectations(
        kind,
        &name,
        &expectations,
        options.quarantine.as_ref(),
    ));

    let item = if taken.is_empty() {
        item
    } else {
        func.to_token_stream()
    };
    if !errors.is_empty() {
        return with_errors(item, errors);
    }
    let record = record(kind, &func, &options, &expectations);
    quote! {
        #item
        #record
    }
}

/// Expands an expectation attribute that the compiler reached itself: it is above its
/// dataset attribute, or has none. Emits the item unchanged with the error.
pub fn misplaced(expect: ExpectKind, item: TokenStream) -> TokenStream {
    let attrs = split_attrs(item.clone()).map_or_else(|_| Vec::new(), |(attrs, _)| attrs);
    with_errors(item, vec![valid::misplaced(expect, &attrs)])
}

/// The `const _: () = { inventory::submit! { DatasetRecord { ... } } };` block.
fn record(
    kind: Kind,
    func: &ItemFn,
    options: &Options,
    expectations: &[Expectation],
) -> TokenStream {
    let private = quote!(::lakeflow::__private);
    let ident = &func.sig.ident;
    let name = valid::dataset_name(func, options.name.as_ref());
    let kind = match kind {
        Kind::Table => quote!(Table),
        Kind::MaterializedView => quote!(MaterializedView),
        Kind::StreamingTable => quote!(StreamingTable),
        Kind::TemporaryView => quote!(TemporaryView),
        Kind::AppendFlow => quote!(AppendFlow),
    };
    let comment = option_tokens(options.comment.as_ref());
    let partition_cols = options.partition_cols.iter().flatten();
    let (keys, values): (Vec<_>, Vec<_>) =
        options.table_properties.iter().flatten().cloned().unzip();
    let expectations = expectations.iter().map(|expectation| {
        let name = &expectation.name;
        let rule = match &expectation.rule {
            Rule::Sql(sql) => quote!(#private::RuleRecord::Sql(#sql)),
            Rule::Unique { columns, .. } => quote!(#private::RuleRecord::Unique(&[#(#columns),*])),
        };
        let action = match expectation.kind.action {
            Action::Warn => quote!(Warn),
            Action::Drop => quote!(Drop),
            Action::Fail => quote!(Fail),
        };
        quote! {
            #private::ExpectationRecord {
                name: #name,
                rule: #rule,
                action: #private::ExpectAction::#action,
            }
        }
    });
    let quarantine = match valid::quarantine_table(&name.value(), options.quarantine.as_ref()) {
        Some(table) => quote!(::core::option::Option::Some(#table)),
        None => quote!(::core::option::Option::None),
    };

    // The record holds a small adapter rather than the user's fn, so that a function not
    // returning `Plan` fails with "expected `Result<DataFrame, Error>`, found `String`" on
    // its return type (the adapter is spanned there) instead of a fn-pointer mismatch.
    let ret_span = match &func.sig.output {
        ReturnType::Type(_, ty) => ty.span(),
        ReturnType::Default => ident.span(),
    };
    let mut callee = ident.clone();
    callee.set_span(ret_span);
    let (adapter, query) = if func.sig.asyncness.is_some() {
        let adapter = quote_spanned! {ret_span=>
            fn __lakeflow_query() -> #private::PlanFuture {
                ::std::boxed::Box::pin(#callee())
            }
        };
        (adapter, quote!(#private::QueryFn::Async(__lakeflow_query)))
    } else {
        let adapter = quote_spanned! {ret_span=>
            fn __lakeflow_query() -> #private::Plan {
                #callee()
            }
        };
        (adapter, quote!(#private::QueryFn::Sync(__lakeflow_query)))
    };

    let target = option_tokens(options.target.as_ref());
    let once = options.once.as_ref().is_some_and(|flag| flag.value);

    // A `#[cfg]` below the attribute may remove the function; the record must go with it.
    let cfgs = func.attrs.iter().filter(|attr| attr.path().is_ident("cfg"));

    quote! {
        #(#cfgs)*
        const _: () = {
            #adapter
            #private::inventory::submit! {
                #private::DatasetRecord {
                    name: #name,
                    kind: #private::DatasetKind::#kind,
                    comment: #comment,
                    partition_cols: &[#(#partition_cols),*],
                    table_properties: &[#((#keys, #values)),*],
                    expectations: &[#(#expectations),*],
                    quarantine: #quarantine,
                    location: #private::SourceLocation {
                        file: ::core::file!(),
                        line: ::core::line!(),
                        column: ::core::column!(),
                    },
                    query: ::core::option::Option::Some(#query),
                    target: #target,
                    once: #once,
                }
            }
        };
    }
}

/// `Some("...")` or `None`, as tokens of a `&'static str` option.
fn option_tokens(value: Option<&syn::LitStr>) -> TokenStream {
    match value {
        Some(value) => quote!(::core::option::Option::Some(#value)),
        None => quote!(::core::option::Option::None),
    }
}

/// Expands `create_streaming_table!("name", comment = "...", partition_cols = [..],
/// table_properties = {..})`: the record of a streaming table without a query, which append
/// flows write.
pub fn create_streaming_table(input: TokenStream) -> TokenStream {
    let parsed = (|stream: ParseStream| {
        let name: syn::LitStr = stream.parse()?;
        let rest = if stream.is_empty() {
            TokenStream::new()
        } else {
            stream.parse::<syn::Token![,]>()?;
            stream.parse::<TokenStream>()?
        };
        Ok((name, rest))
    })
    .parse2(input);
    let (name, rest) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => {
            return Error::new(
                error.span(),
                "write `create_streaming_table!(\"all_orders\")`, with options after the name: \
                 `comment = \"...\"`, `partition_cols = [..]`, `table_properties = {..}`",
            )
            .to_compile_error();
        }
    };
    let (options, mut errors) = attr::parse(Kind::StreamingTable, rest);
    if let Some(problem) = valid::identifier_problem(&name.value()) {
        errors.push(Error::new_spanned(
            &name,
            format!("invalid dataset name {:?}: it {problem}", name.value()),
        ));
    }
    if let Some(given) = &options.name {
        errors.push(Error::new_spanned(
            given,
            "the name is the first argument: remove `name = ..`",
        ));
    }
    if let Some(quarantine) = &options.quarantine {
        errors.push(Error::new_spanned(
            &quarantine.key,
            "`quarantine` keeps rows that drop rules remove; put drop rules and `quarantine` on the append flows",
        ));
    }
    if let Some(cols) = &options.partition_cols {
        errors.extend(valid::partition_col_errors(cols));
    }
    if !errors.is_empty() {
        return with_errors(TokenStream::new(), errors);
    }
    let private = quote!(::lakeflow::__private);
    let comment = option_tokens(options.comment.as_ref());
    let partition_cols = options.partition_cols.iter().flatten();
    let (keys, values): (Vec<_>, Vec<_>) =
        options.table_properties.iter().flatten().cloned().unzip();
    quote! {
        const _: () = {
            #private::inventory::submit! {
                #private::DatasetRecord {
                    name: #name,
                    kind: #private::DatasetKind::StreamingTable,
                    comment: #comment,
                    partition_cols: &[#(#partition_cols),*],
                    table_properties: &[#((#keys, #values)),*],
                    expectations: &[],
                    quarantine: ::core::option::Option::None,
                    location: #private::SourceLocation {
                        file: ::core::file!(),
                        line: ::core::line!(),
                        column: ::core::column!(),
                    },
                    query: ::core::option::Option::None,
                    target: ::core::option::Option::None,
                    once: false,
                }
            }
        };
    }
}

/// `item` as written, followed by every error as a `compile_error!`.
fn with_errors(item: TokenStream, errors: Vec<Error>) -> TokenStream {
    let mut tokens = item;
    if let Some(error) = errors.into_iter().reduce(|mut all, next| {
        all.combine(next);
        all
    }) {
        error.to_compile_error().to_tokens(&mut tokens);
    }
    tokens
}

/// Whether `attr` was written above the dataset attribute being expanded. rustc expands the
/// first attribute that is not one of its own, and `expect` is its lint attribute's name, so
/// `#[expect(..)] #[table]` reaches `#[table]` with `#[expect]` in the item just like
/// `#[table] #[expect(..)]` does; only the source position tells them apart. True only when
/// the dataset attribute sits between `attr` and the `fn` keyword in the same file, so an
/// item put together by a `macro_rules!` is never misjudged. False outside a compiler
/// session (unit tests).
fn written_above(attr: &Attribute, func: &ItemFn) -> bool {
    if !proc_macro::is_available() {
        return false;
    }
    let position = |span: proc_macro::Span| (span.file(), span.line(), span.column());
    let attr = position(attr.pound_token.span.unwrap());
    let dataset = position(proc_macro::Span::call_site());
    let body = position(func.sig.fn_token.span.unwrap());
    attr.0 == dataset.0 && dataset.0 == body.0 && attr < dataset && dataset < body
}

/// The outer attributes of an item, and the rest of its tokens.
fn split_attrs(item: TokenStream) -> syn::Result<(Vec<Attribute>, TokenStream)> {
    let split = |input: ParseStream| {
        let attrs = input.call(Attribute::parse_outer)?;
        let rest: TokenStream = input.parse()?;
        Ok((attrs, rest))
    };
    split.parse2(item)
}

/// `item` without its expectation attributes, for an item that is not a function.
fn without_expectations(item: TokenStream) -> TokenStream {
    match split_attrs(item.clone()) {
        Ok((mut attrs, rest)) => {
            attr::take_expectations(&mut attrs);
            quote!(#(#attrs)* #rest)
        }
        Err(_) => item,
    }
}

/// "a struct", "an `impl` block", ... for the non-function error.
fn describe(item: &Item) -> Option<&'static str> {
    Some(match item {
        Item::Const(_) => "a const",
        Item::Enum(_) => "an enum",
        Item::ExternCrate(_) => "an `extern crate`",
        Item::ForeignMod(_) => "an `extern` block",
        Item::Impl(_) => "an `impl` block",
        Item::Macro(_) => "a macro invocation",
        Item::Mod(_) => "a module",
        Item::Static(_) => "a static",
        Item::Struct(_) => "a struct",
        Item::Trait(_) | Item::TraitAlias(_) => "a trait",
        Item::Type(_) => "a type alias",
        Item::Union(_) => "a union",
        Item::Use(_) => "a `use`",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The expansion as a string with the spaces of `TokenStream::to_string` removed, so
    /// that assertions read like the code.
    fn expand(kind: Kind, args: TokenStream, item: TokenStream) -> String {
        dataset(kind, args, item).to_string().replace(' ', "")
    }

    #[test]
    fn sync_function_with_defaults_goes_through_an_adapter() {
        let item = quote!(
            /// Orders.
            #[allow(clippy::all)]
            fn silver() -> Plan {
                Ok(read("bronze")?)
            }
        );
        let out = expand(Kind::Table, quote!(), item.clone());
        let item = item.to_string().replace(' ', "");
        assert!(
            out.starts_with(&item),
            "the function is emitted untouched: {out}"
        );
        let record = &out[item.len()..];
        assert_eq!(
            record,
            "const_:()={\
             fn__lakeflow_query()->::lakeflow::__private::Plan{silver()}\
             ::lakeflow::__private::inventory::submit!{\
             ::lakeflow::__private::DatasetRecord{\
             name:\"silver\",\
             kind:::lakeflow::__private::DatasetKind::Table,\
             comment:::core::option::Option::None,\
             partition_cols:&[],\
             table_properties:&[],\
             expectations:&[],\
             quarantine:::core::option::Option::None,\
             location:::lakeflow::__private::SourceLocation{file:::core::file!(),line:::core::line!(),column:::core::column!(),},\
             query:::core::option::Option::Some(::lakeflow::__private::QueryFn::Sync(__lakeflow_query)),\
             target:::core::option::Option::None,\
             once:false,\
             }}};"
        );
    }

    #[test]
    fn every_option_reaches_the_record() {
        let out = expand(
            Kind::MaterializedView,
            quote!(
                name = "gold",
                comment = "Daily_revenue",
                partition_cols = ["day", "country"],
                table_properties = {"delta.appendOnly": "true", "k": "v"}
            ),
            quote!(
                pub fn r#gold_daily() -> Plan {
                    sql("SELECT 1")
                }
            ),
        );
        for expected in [
            "name:\"gold\"",
            "kind:::lakeflow::__private::DatasetKind::MaterializedView",
            "comment:::core::option::Option::Some(\"Daily_revenue\")",
            "partition_cols:&[\"day\",\"country\"]",
            "table_properties:&[(\"delta.appendOnly\",\"true\"),(\"k\",\"v\")]",
            "fn__lakeflow_query()->::lakeflow::__private::Plan{r#gold_daily()}",
            "query:::core::option::Option::Some(::lakeflow::__private::QueryFn::Sync(__lakeflow_query))",
        ] {
            assert!(out.contains(expected), "{expected} not in {out}");
        }
    }

    #[test]
    fn an_append_flow_records_its_target_and_once() {
        let out = expand(
            Kind::AppendFlow,
            quote!(target = "all_orders", once = true, name = "backfill"),
            quote!(
                fn orders_backfill() -> Plan {
                    read("archive")
                }
            ),
        );
        for expected in [
            "name:\"backfill\"",
            "kind:::lakeflow::__private::DatasetKind::AppendFlow",
            "target:::core::option::Option::Some(\"all_orders\")",
            "once:true",
        ] {
            assert!(out.contains(expected), "{expected} not in {out}");
        }
        let missing = expand(
            Kind::AppendFlow,
            quote!(),
            quote!(
                fn f() -> Plan {
                    read("x")
                }
            ),
        );
        assert!(
            missing.contains("needsthestreamingtableitwrites"),
            "{missing}"
        );
        let wrong = expand(
            Kind::AppendFlow,
            quote!(target = "t", partition_cols = ["a"]),
            quote!(
                fn f() -> Plan {
                    read("x")
                }
            ),
        );
        assert!(
            wrong.contains("`partition_cols`isnotallowedon`#[append_flow]`"),
            "{wrong}"
        );
    }

    #[test]
    fn create_streaming_table_records_a_table_without_a_query() {
        let out = create_streaming_table(quote!(
            "all_orders",
            comment = "All",
            partition_cols = ["r"]
        ))
        .to_string()
        .replace(' ', "");
        for expected in [
            "name:\"all_orders\"",
            "kind:::lakeflow::__private::DatasetKind::StreamingTable",
            "comment:::core::option::Option::Some(\"All\")",
            "partition_cols:&[\"r\"]",
            "query:::core::option::Option::None",
        ] {
            assert!(out.contains(expected), "{expected} not in {out}");
        }
        let bad = create_streaming_table(quote!(all_orders)).to_string();
        assert!(bad.contains("write `create_streaming_table!"), "{bad}");
        let bad = create_streaming_table(quote!("t", quarantine = true)).to_string();
        assert!(
            bad.contains("put drop rules and `quarantine` on the append flows"),
            "{bad}"
        );
    }

    #[test]
    fn raw_function_name_is_unraw_as_dataset_name() {
        let out = expand(
            Kind::TemporaryView,
            quote!(),
            quote!(
                fn r#match() -> Plan {
                    todo!()
                }
            ),
        );
        assert!(out.contains("name:\"match\""), "{out}");
        assert!(out.contains("DatasetKind::TemporaryView"), "{out}");
    }

    #[test]
    fn async_function_goes_through_an_adapter() {
        let out = expand(
            Kind::StreamingTable,
            quote!(),
            quote!(
                async fn bronze() -> Plan {
                    read("x")
                }
            ),
        );
        assert!(
            out.contains(
                "const_:()={fn__lakeflow_query()->::lakeflow::__private::PlanFuture{\
                 ::std::boxed::Box::pin(bronze())}"
            ),
            "{out}"
        );
        assert!(
            out.contains(
                "query:::core::option::Option::Some(::lakeflow::__private::QueryFn::Async(__lakeflow_query))"
            ),
            "{out}"
        );
    }

    #[test]
    fn cfg_attributes_are_copied_to_the_record() {
        let out = expand(
            Kind::Table,
            quote!(),
            quote!(
                #[cfg(feature = "x")]
                #[allow(unused)]
                fn silver() -> Plan {
                    todo!()
                }
            ),
        );
        assert!(out.contains("#[cfg(feature=\"x\")]const_:()="), "{out}");
        assert!(!out.contains("#[allow(unused)]const_"), "{out}");
    }

    #[test]
    fn errors_keep_the_item_and_are_all_reported() {
        let item = quote!(
            fn silver(x: i32) -> Plan {
                todo!()
            }
        );
        let out = expand(Kind::Table, quote!(nme = "x"), item.clone());
        assert!(out.starts_with(&item.to_string().replace(' ', "")), "{out}");
        assert_eq!(out.matches("compile_error!").count(), 2, "{out}");
        assert!(!out.contains("submit!"), "{out}");
    }

    #[test]
    fn non_functions_are_refused() {
        let item = quote!(
            struct Silver;
        );
        let out = dataset(Kind::Table, quote!(), item.clone()).to_string();
        assert!(out.starts_with(&item.to_string()), "{out}");
        assert!(
            out.contains(
                "`#[table]` must be placed on a function returning `Plan`, not on a struct"
            ),
            "{out}"
        );
        let out = dataset(Kind::StreamingTable, quote!(), quote!(impl Silver {})).to_string();
        assert!(
            out.contains(
                "`#[streaming_table]` must be placed on a function returning `Plan`, not on an `impl` block"
            ),
            "{out}"
        );
    }

    #[test]
    fn expectations_move_from_the_function_into_the_record() {
        let out = expand(
            Kind::Table,
            quote!(quarantine = true),
            quote!(
                /// Orders.
                #[expect_or_drop("valid_customer", "customer_id IS NOT NULL")]
                #[allow(unused)]
                #[lakeflow::expect("positive_amount", "amount > 0")]
                #[expect(dead_code)]
                #[expect_all_or_fail({"b": "b > 0", "a": "a > 0"})]
                #[expect_unique_or_drop("pk", ["order_id", "line"])]
                fn silver() -> Plan {
                    read("bronze")
                }
            ),
        );
        let expected_fn = quote!(
            /// Orders.
            #[allow(unused)]
            #[expect(dead_code)]
            fn silver() -> Plan {
                read("bronze")
            }
        )
        .to_string()
        .replace(' ', "");
        assert!(out.starts_with(&expected_fn), "{out}");
        let record = |name: &str, rule: &str, action: &str| {
            format!(
                "::lakeflow::__private::ExpectationRecord{{name:\"{name}\",\
                 rule:::lakeflow::__private::RuleRecord::{rule},\
                 action:::lakeflow::__private::ExpectAction::{action},}}"
            )
        };
        let expectations = [
            record("valid_customer", "Sql(\"customer_id IS NOT NULL\")", "Drop"),
            record("positive_amount", "Sql(\"amount > 0\")", "Warn"),
            record("b", "Sql(\"b > 0\")", "Fail"),
            record("a", "Sql(\"a > 0\")", "Fail"),
            record("pk", "Unique(&[\"order_id\",\"line\"])", "Drop"),
        ]
        .join(",")
        .replace(' ', "");
        assert!(
            out.contains(&format!("expectations:&[{expectations}],")),
            "{out}"
        );
        assert!(
            out.contains("quarantine:::core::option::Option::Some(\"silver_quarantine\"),"),
            "{out}"
        );
    }

    #[test]
    fn a_named_quarantine_reaches_the_record() {
        let out = expand(
            Kind::StreamingTable,
            quote!(name = "bronze", quarantine = "bronze_rejects"),
            quote!(
                #[expect_unique_or_drop("pk", ["id"])]
                fn b() -> Plan {
                    todo!()
                }
            ),
        );
        assert!(
            out.contains("quarantine:::core::option::Option::Some(\"bronze_rejects\"),"),
            "{out}"
        );
        let out = expand(
            Kind::Table,
            quote!(quarantine = false),
            quote!(
                fn b() -> Plan {
                    todo!()
                }
            ),
        );
        assert!(
            out.contains("expectations:&[],quarantine:::core::option::Option::None,"),
            "{out}"
        );
    }

    #[test]
    fn expectation_errors_keep_the_function_without_them() {
        let out = expand(
            Kind::TemporaryView,
            quote!(),
            quote!(
                #[expect("valid_amount", "amount >")]
                #[expect_unique("pk", ["id"])]
                #[expect_or_drop("valid_amount", "amount > 0")]
                #[expect_or_fail(only_name)]
                fn v() -> Plan {
                    todo!()
                }
            ),
        );
        assert!(out.starts_with("fnv()->Plan{todo!()}"), "{out}");
        assert_eq!(out.matches("compile_error!").count(), 6, "{out}");
        assert!(!out.contains("submit!"), "{out}");
    }

    #[test]
    fn a_non_function_loses_its_expectations_too() {
        let out = dataset(
            Kind::Table,
            quote!(),
            quote!(
                #[expect_or_drop("a", "a > 0")]
                #[derive(Debug)]
                struct Silver;
            ),
        )
        .to_string();
        assert!(
            out.starts_with("# [derive (Debug)] struct Silver ;"),
            "{out}"
        );
        assert_eq!(out.matches("compile_error !").count(), 1, "{out}");
    }

    #[test]
    fn a_misplaced_expectation_keeps_the_item_and_says_where_it_goes() {
        let item = quote!(
            #[expect("a", "a > 0")]
            #[table(name = "x")]
            fn silver() -> Plan {
                todo!()
            }
        );
        let drop = ExpectKind::new(crate::attr::Form::One, Action::Drop);
        let out = misplaced(drop, item.clone()).to_string();
        assert!(out.starts_with(&item.to_string()), "{out}");
        assert!(
            out.contains("`#[expect_or_drop]` must come below `#[table]`"),
            "{out}"
        );
        let out = misplaced(
            drop,
            quote!(
                struct S;
            ),
        )
        .to_string();
        assert!(
            out.contains("`#[expect_or_drop]` needs a dataset attribute above it"),
            "{out}"
        );
    }
}
