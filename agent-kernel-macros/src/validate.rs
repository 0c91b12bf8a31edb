//! Checks of the arguments against the function. They run with and without
//! the `otel` feature, so turning it on never reveals a new argument error.

use std::collections::HashSet;

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::{Expr, ExprClosure, FnArg, Ident, LitStr, Pat, Type};

use crate::args::{Args, Buckets, KINDS, Key, KindArg, Metric, MetricKind, Name, Text, Value};
use crate::item::{self, Func};
use crate::model::{
    Buckets as BucketsPlan, DeclaredKey, LabelList, MetricDesc as MetricDescPlan, MetricPlan,
    Place, Plan, Push, PushValue, SpanKind, SpanName,
};
use crate::suggest::{did_you_mean, list};

/// A parameter the attributes may refer to.
pub(crate) struct Param {
    pub name: String,
    /// The declared type when the parameter is a plain identifier pattern.
    pub ty: Option<Type>,
}

/// The parameter names of a function (`self` included, patterns destructured).
pub(crate) fn params(func: &Func) -> Vec<Param> {
    let mut out = Vec::new();
    for input in &func.item.sig.inputs {
        match input {
            FnArg::Receiver(_) => out.push(Param {
                name: "self".to_owned(),
                ty: None,
            }),
            FnArg::Typed(t) => {
                if let Pat::Ident(p) = &*t.pat {
                    out.push(Param {
                        name: p.ident.unraw_string(),
                        ty: Some((*t.ty).clone()),
                    });
                } else {
                    pat_names(&t.pat, &mut out);
                }
            }
        }
    }
    out
}

trait UnrawString {
    fn unraw_string(&self) -> String;
}

impl UnrawString for Ident {
    fn unraw_string(&self) -> String {
        syn::ext::IdentExt::unraw(self).to_string()
    }
}

fn pat_names(pat: &Pat, out: &mut Vec<Param>) {
    match pat {
        Pat::Ident(p) => {
            out.push(Param {
                name: p.ident.unraw_string(),
                ty: None,
            });
            if let Some((_, sub)) = &p.subpat {
                pat_names(sub, out);
            }
        }
        Pat::Tuple(t) => t.elems.iter().for_each(|p| pat_names(p, out)),
        Pat::TupleStruct(t) => t.elems.iter().for_each(|p| pat_names(p, out)),
        Pat::Struct(s) => s.fields.iter().for_each(|f| pat_names(&f.pat, out)),
        Pat::Reference(r) => pat_names(&r.pat, out),
        Pat::Slice(s) => s.elems.iter().for_each(|p| pat_names(p, out)),
        Pat::Type(t) => pat_names(&t.pat, out),
        Pat::Paren(p) => pat_names(&p.pat, out),
        _ => {}
    }
}

/// Collects errors and reports them all at once.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }
    fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

