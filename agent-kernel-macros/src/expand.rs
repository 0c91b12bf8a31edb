//! Code generation (feature `otel`): the function, wrapped in span and metric
//! code that calls `::agent_kernel_otel::__private`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{AttrStyle, Expr, ItemFn, Stmt, Type};

use crate::args::{Args, Key, MetricKind, Value};
use crate::item::{self, Func, Shape};
use crate::validate::{self, Param};

fn rt() -> TokenStream {
    quote!(::agent_kernel_otel::__private)
}

/// Whether `ty` is spelled `&'static str`.
fn is_static_str(ty: &Type) -> bool {
    match ty {
        Type::Reference(r) => {
            r.mutability.is_none()
                && r.lifetime.as_ref().is_some_and(|l| l.ident == "static")
                && matches!(&*r.elem, Type::Path(p) if p.qself.is_none() && p.path.is_ident("str"))
        }
        Type::Paren(p) => is_static_str(&p.elem),
        Type::Group(g) => is_static_str(&g.elem),
        _ => false,
    }
}

/// Keys (as written) that some metric uses as a label, in first-use order.
fn label_keys(args: &Args) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for m in &args.metrics {
        for l in &m.labels {
            let w = l.written();
            if !matches!(l, Key::Ident(i) if i == "status") && !out.contains(&w) {
                out.push(w);
            }
        }
    }
    out
}

