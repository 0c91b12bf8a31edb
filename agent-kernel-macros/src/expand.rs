//! Code generation (feature `otel`): prints a checked [`Plan`] as the
//! function wrapped in span and metric code that calls the runtime's
//! versioned private module. Every decision was taken in `validate`.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{AttrStyle, Expr, ItemFn, Stmt, Type};

use crate::item::{self, Shape};
use crate::model::{
    Buckets, DeclaredKey, LabelList, MetricDesc, MetricPlan, Place, Plan, PushValue, SpanKind,
    SpanName,
};

/// The runtime's private module. Its name carries the runtime's version,
/// which is this crate's (the two are released together, pinned with `=`).
pub(crate) const PRIVATE: &str = "__private_v0_1";

fn rt() -> TokenStream {
    rt_at(Span::call_site())
}

/// The private module's path with every token at `span`: a `const`
/// assertion built from it points at the offending argument, not at the
/// whole attribute.
fn rt_at(span: Span) -> TokenStream {
    let krate = syn::Ident::new("agent_kernel_otel", span);
    let module = syn::Ident::new(PRIVATE, span);
    quote_spanned!(span=> ::#krate::#module)
}

/// The `DeclaredKey` descriptor of a key.
fn declared_key(rt: &TokenStream, key: &DeclaredKey) -> TokenStream {
    let span_key = &key.span_key;
    let place = match key.place {
        Place::Start => quote!(Start),
        Place::Deferred => quote!(Deferred),
        Place::Returned => quote!(Returned),
    };
    if key.namespaced {
        quote!(#rt::DeclaredKey::namespaced(#span_key, #rt::Place::#place))
    } else {
        quote!(#rt::DeclaredKey::verbatim(#span_key, #rt::Place::#place))
    }
}

/// The site's `const` items (label tables, assertions about constants) and
/// its `static` descriptor.
fn site(rt: &TokenStream, plan: &Plan) -> TokenStream {
    let mut items = Vec::new();
    let n_start = plan.keys.iter().filter(|k| k.place == Place::Start).count();
    let keys: Vec<TokenStream> = plan.keys.iter().map(|k| declared_key(rt, k)).collect();
    if plan.keys.iter().any(|k| k.is_const) {
        items.push(quote!(const _: () = #rt::check_distinct(&[#(#keys),*]);));
    }
    match &plan.name {
        SpanName::Const(path) => {
            let rt = rt_at(path.span());
            items.push(quote_spanned!(path.span()=> const _: () = #rt::check_span_name(#path);))
        }
        SpanName::Static(_) | SpanName::Dynamic { .. } => {}
    }
    if !plan.metrics.is_empty() {
        let lists = plan.metrics.iter().map(label_list);
        items.push(quote! {
            const __AK_KEYS: &[#rt::DeclaredKey] = &[#(#keys),*];
            const __AK_LABELLED: [bool; #n_start] = #rt::labelled::<#n_start>(__AK_KEYS, &[#(#lists),*]);
        });
    }
    let mut metric_descs = Vec::new();
    for (i, m) in plan.metrics.iter().enumerate() {
        let labels_const = format_ident!("__AK_LABELS_{}", i);
        let list = label_list(m);
        let len = match &m.labels {
            LabelList::Inline(l) => {
                let n = l.len();
                quote!(#n)
            }
            LabelList::Const(path) => quote!(#path.labels().len()),
        };
        let rt_here = rt_at(m.span);
        items.push(quote_spanned! {m.span=>
            const #labels_const: [#rt::Label; #len] =
                #rt_here::labels::<{ #len }>(#list, __AK_KEYS, &__AK_LABELLED);
        });
        metric_descs.push(metric_desc(rt, m, &labels_const, &mut items));
    }

    let name = match &plan.name {
        SpanName::Static(t) | SpanName::Const(t) => t.clone(),
        SpanName::Dynamic { fallback, .. } => quote!(#fallback),
    };
    let kind = match &plan.kind {
        SpanKind::Static(variant) => quote!(#rt::SpanKind::#variant),
        SpanKind::Dynamic(_) => quote!(#rt::SpanKind::Internal),
    };
    let deferred = plan
        .keys
        .iter()
        .filter(|k| k.place == Place::Deferred)
        .map(|k| {
            let (key, span_key) = (&k.record_key, &k.span_key);
            quote!(#rt::DeferredKey { key: #key, span_key: #span_key })
        });
    let returned = plan
        .keys
        .iter()
        .filter(|k| k.place == Place::Returned)
        .map(|k| {
            let (key, span_key) = (&k.record_key, &k.span_key);
            quote!(#rt::DeferredKey { key: #key, span_key: #span_key })
        });
    quote! {
        #(#items)*
        static __AK_SITE: #rt::Site = #rt::Site::new(#rt::SiteDesc {
            name: #name,
            kind: #kind,
            deferred: &[#(#deferred),*],
            returned: &[#(#returned),*],
            metrics: &[#(#metric_descs),*],
        });
    }
}

/// The bare label keys of a metric, as a `&[&str]` expression.
fn label_list(m: &MetricPlan) -> TokenStream {
    match &m.labels {
        LabelList::Inline(list) => quote!(&[#(#list),*]),
        LabelList::Const(path) => quote!(#path.labels()),
    }
}

fn metric_desc(
    rt: &TokenStream,
    m: &MetricPlan,
    labels: &syn::Ident,
    items: &mut Vec<TokenStream>,
) -> TokenStream {
    let when = &m.when;
    let rt_here = rt_at(m.span);
    match &m.desc {
        MetricDesc::Counter(path) => {
            items
                .push(quote_spanned!(path.span()=> const _: () = #rt_here::check_counter(&#path);));
            quote!(#rt::MetricDesc::counter(&#path, #rt::When::#when, &#labels))
        }
        MetricDesc::Histogram(path) => {
            items.push(
                quote_spanned!(path.span()=> const _: () = #rt_here::check_histogram(&#path);),
            );
            quote!(#rt::MetricDesc::histogram(&#path, #rt::When::#when, &#labels))
        }
        MetricDesc::Inline {
            name,
            name_is_const,
            histogram,
            unit,
            description,
            buckets,
        } => {
            if *name_is_const {
                items.push(
                    quote_spanned!(m.span=> const _: () = #rt_here::check_metric_name(#name);),
                );
            }
            let kind = match histogram {
                Some(unit) => quote!(#rt::MetricKind::Histogram(#rt::TimeUnit::#unit)),
                None => quote!(#rt::MetricKind::Counter),
            };
            let buckets = match buckets {
                Buckets::None => quote!(&[]),
                Buckets::Lit(values) => quote!(&[#(#values),*]),
                Buckets::Const(path) => {
                    items.push(quote_spanned!(path.span()=> const _: () = #rt_here::check_buckets(&#path);));
                    quote!(&#path)
                }
            };
            quote! {
                #rt::MetricDesc {
                    name: #name,
                    kind: #kind,
                    unit: #unit,
                    description: #description,
                    buckets: #buckets,
                    labels: &#labels,
                    when: #rt::When::#when,
                }
            }
        }
    }
}

pub(crate) fn expand(plan: Plan) -> TokenStream {
    let rt = rt();
    let shape = plan.shape;
    let is_result = plan.returns_result;
    let output = plan.output.clone();
    let site = site(&rt, &plan);
    let has_metrics = !plan.metrics.is_empty();
    // Room for the deferred and returned attributes too: they are appended to
    // the same vector when the span ends, and growing it then would reallocate.
    let capacity = plan.keys.len();
    let n_labels = if has_metrics {
        quote!(#rt::count_labelled(&__AK_LABELLED))
    } else {
        quote!(0)
    };
    let pushes = plan.pushes.iter().map(|p| {
        let key = &p.span_key;
        let index = p.index;
        let label = if has_metrics {
            quote!(__AK_LABELLED[#index])
        } else {
            quote!(false)
        };
        match &p.value {
            PushValue::Lit(lit) => quote!(__ak_attrs.push_static(#key, #lit, #label);),
            PushValue::StaticParam(ident) => {
                quote_spanned!(ident.span()=> __ak_attrs.push_static(#key, #ident, #label);)
            }
            PushValue::Param(ident) => {
                quote_spanned!(ident.span()=> __ak_attrs.push(#key, &#ident, #label);)
            }
            // Evaluated inside a closure of its own, so that control flow
            // the validator cannot see (inside a macro call) ends the closure,
            // not the function: a `return` there skips the attribute, and
            // `?`, `.await`, `break` or a `return` with a value do not compile.
            // The push sits inside too, so the expression is borrowed in
            // place, never moved into the closure.
            PushValue::Expr(expr) => quote_spanned! {expr.span()=>
                #rt::call_once(|| __ak_attrs.push(#key, &(#expr), #label));
            },
        }
    });
    let set_name = match &plan.name {
        SpanName::Dynamic { expr, .. } => quote_spanned! {expr.span()=>
            __ak_attrs.set_name(#rt::call_once(|| #expr));
        },
        SpanName::Static(_) | SpanName::Const(_) => quote!(),
    };
    let set_kind = match &plan.kind {
        SpanKind::Dynamic(expr) => quote_spanned! {expr.span()=>
            __ak_attrs.set_kind(#rt::call_once(|| #expr));
        },
        SpanKind::Static(_) => quote!(),
    };

    let binding = match &plan.telemetry {
        // In a closure of its own too, like the attribute expressions.
        Some(expr) => quote_spanned! {expr.span()=>
            ::core::option::Option::Some(#rt::call_once(|| #rt::binding_of(&(#expr))))
        },
        None => quote!(::core::option::Option::None),
    };
    let start_fn = match shape {
        Shape::Sync => quote!(enter),
        Shape::Async | Shape::Future => quote!(start),
    };
    let start = quote! {
        let __ak_span = if #rt::enabled() {
            #site
            #[allow(unused_mut)]
            let mut __ak_attrs = #rt::Attrs::new(#capacity, #n_labels);
            #set_name
            #set_kind
            #(#pushes)*
            ::core::option::Option::Some(#rt::#start_fn(&__AK_SITE, #binding, __ak_attrs))
        } else {
            ::core::option::Option::None
        };
    };
    let returned = &plan.returned;

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
        let values = returned.iter().map(|closure| {
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
    } = plan.func;
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