/// Whether the function's outcome is read from a `Result`.
fn returns_result(result: Option<&(bool, Ident)>, func: &Func) -> bool {
    match result {
        Some((flag, _)) => *flag,
        None => func.output().as_ref().is_some_and(item::is_result),
    }
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

/// Checks the arguments against the function and decides everything the
/// expansion prints. All errors are collected and reported together.
pub(crate) fn validate(args: Args, func: Func) -> syn::Result<Plan> {
    let mut errors = Errors::default();
    let params = params(&func);
    let names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
    let fn_name = func.item.sig.ident.to_string();

    if let Some((true, flag)) = &args.result {
        if func.output().is_none() {
            errors.push(syn::Error::new(
                flag.span(),
                format!(
                    "`result` needs a function that returns a `Result`; `{fn_name}` returns `()`"
                ),
            ));
        }
    }

    let name = match args.name {
        Name::Lit(lit) => SpanName::Static(lit.into_token_stream()),
        Name::Const(path) => SpanName::Const(path.into_token_stream()),
        Name::Expr(expr) => {
            let expr = without_parens(expr);
            check_expr(&expr, &names, &fn_name, &mut errors);
            check_flow(&expr, Scope::Name, &fn_name, &mut errors);
            SpanName::Dynamic {
                expr,
                fallback: LitStr::new(&fn_name, func.item.sig.ident.span()),
            }
        }
    };

    let kind = match args.kind {
        None => SpanKind::Static(Ident::new("Internal", Span::call_site())),
        Some(KindArg::Keyword(k)) => SpanKind::Static(kind_variant(&k)),
        Some(KindArg::Ident(ident)) => {
            let text = ident.unraw_string();
            if names.contains(&text.as_str()) && text != "self" {
                SpanKind::Dynamic(Expr::Path(syn::ExprPath {
                    attrs: Vec::new(),
                    qself: None,
                    path: ident.into(),
                }))
            } else {
                errors.push(syn::Error::new(
                    ident.span(),
                    format!(
                        "unknown span kind `{text}`{}; expected one of {}, or a `SpanKind` computed at run time (a parameter, or any expression in parentheses)",
                        did_you_mean(&text, KINDS.iter().copied()),
                        list(KINDS.iter().copied())
                    ),
                ));
                SpanKind::Static(Ident::new("Internal", Span::call_site()))
            }
        }
        Some(KindArg::Expr(expr)) => {
            // `(client)` is parenthesised only to say "the variable".
            let expr = without_parens(expr);
            check_expr(&expr, &names, &fn_name, &mut errors);
            check_flow(&expr, Scope::Kind, &fn_name, &mut errors);
            SpanKind::Dynamic(expr)
        }
    };

    if let Some(expr) = &args.telemetry {
        check_expr(expr, &names, &fn_name, &mut errors);
        check_flow(expr, Scope::Telemetry, &fn_name, &mut errors);
    }

    let mut seen_keys: HashSet<String> = HashSet::new();
    let mut keys = Vec::new();
    let mut pushes = Vec::new();
    let mut returned = Vec::new();
    for attr in args.attrs {
        if let Some(span_key) = attr.key.span_key() {
            if !seen_keys.insert(span_key.clone()) {
                errors.push(syn::Error::new(
                    attr.key.span(),
                    format!("duplicate attribute key `{span_key}`"),
                ));
            }
        }
        let place = match &attr.value {
            Value::Deferred => Place::Deferred,
            Value::Returned(_) => Place::Returned,
            Value::Param(_) | Value::Expr(_) | Value::Lit(_) => Place::Start,
        };
        let (span_key, record_key, namespaced, is_const) = match &attr.key {
            Key::Ident(i) => (
                LitStr::new(&format!("agent_kernel.{}", i.unraw_string()), i.span())
                    .into_token_stream(),
                LitStr::new(&i.unraw_string(), i.span()).into_token_stream(),
                true,
                false,
            ),
            Key::Lit(l) => (l.into_token_stream(), l.into_token_stream(), false, false),
            Key::Path(p) => (p.into_token_stream(), p.into_token_stream(), true, true),
        };
        let start_index = keys
            .iter()
            .filter(|k: &&DeclaredKey| k.place == Place::Start)
            .count();
        keys.push(DeclaredKey {
            span_key: span_key.clone(),
            record_key,
            namespaced,
            place,
            is_const,
        });
        let value = match attr.value {
            Value::Param(ident) => {
                let name = ident.unraw_string();
                if !names.contains(&name.as_str()) || name == "self" {
                    errors.push(not_a_param(ident.span(), &name, &names, &fn_name, true));
                }
                let param = params.iter().find(|p| p.name == name);
                if param.and_then(|p| p.ty.as_ref()).is_some_and(is_static_str) {
                    PushValue::StaticParam(ident)
                } else {
                    PushValue::Param(ident)
                }
            }
            Value::Expr(expr) => {
                check_expr(&expr, &names, &fn_name, &mut errors);
                check_flow(&expr, Scope::Attr, &fn_name, &mut errors);
                PushValue::Expr(expr)
            }
            Value::Returned(closure) => {
                check_returned(&closure, &names, &fn_name, &mut errors);
                check_flow(&closure.body, Scope::Returned, &fn_name, &mut errors);
                returned.push(closure);
                continue;
            }
            Value::Lit(lit) => PushValue::Lit(lit),
            Value::Deferred => continue,
        };
        pushes.push(Push {
            index: start_index,
            span_key,
            value,
        });
    }

    // Labels are checked here when every key is known here; a constant key
    // or label is resolved (and checked) by constant evaluation instead.
    let all_keys_known = keys.iter().all(|k| !k.is_const);
    let mut metric_names = HashSet::new();
    let is_result = returns_result(args.result.as_ref(), &func);
    let mut metrics = Vec::new();
    for metric in args.metrics {
        if let Some(when) = metric.when() {
            if when == "denied" && !is_result {
                errors.push(syn::Error::new(
                    when.span(),
                    format!(
                        "`when = denied` needs a function that returns a `Result` (`{fn_name}` does not; add `result` if its return type is an alias of `Result`)"
                    ),
                ));
            }
        }
        let when = Ident::new(
            match metric.when().map(ToString::to_string).as_deref() {
                Some("success") => "Success",
                Some("error") => "Error",
                Some("denied") => "Denied",
                Some("failure") => "Failure",
                _ => "Always",
            },
            Span::call_site(),
        );
        match metric {
            Metric::Const { kind, path, .. } => {
                let span = path.span();
                metrics.push(MetricPlan {
                    labels: LabelList::Const(path.clone()),
                    desc: match kind {
                        MetricKind::Counter => MetricDescPlan::Counter(path),
                        MetricKind::Histogram => MetricDescPlan::Histogram(path),
                    },
                    when,
                    span,
                });
            }
            Metric::Inline(m) => {
                if let Text::Lit(name) = &m.name {
                    if !metric_names.insert(name.value()) {
                        errors.push(syn::Error::new(
                            name.span(),
                            format!(
                                "metric `{}` is declared twice on this function",
                                name.value()
                            ),
                        ));
                    }
                }
                let mut seen = HashSet::new();
                let declared: Vec<String> = keys_written(&keys);
                for label in &m.labels {
                    if matches!(label, Key::Path(_)) {
                        continue;
                    }
                    let written = label.written();
                    let known = label.is_status() || declared.contains(&written);
                    if !known && all_keys_known {
                        let candidates = declared.iter().map(String::as_str).chain(["status"]);
                        errors.push(syn::Error::new(
                            label.span(),
                            format!(
                                "label `{written}` is not a declared attribute{}; labels are keys of `attrs(...)` or the built-in `status` (declared: {})",
                                did_you_mean(&written, candidates.clone()),
                                list(candidates)
                            ),
                        ));
                    } else if !seen.insert(written.clone()) {
                        errors.push(syn::Error::new(
                            label.span(),
                            format!("duplicate label `{written}`"),
                        ));
                    }
                }
                let span = match &m.name {
                    Text::Lit(l) => l.span(),
                    Text::Path(p) => p.span(),
                };
                let labels = m
                    .labels
                    .iter()
                    .map(|l| match l {
                        Key::Ident(i) => {
                            LitStr::new(&i.unraw_string(), i.span()).into_token_stream()
                        }
                        Key::Lit(l) => l.into_token_stream(),
                        Key::Path(p) => p.into_token_stream(),
                    })
                    .collect();
                let (name, name_is_const) = match m.name {
                    Text::Lit(l) => (l.into_token_stream(), false),
                    Text::Path(p) => (p.into_token_stream(), true),
                };
                let histogram = (m.kind == MetricKind::Histogram).then(|| {
                    let unit = match m.unit.as_ref().map(LitStr::value).as_deref() {
                        Some("s") => "Seconds",
                        Some("us") => "Micros",
                        Some("ns") => "Nanos",
                        _ => "Millis",
                    };
                    Ident::new(unit, Span::call_site())
                });
                let description = match m.description {
                    Some(Text::Lit(l)) => l.into_token_stream(),
                    Some(Text::Path(p)) => p.into_token_stream(),
                    None => quote::quote!(""),
                };
                let buckets = match m.buckets {
                    None => BucketsPlan::None,
                    Some(Buckets::Lit(values)) => {
                        BucketsPlan::Lit(values.into_iter().map(|(v, _)| v).collect())
                    }
                    Some(Buckets::Path(p)) => BucketsPlan::Const(p),
                };
                metrics.push(MetricPlan {
                    labels: LabelList::Inline(labels),
                    desc: MetricDescPlan::Inline {
                        name,
                        name_is_const,
                        histogram,
                        unit: m.unit.as_ref().map_or_else(String::new, LitStr::value),
                        description,
                        buckets,
                    },
                    when,
                    span,
                });
            }
        }
    }
    errors.finish()?;

    let shape = func.shape();
    let output = func.output();
    Ok(Plan {
        func: func.item,
        shape,
        output,
        returns_result: is_result,
        name,
        kind,
        telemetry: args.telemetry,
        keys,
        pushes,
        returned,
        metrics,
    })
}

/// The expression inside any parentheses (which would otherwise be linted
/// as unnecessary in the generated closure).
fn without_parens(expr: Expr) -> Expr {
    match expr {
        Expr::Paren(p) => without_parens(*p.expr),
        other => other,
    }
}

/// The keys as labels written as identifiers or strings refer to them.
fn keys_written(keys: &[DeclaredKey]) -> Vec<String> {
    keys.iter()
        .filter(|k| !k.is_const)
        .filter_map(|k| syn::parse2::<LitStr>(k.record_key.clone()).ok())
        .map(|l| l.value())
        .collect()
}

/// The `SpanKind` variant of a keyword.
fn kind_variant(keyword: &Ident) -> Ident {
    let variant = match keyword.to_string().as_str() {
        "client" => "Client",
        "server" => "Server",
        "producer" => "Producer",
        "consumer" => "Consumer",
        _ => "Internal",
    };
    Ident::new(variant, keyword.span())
}

fn not_a_param(
    span: Span,
    name: &str,
    names: &[&str],
    fn_name: &str,
    shorthand: bool,
) -> syn::Error {
    let candidates = names.iter().copied().filter(|n| *n != "self");
    let hint = did_you_mean(name, candidates.clone());
    let params = list(candidates);
    let params = if params.is_empty() {
        "none".to_owned()
    } else {
        params
    };
    let tail = if shorthand {
        "; to record an expression write `key = expr`"
    } else {
        ""
    };
    syn::Error::new(
        span,
        format!("`{name}` is not a parameter of `{fn_name}`{hint}; parameters: {params}{tail}"),
    )
}

/// Checks that the variables an expression starts from are parameters
/// (identifiers starting with an uppercase letter are constants or types,
/// and function names in call position are not checked).
/// `key = |out| expr`: one parameter (the return value, by reference), and
/// no use of the function's parameters, which the body has consumed by then.
fn check_returned(closure: &ExprClosure, names: &[&str], fn_name: &str, errors: &mut Errors) {
    if closure.inputs.len() != 1 {
        errors.push(syn::Error::new(
            closure.or1_token.span(),
            format!(
                "a closure over the return value takes one parameter, the return value by reference (`|out| ...`); this one takes {}",
                closure.inputs.len()
            ),
        ));
        return;
    }
    let own: Option<String> = match closure.inputs.first() {
        Some(Pat::Ident(p)) => Some(p.ident.unraw_string()),
        Some(Pat::Type(t)) => match &*t.pat {
            Pat::Ident(p) => Some(p.ident.unraw_string()),
            _ => None,
        },
        _ => None,
    };
    let mut found: Vec<Ident> = Vec::new();
    params_used(
        closure.body.to_token_stream(),
        names,
        own.as_deref(),
        &mut found,
    );
    for ident in found {
        errors.push(syn::Error::new(
            ident.span(),
            format!(
                "`{ident}` is a parameter of `{fn_name}`: a closure over the return value runs after the body and sees only the return value"
            ),
        ));
    }
}

/// Identifiers in `tokens` that name a parameter (not after `.` or `::`, not
/// the closure's own parameter).
fn params_used(tokens: TokenStream, names: &[&str], own: Option<&str>, found: &mut Vec<Ident>) {
    let mut prev_punct: Option<char> = None;
    for tt in tokens {
        match tt {
            TokenTree::Ident(ident) => {
                let name = ident.unraw_string();
                if prev_punct != Some('.')
                    && prev_punct != Some(':')
                    && Some(name.as_str()) != own
                    && names.contains(&name.as_str())
                {
                    found.push(ident);
                }
                prev_punct = None;
            }
            TokenTree::Group(g) => {
                params_used(g.stream(), names, own, found);
                prev_punct = None;
            }
            TokenTree::Punct(p) => prev_punct = Some(p.as_char()),
            TokenTree::Literal(_) => prev_punct = None,
        }
    }
}

fn check_expr(expr: &Expr, names: &[&str], fn_name: &str, errors: &mut Errors) {
    match expr {
        Expr::Path(p)
            if p.qself.is_none()
                && p.path.segments.len() == 1
                && p.path.leading_colon.is_none() =>
        {
            let ident = &p.path.segments[0].ident;
            let name = ident.unraw_string();
            let is_const = name.chars().next().is_some_and(char::is_uppercase);
            if !is_const && !names.contains(&name.as_str()) {
                errors.push(not_a_param(ident.span(), &name, names, fn_name, false));
            }
        }
        Expr::Field(f) => check_expr(&f.base, names, fn_name, errors),
        Expr::MethodCall(m) => {
            check_expr(&m.receiver, names, fn_name, errors);
            m.args
                .iter()
                .for_each(|a| check_expr(a, names, fn_name, errors));
        }
        Expr::Call(c) => c
            .args
            .iter()
            .for_each(|a| check_expr(a, names, fn_name, errors)),
        Expr::Reference(r) => check_expr(&r.expr, names, fn_name, errors),
        Expr::Paren(p) => check_expr(&p.expr, names, fn_name, errors),
        Expr::Group(g) => check_expr(&g.expr, names, fn_name, errors),
        Expr::Cast(c) => check_expr(&c.expr, names, fn_name, errors),
        Expr::Unary(u) => check_expr(&u.expr, names, fn_name, errors),
        Expr::Binary(b) => {
            check_expr(&b.left, names, fn_name, errors);
            check_expr(&b.right, names, fn_name, errors);
        }
        Expr::Index(i) => {
            check_expr(&i.expr, names, fn_name, errors);
            check_expr(&i.index, names, fn_name, errors);
        }
        Expr::Tuple(t) => t
            .elems
            .iter()
            .for_each(|e| check_expr(e, names, fn_name, errors)),
        Expr::Array(a) => a
            .elems
            .iter()
            .for_each(|e| check_expr(e, names, fn_name, errors)),
        // `?` and `.await` themselves are refused by `check_flow`.
        Expr::Try(t) => check_expr(&t.expr, names, fn_name, errors),
        Expr::Await(a) => check_expr(&a.base, names, fn_name, errors),
        _ => {}
    }
}

/// Where an expression of the arguments is evaluated.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// `key = expr`: before the body, in the function's own frame.
    Attr,
    /// `telemetry = expr`: likewise.
    Telemetry,
    /// `name = expr`: likewise.
    Name,
    /// `kind = expr`: likewise.
    Kind,
    /// The body of `key = |out| expr`: a closure of its own, called when the
    /// body returns (`return` and `?` end that closure only).
    Returned,
}

