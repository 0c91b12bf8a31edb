//! Checks of the arguments against the function. They run with and without
//! the `otel` feature, so turning it on never reveals a new argument error.

use std::collections::HashSet;

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::{Expr, ExprClosure, FnArg, Ident, Pat, Type};

use crate::args::{Args, Key, Value};
use crate::item::{self, Func};
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
pub(crate) fn returns_result(args: &Args, func: &Func) -> bool {
    match &args.result {
        Some((flag, _)) => *flag,
        None => func.output().as_ref().is_some_and(item::is_result),
    }
}

pub(crate) fn validate(args: &Args, func: &Func) -> syn::Result<()> {
    let mut errors = Errors::default();
    let params = params(func);
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

    if let Some(expr) = &args.telemetry {
        check_expr(expr, &names, &fn_name, &mut errors);
    }

    let mut keys: HashSet<String> = HashSet::new();
    for attr in &args.attrs {
        if !keys.insert(attr.key.span_key()) {
            errors.push(syn::Error::new(
                attr.key.span(),
                format!("duplicate attribute key `{}`", attr.key.span_key()),
            ));
        }
        match &attr.value {
            Value::Param(ident) => {
                let name = ident.unraw_string();
                if !names.contains(&name.as_str()) || name == "self" {
                    errors.push(not_a_param(ident.span(), &name, &names, &fn_name, true));
                }
            }
            Value::Expr(expr) => check_expr(expr, &names, &fn_name, &mut errors),
            Value::Returned(closure) => check_returned(closure, &names, &fn_name, &mut errors),
            Value::Lit(_) | Value::Deferred => {}
        }
    }

    let declared: Vec<String> = args.attrs.iter().map(|a| a.key.written()).collect();
    let mut metric_names = HashSet::new();
    let is_result = returns_result(args, func);
    for metric in &args.metrics {
        if !metric_names.insert(metric.name.value()) {
            errors.push(syn::Error::new(
                metric.name.span(),
                format!(
                    "metric `{}` is declared twice on this function",
                    metric.name.value()
                ),
            ));
        }
        let mut seen = HashSet::new();
        for label in &metric.labels {
            let written = label.written();
            let known =
                matches!(label, Key::Ident(i) if i == "status") || declared.contains(&written);
            if !known {
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
        if let Some(when) = &metric.when {
            if when == "denied" && !is_result {
                errors.push(syn::Error::new(
                    when.span(),
                    format!(
                        "`when = denied` needs a function that returns a `Result` (`{fn_name}` does not; add `result` if its return type is an alias of `Result`)"
                    ),
                ));
            }
        }
    }
    errors.finish()
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
        Expr::Path(p) if p.qself.is_none() && p.path.segments.len() == 1 && p.path.leading_colon.is_none() => {
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
            m.args.iter().for_each(|a| check_expr(a, names, fn_name, errors));
        }
        Expr::Call(c) => c.args.iter().for_each(|a| check_expr(a, names, fn_name, errors)),
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
        Expr::Tuple(t) => t.elems.iter().for_each(|e| check_expr(e, names, fn_name, errors)),
        Expr::Array(a) => a.elems.iter().for_each(|e| check_expr(e, names, fn_name, errors)),
        Expr::Try(t) => errors.push(syn::Error::new(
            t.question_token.span(),
            "`?` is not allowed in an attribute expression: telemetry never changes a result",
        )),
        Expr::Await(a) => errors.push(syn::Error::new(
            a.await_token.span(),
            "`.await` is not allowed in an attribute expression: attributes are computed before the body runs",
        )),
        _ => {}
    }
}