pub(crate) fn expand(args: &Args, func: Func) -> TokenStream {
    let rt = rt();
    let shape = func.shape();
    let is_result = validate::returns_result(args, &func);
    let params = validate::params(&func);
    let output = func.output();

    // Deferred keys, in declaration order.
    let deferred: Vec<&Key> = args
        .attrs
        .iter()
        .filter(|a| matches!(a.value, Value::Deferred))
        .map(|a| &a.key)
        .collect();
    // Keys computed from the return value, in declaration order.
    let returned: Vec<(&Key, &syn::ExprClosure)> = args
        .attrs
        .iter()
        .filter_map(|a| match &a.value {
            Value::Returned(c) => Some((&a.key, c)),
            _ => None,
        })
        .collect();
    // Attributes set at span start that are labels get a label slot, in push order.
    let labels = label_keys(args);
    let mut label_slots: Vec<String> = Vec::new();

    let mut pushes = Vec::new();
    let mut n_attrs = 0usize;
    for attr in &args.attrs {
        let span_key = attr.key.span_key();
        let written = attr.key.written();
        let is_label = labels.contains(&written);
        if is_label && !matches!(attr.value, Value::Deferred | Value::Returned(_)) {
            label_slots.push(written.clone());
        }
        let (plain, stat) = if is_label {
            (quote!(label_attr), quote!(static_label_attr))
        } else {
            (quote!(attr), quote!(static_attr))
        };
        let push = match &attr.value {
            Value::Deferred | Value::Returned(_) => continue,
            Value::Lit(lit) => quote!(__ak_attrs.#stat(#span_key, #lit);),
            Value::Param(ident) => {
                let name = syn::ext::IdentExt::unraw(ident).to_string();
                let param: Option<&Param> = params.iter().find(|p| p.name == name);
                if param.and_then(|p| p.ty.as_ref()).is_some_and(is_static_str) {
                    quote_spanned!(ident.span()=> __ak_attrs.#stat(#span_key, #ident);)
                } else {
                    quote_spanned!(ident.span()=> __ak_attrs.#plain(#span_key, &#ident);)
                }
            }
            // Evaluated inside a closure of its own, so that control flow
            // the validator cannot see (inside a macro call) ends the closure,
            // not the function: a `return` there skips the attribute, and
            // `?`, `.await`, `break` or a `return` with a value do not compile.
            // The push sits inside too, so the expression is borrowed in
            // place, never moved into the closure.
            Value::Expr(expr) => quote_spanned! {expr.span()=>
                #rt::call_once(|| __ak_attrs.#plain(#span_key, &(#expr)));
            },
        };
        n_attrs += 1;
        pushes.push(push);
    }
    let n_labels = label_slots.len();
    // Room for the deferred and returned attributes too: they are appended to
    // the same vector when the span ends, and growing it then would reallocate.
    let capacity = n_attrs + deferred.len() + returned.len();

    let name = &args.name;
    let kind = match args.kind.as_ref().map(ToString::to_string).as_deref() {
        Some("client") => quote!(#rt::Kind::Client),
        Some("server") => quote!(#rt::Kind::Server),
        Some("producer") => quote!(#rt::Kind::Producer),
        Some("consumer") => quote!(#rt::Kind::Consumer),
        _ => quote!(#rt::Kind::Internal),
    };
    let deferred_desc = deferred.iter().map(|k| {
        let key = k.written();
        let span_key = k.span_key();
        quote!(#rt::DeferredKey { key: #key, span_key: #span_key })
    });
    let returned_desc = returned.iter().map(|(k, _)| {
        let key = k.written();
        let span_key = k.span_key();
        quote!(#rt::DeferredKey { key: #key, span_key: #span_key })
    });
    let metrics_desc = args.metrics.iter().map(|m| {
        let mname = &m.name;
        let mkind = match m.kind {
            MetricKind::Counter => quote!(#rt::MetricKind::Counter),
            MetricKind::Histogram => {
                let unit = match m.unit.as_ref().map(syn::LitStr::value).as_deref() {
                    Some("s") => quote!(Seconds),
                    Some("us") => quote!(Micros),
                    Some("ns") => quote!(Nanos),
                    _ => quote!(Millis),
                };
                quote!(#rt::MetricKind::Histogram(#rt::TimeUnit::#unit))
            }
        };
        let unit = m.unit.as_ref().map_or_else(String::new, syn::LitStr::value);
        let description = m
            .description
            .as_ref()
            .map_or_else(String::new, syn::LitStr::value);
        let buckets = m
            .buckets
            .as_ref()
            .map(|(_, b)| b.iter().map(|(v, _)| *v).collect::<Vec<f64>>())
            .unwrap_or_default();
        let label_desc = m.labels.iter().map(|l| {
            let written = l.written();
            let source = if matches!(l, Key::Ident(i) if i == "status") {
                quote!(#rt::LabelSource::Status)
            } else if let Some(i) = deferred.iter().position(|k| k.written() == written) {
                quote!(#rt::LabelSource::Deferred(#i))
            } else if let Some(i) = returned.iter().position(|(k, _)| k.written() == written) {
                quote!(#rt::LabelSource::Returned(#i))
            } else {
                let i = label_slots
                    .iter()
                    .position(|w| *w == written)
                    .unwrap_or(usize::MAX);
                quote!(#rt::LabelSource::Attr(#i))
            };
            quote!(#rt::Label { key: #written, source: #source })
        });
        let when = match m.when.as_ref().map(ToString::to_string).as_deref() {
            Some("success") => quote!(Success),
            Some("error") => quote!(Error),
            Some("denied") => quote!(Denied),
            Some("failure") => quote!(Failure),
            _ => quote!(Always),
        };
        quote! {
            #rt::MetricDesc {
                name: #mname,
                kind: #mkind,
                unit: #unit,
                description: #description,
                buckets: &[#(#buckets),*],
                labels: &[#(#label_desc),*],
                when: #rt::When::#when,
            }
        }
    });

    let binding = match &args.telemetry {
        // In a closure of its own too, like the attribute expressions.
        Some(expr) => quote_spanned! {expr.span()=>
            ::core::option::Option::Some(#rt::call_once(|| #rt::bind(&(#expr))))
        },
        None => quote!(::core::option::Option::None),
    };
    let start_fn = match shape {
        Shape::Sync => quote!(enter),
        Shape::Async | Shape::Future => quote!(start),
    };
    let start = quote! {
        let __ak_span = if #rt::enabled() {
            static __AK_SITE: #rt::Site = #rt::Site::new(#rt::SiteDesc {
                name: #name,
                kind: #kind,
                deferred: &[#(#deferred_desc),*],
                returned: &[#(#returned_desc),*],
                metrics: &[#(#metrics_desc),*],
            });
            #[allow(unused_mut)]
            let mut __ak_attrs = #rt::Attrs::new(#capacity, #n_labels);
            #(#pushes)*
            ::core::option::Option::Some(#rt::#start_fn(&__AK_SITE, #binding, __ak_attrs))
        } else {
            ::core::option::Option::None
        };
    };

    let classify_match = |value: TokenStream| {
        quote! {
            match #value {
                ::core::result::Result::Ok(_) => #rt::Outcome::Success,
                ::core::result::Result::Err(__ak_e) => {
                    #[allow(unused_imports)]
                    use #rt::{ViaFallback as _, ViaSpanError as _};
                    (&#rt::ErrRef(__ak_e)).__ak_outcome()
                }
            }
        }
    };
    // The attributes computed from the return value `out` (a reference).
    let returned_values = |out: TokenStream| {
        // The grammar needs a closure (a bare path is a parameter), so
        // `|r| f(r)` must not be linted as a redundant closure.
        let values = returned.iter().map(|(_, closure)| {
            quote_spanned! {closure.span()=> {
                #[allow(clippy::redundant_closure)]
                let __ak_v = #rt::returned(#out, #closure);
                __ak_v
            }}
        });
        quote!(&[#(#values),*])
    };
    let outcome_of = |out: TokenStream| {
        if is_result {
            classify_match(out)
        } else {
            quote!(#rt::Outcome::Success)
        }
    };
    // Ends an async body's span from its output.
    let finish_async = {
        let outcome = outcome_of(quote!(__ak_r));
        let values = returned_values(quote!(__ak_r));
        quote!(|__ak_r, __ak_s: #rt::ActiveSpan| __ak_s.finish_with(#outcome, #values))
    };
    // Fixes the body's type before it is checked, so `?` and `return` infer
    // as they do in the function itself.
    let fix_type = |ty: Option<&Type>| match ty {
        Some(ty) => {
            let ty = item::erase_impl_trait(ty);
            quote! {
                #[allow(unreachable_code, clippy::diverging_sub_expression)]
                if let ::core::option::Option::Some(__ak_r) = ::core::option::Option::None::<#ty> {
                    return __ak_r;
                }
            }
        }
        None => quote!(),
    };

    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = func.item;
    let (outer, inner): (Vec<_>, Vec<_>) = attrs
        .into_iter()
        .partition(|a| matches!(a.style, AttrStyle::Outer));

    // The body's statements are spliced in directly (not as a nested block),
    // so no `unused_braces` lint fires on the user's code.
    let stmts = &block.stmts;
    let body = match shape {
        Shape::Sync if is_result || !returned.is_empty() => {
            let fix = fix_type(output.as_ref());
            let outcome = outcome_of(quote!(&__ak_ret));
            let values = returned_values(quote!(&__ak_ret));
            quote! {
                #start
                let __ak_ret = #rt::call_once(move || {
                    #fix
                    #(#stmts)*
                });
                if let ::core::option::Option::Some(__ak_span) = __ak_span {
                    __ak_span.finish_with(#outcome, #values);
                }
                __ak_ret
            }
        }
        Shape::Sync => quote! {
            #start
            #(#stmts)*
        },
        Shape::Async => {
            let fix = fix_type(output.as_ref());
            quote! {
                #start
                #rt::instrument(__ak_span, async move {
                    #fix
                    #(#stmts)*
                }, #finish_async).await
            }
        }
        Shape::Future => {
            let mut stmts = block.stmts.clone();
            let tail = match stmts.pop() {
                Some(Stmt::Expr(expr, None)) => expr,
                // `shape()` only returns `Future` when the tail is an expression.
                Some(other) => return quote!(#(#outer)* #vis #sig { #(#inner)* #(#stmts)* #other }),
                None => return quote!(#(#outer)* #vis #sig { #(#inner)* }),
            };
            let wrapped = match tail {
                Expr::Call(mut call) => {
                    let fut = call.args.pop().map(syn::punctuated::Pair::into_value);
                    let wrapped = quote!(#rt::instrument(__ak_span, #fut, #finish_async));
                    let func = &call.func;
                    quote!(#func(#wrapped))
                }
                other => quote!(#rt::instrument(__ak_span, #other, #finish_async)),
            };
            quote! {
                #start
                #(#stmts)*
                #wrapped
            }
        }
    };

    quote! {
        #(#outer)*
        #vis #sig {
            #(#inner)*
            #body
        }
    }
}