impl Scope {
    fn what(self) -> &'static str {
        match self {
            Scope::Attr => "an attribute expression",
            Scope::Telemetry => "the `telemetry` expression",
            Scope::Name => "the `name` expression",
            Scope::Kind => "the `kind` expression",
            Scope::Returned => "a closure over the return value",
        }
    }
}

/// Refuses control flow that could leave an expression of the arguments and
/// so change the function's result: `?`, `return`, `become`, `yield`,
/// `.await`, and `break`/`continue` whose loop or labeled block is outside
/// the expression. Closures, `async` blocks, `const` blocks and nested items
/// are scopes of their own and are not entered; macro calls cannot be walked,
/// which is why `expand.rs` also evaluates every such expression inside a
/// closure of its own.
fn check_flow(expr: &Expr, scope: Scope, fn_name: &str, errors: &mut Errors) {
    let mut walk = Flow {
        scope,
        fn_name,
        loops: 0,
        labels: Vec::new(),
        try_blocks: 0,
        errors,
    };
    walk.expr(expr);
}

struct Flow<'a> {
    scope: Scope,
    fn_name: &'a str,
    /// Loops inside the expression enclosing the current node (targets of an
    /// unlabeled `break` or `continue`).
    loops: usize,
    /// Labels of the loops and blocks inside the expression enclosing the
    /// current node.
    labels: Vec<String>,
    /// `try { .. }` blocks enclosing the current node (targets of `?`).
    try_blocks: usize,
    errors: &'a mut Errors,
}

