//! `#[green::main]` and `#[green::test]`: run a function's body as a greennet coroutine.
//!
//! This package's library is named `green`, so with `greennet-macros` in `[dependencies]` the
//! attributes are spelled `#[green::main]` and `#[green::test]`. The expansion calls
//! `::greennet::runtime::Builder`, so the `greennet` package must be a dependency too.
//!
//! ```text
//! #[green::main(workers = 4, stack_size = 65536)]
//! fn main() -> std::io::Result<()> {
//!     let listener = greennet::net::TcpListener::bind("127.0.0.1:8000")?;
//!     // ... every blocking call in here parks a coroutine, not the thread
//!     Ok(())
//! }
//! ```
//!
//! Options (both optional): `workers` (worker threads) and `stack_size` (bytes per coroutine
//! stack). They take precedence over the `GREENNET_WORKERS` and `GREENNET_STACK_SIZE` environment
//! variables, which take precedence over greennet's defaults.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ItemFn, Lit, Meta, Token};

/// Runs `main`'s body as a coroutine on the greennet runtime.
///
/// `main` may return `()` or anything std's `main` may return (such as
/// `Result<(), E: Debug>`); errors print as std prints them. Options: `workers = N` and
/// `stack_size = BYTES`.
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    expand_or_explain(Kind::Main, args.into(), item.into()).into()
}

/// Runs a test's body as a coroutine on the greennet runtime; it replaces `#[test]`.
///
/// All tests in one test binary share one runtime, so tests that set `workers` or `stack_size`
/// must agree with each other (or live in their own test file); a test whose options differ from
/// the running runtime fails and says why.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    expand_or_explain(Kind::Test, args.into(), item.into()).into()
}

/// The expansion, or the error plus what keeps the compiler from piling unrelated errors on top
/// of it (a `main` that no longer exists, a struct that vanished).
fn expand_or_explain(kind: Kind, args: TokenStream2, item: TokenStream2) -> TokenStream2 {
    match expand(kind, args, item.clone()) {
        Ok(expanded) => expanded,
        Err(error) => {
            let error = error.into_compile_error();
            match syn::parse2::<ItemFn>(item.clone()) {
                Ok(func) => {
                    let name = &func.sig.ident;
                    quote!(#error #[allow(dead_code)] fn #name() {})
                }
                Err(_) => quote!(#error #item),
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Main,
    Test,
}

impl Kind {
    fn attr(self) -> &'static str {
        match self {
            Kind::Main => "#[green::main]",
            Kind::Test => "#[green::test]",
        }
    }
}

fn expand(kind: Kind, args: TokenStream2, item: TokenStream2) -> syn::Result<TokenStream2> {
    let attr = kind.attr();
    let builder = options(attr, args)?;
    let func: ItemFn = syn::parse2(item).map_err(|e| {
        syn::Error::new(
            e.span(),
            format!("{attr} goes on a function, such as `fn main() {{ ... }}`"),
        )
    })?;
    let sig = &func.sig;
    if let Some(asyncness) = &sig.asyncness {
        return Err(syn::Error::new(
            asyncness.span(),
            format!(
                "{attr} runs a blocking function on a coroutine: remove `async` and call \
                 blocking greennet APIs directly"
            ),
        ));
    }
    if !sig.inputs.is_empty() {
        return Err(syn::Error::new(
            sig.inputs.span(),
            format!("{attr} functions take no parameters (for arguments, read `std::env::args()`)"),
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(syn::Error::new(
            sig.generics.span(),
            format!("{attr} functions cannot be generic"),
        ));
    }
    if kind == Kind::Main && sig.ident != "main" {
        return Err(syn::Error::new(
            sig.ident.span(),
            "#[green::main] goes on `fn main`; use `greennet::run` to run other functions on \
             the runtime",
        ));
    }

    let attrs = &func.attrs;
    let vis = &func.vis;
    let name = &sig.ident;
    let body = &func.block;
    let test_attr = match kind {
        Kind::Main => quote!(),
        Kind::Test => quote!(#[::core::prelude::v1::test]),
    };
    let span = body.span();
    let expanded = match &sig.output {
        // `()`: the body runs as is (and `#[should_panic]` tests keep their `()` signature).
        syn::ReturnType::Default => quote_spanned! {span=>
            #vis fn #name() {
                #builder.run(move || #body)
            }
        },
        // Anything else std accepts from `main` or a test: the body reports through std's
        // `Termination` inside the coroutine, so errors print as std prints them and a type
        // that is not `Send` (such as `Box<dyn Error>`) never has to leave the coroutine; only
        // the `ExitCode` crosses back to the calling thread.
        syn::ReturnType::Type(_, output) => quote_spanned! {span=>
            #vis fn #name() -> ::std::process::ExitCode {
                #builder.run(move || {
                    let body = move || -> #output #body;
                    ::std::process::Termination::report(body())
                })
            }
        },
    };
    Ok(quote! {
        #test_attr
        #(#attrs)*
        #expanded
    })
}

/// Parses `workers = N, stack_size = N` into a `greennet::runtime::Builder` expression.
fn options(attr: &str, args: TokenStream2) -> syn::Result<TokenStream2> {
    let mut builder = quote!(::greennet::runtime::Builder::new());
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated
        .parse2(args)
        .map_err(|e| {
            syn::Error::new(
                e.span(),
                format!(
                    "malformed {attr} options: expected `workers = N` and/or `stack_size = BYTES`"
                ),
            )
        })?;
    let mut seen: Vec<String> = Vec::new();
    for meta in metas {
        let Meta::NameValue(nv) = &meta else {
            return Err(syn::Error::new(
                meta.span(),
                format!("malformed {attr} option: expected `name = value`, such as `workers = 4`"),
            ));
        };
        let key = nv
            .path
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default();
        if key != "workers" && key != "stack_size" {
            return Err(syn::Error::new(
                nv.path.span(),
                format!(
                    "unknown {attr} option `{}`: the options are `workers` and `stack_size`",
                    path_text(&nv.path)
                ),
            ));
        }
        if seen.contains(&key) {
            return Err(syn::Error::new(
                nv.path.span(),
                format!("{attr} option `{key}` is given twice"),
            ));
        }
        let value = positive_int(attr, &key, &nv.value)?;
        let method = syn::Ident::new(&key, Span::call_site());
        builder = quote!(#builder.#method(#value));
        seen.push(key);
    }
    Ok(builder)
}

fn positive_int(attr: &str, key: &str, value: &Expr) -> syn::Result<usize> {
    let unit = if key == "workers" {
        "a number of worker threads"
    } else {
        "a size in bytes"
    };
    let error = || {
        syn::Error::new(
            value.span(),
            format!("{attr} option `{key}` takes {unit}, a whole number above 0"),
        )
    };
    match value {
        Expr::Lit(lit) => match &lit.lit {
            Lit::Int(int) => match int.base10_parse::<usize>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(error()),
            },
            _ => Err(error()),
        },
        _ => Err(error()),
    }
}

fn path_text(path: &syn::Path) -> String {
    path.segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect::<Vec<_>>()
        .join("::")
}
