//! `#[traced(OPERATION, field = expr, …)]`: the `artifacts` crate's span per
//! store operation and app run, so that each instrumented function carries
//! one attribute and nothing else.
//!
//! The function gets an INFO span named OPERATION (target: its module) with
//! the fields `operation`, `owner`, `hash`, `bytes`, `outcome`,
//! `duration_us` and `exit_code`. The attribute's `field = expr` pairs are
//! evaluated and recorded only if the span is enabled (`bytes` as a `u64`,
//! the others with `Display`); once the body has returned,
//! `crate::observe::finish` records the outcome (`ok` or the error's kind),
//! what the result tells (a put's hash, a get's bytes) and the duration.
//! With no subscriber interested the span is disabled: one relaxed atomic
//! load, and nothing is evaluated or recorded.

use proc_macro::TokenStream;
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, ItemFn, ReturnType, Token, parse_macro_input};

/// `OPERATION, name = expr, …`.
struct Args {
    operation: Ident,
    fields: Vec<(Ident, Expr)>,
}

/// One `name = expr`.
struct Field(Ident, Expr);

impl Parse for Field {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let name: Ident = input.parse()?;
        input.parse::<Token![=]>()?;
        Ok(Self(name, input.parse()?))
    }
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let operation: Ident = input.parse()?;
        let mut fields = Vec::new();
        if input.parse::<Option<Token![,]>>()?.is_some() {
            let list = Punctuated::<Field, Token![,]>::parse_terminated(input)?;
            fields = list.into_iter().map(|Field(n, e)| (n, e)).collect();
        }
        Ok(Self { operation, fields })
    }
}

/// The fields every span declares (a span can only record declared fields).
const FIELDS: [&str; 7] = [
    "operation",
    "owner",
    "hash",
    "bytes",
    "outcome",
    "duration_us",
    "exit_code",
];

/// Wraps a function that returns `Result<T, artifacts::Error>` in a span;
/// see the crate docs.
#[proc_macro_attribute]
pub fn traced(attr: TokenStream, item: TokenStream) -> TokenStream {
    let Args { operation, fields } = parse_macro_input!(attr as Args);
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = parse_macro_input!(item as ItemFn);
    for (name, _) in &fields {
        if !FIELDS.contains(&name.to_string().as_str()) {
            return syn::Error::new(
                name.span(),
                format!("not one of the span's fields {FIELDS:?}"),
            )
            .to_compile_error()
            .into();
        }
    }
    let output = match &sig.output {
        ReturnType::Type(_, ty) => quote!(#ty),
        ReturnType::Default => quote!(()),
    };
    let name = operation.to_string();
    let records = fields.iter().map(|(field, expr)| {
        let key = field.to_string();
        if key == "bytes" {
            quote!(__span.record(#key, (#expr) as u64);)
        } else {
            quote!(__span.record(#key, ::tracing::field::display(&(#expr)));)
        }
    });
    quote! {
        #(#attrs)*
        #vis #sig {
            let __span = ::tracing::info_span!(
                #name,
                operation = #name,
                owner = ::tracing::field::Empty,
                hash = ::tracing::field::Empty,
                bytes = ::tracing::field::Empty,
                outcome = ::tracing::field::Empty,
                duration_us = ::tracing::field::Empty,
                exit_code = ::tracing::field::Empty,
            );
            let __start = crate::observe::start(&__span);
            if __start.is_some() {
                #(#records)*
            }
            let __entered = __span.enter();
            #[allow(clippy::redundant_closure_call)]
            let __result: #output = (|| -> #output #block)();
            drop(__entered);
            if let Some(start) = __start {
                crate::observe::finish(&__span, start, &__result);
            }
            __result
        }
    }
    .into()
}