/// What to write instead of `return` or `become` in an attribute expression.
const INSTEAD: &str = "compute the value without leaving the expression, or record it later with `key = deferred` or `key = |out| ..`";

impl Flow<'_> {
    fn leaves_function(&mut self, span: Span, token: &str, fix: &str) {
        let fix = match self.scope {
            Scope::Attr => fix,
            Scope::Telemetry => "compute the binding without leaving the expression",
            Scope::Name | Scope::Kind => "compute the value without leaving the expression",
            // `return`, `?` and `become` end the closure, not the function.
            Scope::Returned => return,
        };
        let message = format!(
            "`{token}` is not allowed in {}: it would return from `{}` before its body runs (telemetry never changes a result); {fix}",
            self.scope.what(),
            self.fn_name,
        );
        self.errors.push(syn::Error::new(span, message));
    }

    fn suspends(&mut self, span: Span, token: &str) {
        let fix = match self.scope {
            Scope::Attr => "; await in the body and record the value with `key = deferred`",
            Scope::Telemetry | Scope::Name | Scope::Kind => "",
            Scope::Returned => "; await in the body and return the value",
        };
        let message = format!(
            "`{token}` is not allowed in {}: it is computed synchronously, outside the function's future (telemetry never suspends a call){fix}",
            self.scope.what(),
        );
        self.errors.push(syn::Error::new(span, message));
    }

    fn jump(&mut self, span: Span, token: &str, label: Option<&syn::Lifetime>) {
        let inside = match label {
            Some(l) => self.labels.contains(&l.ident.to_string()),
            None => self.loops > 0,
        };
        if inside {
            return;
        }
        let written = match label {
            Some(l) => format!("{token} {l}"),
            None => token.to_owned(),
        };
        let message = format!(
            "`{written}` would leave {}: `break` and `continue` may only target a loop or labeled block inside it (telemetry never changes a result)",
            self.scope.what(),
        );
        self.errors.push(syn::Error::new(span, message));
    }

    /// Walks `body` inside a loop or labeled block.
    fn enclosed(
        &mut self,
        label: Option<&syn::Label>,
        is_loop: bool,
        body: impl FnOnce(&mut Self),
    ) {
        if let Some(l) = label {
            self.labels.push(l.name.ident.to_string());
        }
        if is_loop {
            self.loops += 1;
        }
        body(self);
        if is_loop {
            self.loops -= 1;
        }
        if label.is_some() {
            self.labels.pop();
        }
    }

    fn block(&mut self, block: &syn::Block) {
        for stmt in &block.stmts {
            match stmt {
                syn::Stmt::Local(local) => {
                    if let Some(init) = &local.init {
                        self.expr(&init.expr);
                        if let Some((_, diverge)) = &init.diverge {
                            self.expr(diverge);
                        }
                    }
                }
                syn::Stmt::Expr(e, _) => self.expr(e),
                // Nested items are scopes of their own; macro calls cannot be
                // walked (the closure in the generated code covers them).
                syn::Stmt::Item(_) | syn::Stmt::Macro(_) => {}
            }
        }
    }

    fn exprs<'e>(&mut self, list: impl IntoIterator<Item = &'e Expr>) {
        for e in list {
            self.expr(e);
        }
    }

    fn expr(&mut self, expr: &Expr) {
        match expr {
            Expr::Try(t) => {
                self.expr(&t.expr);
                if self.try_blocks == 0 {
                    self.leaves_function(
                        t.question_token.span(),
                        "?",
                        "turn the error into a value (`.ok()` leaves the attribute out), or record the value later with `key = deferred` or `key = |out| ..`",
                    );
                }
            }
            Expr::Return(r) => {
                self.leaves_function(r.return_token.span, "return", INSTEAD);
                self.exprs(r.expr.as_deref());
            }
            Expr::Await(a) => {
                self.expr(&a.base);
                self.suspends(a.await_token.span, ".await");
            }
            Expr::Yield(y) => {
                self.suspends(y.yield_token.span, "yield");
                self.exprs(y.expr.as_deref());
            }
            Expr::Break(b) => {
                self.jump(b.break_token.span, "break", b.label.as_ref());
                self.exprs(b.expr.as_deref());
            }
            Expr::Continue(c) => self.jump(c.continue_token.span, "continue", c.label.as_ref()),
            Expr::Verbatim(tokens) => self.verbatim(tokens),

            Expr::Loop(l) => self.enclosed(l.label.as_ref(), true, |w| w.block(&l.body)),
            Expr::While(l) => self.enclosed(l.label.as_ref(), false, |w| {
                // The condition is not inside the loop for an unlabeled jump.
                w.expr(&l.cond);
                w.enclosed(None, true, |w| w.block(&l.body));
            }),
            Expr::ForLoop(l) => {
                // The iterator is evaluated before the loop starts.
                self.expr(&l.expr);
                self.enclosed(l.label.as_ref(), true, |w| w.block(&l.body));
            }
            Expr::Block(b) => self.enclosed(b.label.as_ref(), false, |w| w.block(&b.block)),
            Expr::TryBlock(t) => {
                self.try_blocks += 1;
                self.block(&t.block);
                self.try_blocks -= 1;
            }
            Expr::Unsafe(u) => self.block(&u.block),
            Expr::If(i) => {
                self.expr(&i.cond);
                self.block(&i.then_branch);
                if let Some((_, e)) = &i.else_branch {
                    self.expr(e);
                }
            }
            Expr::Match(m) => {
                self.expr(&m.expr);
                for arm in &m.arms {
                    if let Some((_, guard)) = &arm.guard {
                        self.expr(guard);
                    }
                    self.expr(&arm.body);
                }
            }
            Expr::Let(l) => self.expr(&l.expr),

            Expr::Array(a) => self.exprs(&a.elems),
            Expr::Tuple(t) => self.exprs(&t.elems),
            Expr::Assign(a) => self.exprs([&*a.left, &*a.right]),
            Expr::Binary(b) => self.exprs([&*b.left, &*b.right]),
            Expr::Index(i) => self.exprs([&*i.expr, &*i.index]),
            Expr::Call(c) => {
                self.expr(&c.func);
                self.exprs(&c.args);
            }
            Expr::MethodCall(m) => {
                self.expr(&m.receiver);
                self.exprs(&m.args);
            }
            Expr::Field(f) => self.expr(&f.base),
            Expr::Cast(c) => self.expr(&c.expr),
            Expr::Unary(u) => self.expr(&u.expr),
            Expr::Reference(r) => self.expr(&r.expr),
            Expr::RawAddr(r) => self.expr(&r.expr),
            Expr::Paren(p) => self.expr(&p.expr),
            Expr::Group(g) => self.expr(&g.expr),
            Expr::Range(r) => self.exprs(r.start.iter().chain(&r.end).map(|e| &**e)),
            // The length is a constant of its own.
            Expr::Repeat(r) => self.expr(&r.expr),
            Expr::Struct(s) => {
                self.exprs(s.fields.iter().map(|f| &f.expr));
                self.exprs(s.rest.as_deref());
            }

            // Scopes of their own: control flow inside cannot leave them.
            Expr::Closure(_) | Expr::Async(_) | Expr::Const(_) => {}
            // Cannot be walked; the closure in the generated code covers it.
            Expr::Macro(_) => {}
            Expr::Lit(_) | Expr::Path(_) | Expr::Infer(_) => {}
            // Variants added to syn later: the closure covers them too.
            _ => {}
        }
    }

    /// What syn leaves unparsed: `become f(..)` (a tail call, which leaves
    /// the function like `return`), `builtin # ..`, and such.
    fn verbatim(&mut self, tokens: &TokenStream) {
        let mut iter = tokens.clone().into_iter();
        if let Some(TokenTree::Ident(first)) = iter.next() {
            if first == "become" {
                self.leaves_function(first.span(), "become", INSTEAD);
                if let Ok(rest) = syn::parse2::<Expr>(iter.collect()) {
                    self.expr(&rest);
                }
            }
        }
    }
}
