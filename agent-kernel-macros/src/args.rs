//! Parsing the attribute's arguments (syntax only; `validate.rs` checks them
//! against the function).

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Expr, Ident, LitStr, Token, bracketed, parenthesized};

use crate::suggest::{did_you_mean, list};

/// The top-level parameters.
pub(crate) const PARAMS: &[&str] = &[
    "name",
    "kind",
    "telemetry",
    "result",
    "no_result",
    "attrs",
    "metrics",
];
/// `kind = ...` values.
pub(crate) const KINDS: &[&str] = &["internal", "client", "server", "producer", "consumer"];
/// Parameters of `counter(...)` / `histogram(...)`.
const METRIC_PARAMS: &[&str] = &["name", "unit", "description", "buckets", "labels", "when"];
/// `when = ...` values.
pub(crate) const WHENS: &[&str] = &["always", "success", "error", "denied", "failure"];
/// Histogram units.
pub(crate) const TIME_UNITS: &[&str] = &["s", "ms", "us", "ns"];

/// Everything inside `#[kernel_span(...)]`.
pub(crate) struct Args {
    pub name: Name,
    pub kind: Option<KindArg>,
    pub telemetry: Option<Expr>,
    /// `result` (true) or `no_result` (false), with the flag's token.
    pub result: Option<(bool, Ident)>,
    pub attrs: Vec<Attr>,
    pub metrics: Vec<Metric>,
}

/// The span name.
pub(crate) enum Name {
    /// `name = "agent_kernel.invoke"`: checked here.
    Lit(LitStr),
    /// `name = keys::SPAN_INVOKE` (a path with `::`, or a SCREAMING_CASE
    /// identifier): a `&'static str` constant, checked by a `const` assertion.
    Const(syn::Path),
    /// Anything else: evaluated at each call while telemetry is on.
    Expr(Expr),
}

/// The span kind as written.
pub(crate) enum KindArg {
    /// One of the five keywords.
    Keyword(Ident),
    /// Another bare identifier: a parameter holding a `SpanKind`, else a
    /// misspelled keyword (`validate` decides).
    Ident(Ident),
    /// Any other expression (`(client)`, `driver.span_kind()`), evaluated at
    /// each call while telemetry is on.
    Expr(Expr),
}

/// An attribute key or a label as written.
#[derive(Clone)]
pub(crate) enum Key {
    /// `principal_id`: namespaced as `agent_kernel.principal_id`.
    Ident(Ident),
    /// `"gen_ai.tool.name"`: verbatim.
    Lit(LitStr),
    /// `keys::CAPABILITY_ID`: a `&'static str` constant (a path containing
    /// `::`). As an attribute key it is the span key; as a label it is the
    /// bare label key.
    Path(syn::Path),
}

impl Key {
    /// The key as written: what labels and `record` refer to (for a path,
    /// its tokens: only used to compare paths with each other).
    pub fn written(&self) -> String {
        match self {
            Key::Ident(i) => i.unraw().to_string(),
            Key::Lit(l) => l.value(),
            Key::Path(p) => quote::ToTokens::to_token_stream(p).to_string(),
        }
    }

    /// The span attribute key, when known here.
    pub fn span_key(&self) -> Option<String> {
        match self {
            Key::Ident(i) => Some(format!("agent_kernel.{}", i.unraw())),
            Key::Lit(l) => Some(l.value()),
            Key::Path(_) => None,
        }
    }

    pub fn span(&self) -> Span {
        match self {
            Key::Ident(i) => i.span(),
            Key::Lit(l) => l.span(),
            Key::Path(p) => p.span(),
        }
    }

    /// Whether this is the built-in `status` label.
    pub fn is_status(&self) -> bool {
        matches!(self, Key::Ident(i) if i == "status")
    }
}

/// What an attribute records.
pub(crate) enum Value {
    /// `response_mode`: the parameter of that name.
    Param(Ident),
    /// `key = <expr>`.
    Expr(Expr),
    /// `key = "literal"`.
    Lit(LitStr),
    /// `key = deferred`: recorded later by `agent_kernel_otel::record`.
    Deferred,
    /// `key = |out| expr`: computed from a reference to the return value
    /// when the body returns.
    Returned(syn::ExprClosure),
}

pub(crate) struct Attr {
    pub key: Key,
    pub value: Value,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum MetricKind {
    Counter,
    Histogram,
}

/// A `&'static str` given as a literal or a constant path.
pub(crate) enum Text {
    Lit(LitStr),
    Path(syn::Path),
}

/// Explicit histogram buckets.
pub(crate) enum Buckets {
    /// `[0.1, 1, 10]`: with the span of each literal (checked here).
    Lit(Vec<(f64, Span)>),
    /// `keys::DURATION_BUCKETS_MS`: a `[f64; N]` or `&[f64]` constant.
    Path(syn::Path),
}

/// One entry of `metrics(...)`.
pub(crate) enum Metric {
    /// `counter(name = .., ..)`: declared here.
    Inline(InlineMetric),
    /// `counter(PATH, when = ..)`: a `CounterSpec` / `HistogramSpec` constant.
    Const {
        kind: MetricKind,
        path: syn::Path,
        when: Option<Ident>,
    },
}

pub(crate) struct InlineMetric {
    pub kind: MetricKind,
    pub name: Text,
    pub unit: Option<LitStr>,
    pub description: Option<Text>,
    pub buckets: Option<Buckets>,
    /// `labels(...)`: keys as written (`status` is the built-in outcome label).
    pub labels: Vec<Key>,
    pub when: Option<Ident>,
}

impl Metric {
    pub fn when(&self) -> Option<&Ident> {
        match self {
            Metric::Inline(m) => m.when.as_ref(),
            Metric::Const { when, .. } => when.as_ref(),
        }
    }
}

fn expect_eq(input: ParseStream, key: &Ident, what: &str) -> syn::Result<()> {
    if input.peek(Token![=]) {
        input.parse::<Token![=]>()?;
        Ok(())
    } else {
        Err(syn::Error::new(
            key.span(),
            format!("expected `{key} = {what}`"),
        ))
    }
}

fn parse_lit_str(input: ParseStream, key: &Ident, what: &str) -> syn::Result<LitStr> {
    expect_eq(input, key, what)?;
    if input.peek(LitStr) {
        return input.parse();
    }
    let expr: Expr = input.parse()?;
    Err(syn::Error::new(
        expr.span(),
        format!("`{key}` must be a string literal, as in `{key} = {what}`"),
    ))
}

fn duplicate(key: &Ident) -> syn::Error {
    syn::Error::new(
        key.span(),
        format!("duplicate parameter `{key}`; give it once"),
    )
}

/// Parses a comma-separated list with `f`, allowing a trailing comma.
fn comma_list(
    input: ParseStream,
    mut f: impl FnMut(ParseStream) -> syn::Result<()>,
) -> syn::Result<()> {
    while !input.is_empty() {
        f(input)?;
        if input.is_empty() {
            break;
        }
        if !input.peek(Token![,]) {
            return Err(input.error("expected `,`"));
        }
        input.parse::<Token![,]>()?;
    }
    Ok(())
}

fn parens<'a>(
    input: ParseStream<'a>,
    key: &Ident,
    example: &str,
) -> syn::Result<syn::parse::ParseBuffer<'a>> {
    if !input.peek(syn::token::Paren) {
        return Err(syn::Error::new(
            key.span(),
            format!("`{key}` takes a parenthesized list, as in `{key}({example})`"),
        ));
    }
    let content;
    parenthesized!(content in input);
    Ok(content)
}

impl Parse for Args {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut name: Option<Name> = None;
        let mut kind = None;
        let mut telemetry = None;
        let mut result: Option<(bool, Ident)> = None;
        let mut attrs: Option<Vec<Attr>> = None;
        let mut metrics: Option<Vec<Metric>> = None;

        comma_list(input, |input| {
            if input.peek(LitStr) {
                let lit: LitStr = input.parse()?;
                return Err(syn::Error::new(
                    lit.span(),
                    format!(
                        "expected a parameter name; write the span name as `name = \"{}\"`",
                        lit.value()
                    ),
                ));
            }
            let key = input.call(Ident::parse_any).map_err(|e| {
                syn::Error::new(
                    e.span(),
                    format!(
                        "expected a parameter: one of {}",
                        list(PARAMS.iter().copied())
                    ),
                )
            })?;
            match key.to_string().as_str() {
                "name" => {
                    if name.is_some() {
                        return Err(duplicate(&key));
                    }
                    expect_eq(input, &key, "\"agent_kernel.operation\"")?;
                    name = Some(parse_name(input)?);
                }
                "kind" => {
                    if kind.is_some() {
                        return Err(duplicate(&key));
                    }
                    expect_eq(input, &key, "internal")?;
                    kind = Some(parse_kind(input)?);
                }
                "telemetry" => {
                    if telemetry.is_some() {
                        return Err(duplicate(&key));
                    }
                    expect_eq(input, &key, "self.telemetry()")?;
                    telemetry = Some(input.parse::<Expr>()?);
                }
                "result" | "no_result" => {
                    if let Some((_, first)) = &result {
                        return Err(syn::Error::new(
                            key.span(),
                            format!("`{key}` conflicts with `{first}`; give one of them"),
                        ));
                    }
                    if input.peek(Token![=]) {
                        return Err(syn::Error::new(
                            key.span(),
                            format!("`{key}` is a flag and takes no value"),
                        ));
                    }
                    result = Some((key == "result", key));
                }
                "attrs" => {
                    if attrs.is_some() {
                        return Err(duplicate(&key));
                    }
                    let content =
                        parens(input, &key, "principal_id = principal.id, response_mode")?;
                    let mut list = Vec::new();
                    comma_list(&content, |input| {
                        list.push(parse_attr(input)?);
                        Ok(())
                    })?;
                    attrs = Some(list);
                }
                "metrics" => {
                    if metrics.is_some() {
                        return Err(duplicate(&key));
                    }
                    let content =
                        parens(input, &key, "counter(name = \"agent_kernel.invocations\")")?;
                    let mut list = Vec::new();
                    comma_list(&content, |input| {
                        list.push(parse_metric(input)?);
                        Ok(())
                    })?;
                    metrics = Some(list);
                }
                other => {
                    return Err(syn::Error::new(
                        key.span(),
                        format!(
                            "unknown parameter `{other}`{}; valid parameters: {}",
                            did_you_mean(other, PARAMS.iter().copied()),
                            list(PARAMS.iter().copied())
                        ),
                    ));
                }
            }
            Ok(())
        })?;

        let Some(name) = name else {
            return Err(syn::Error::new(
                Span::call_site(),
                "missing span name: add `name = \"agent_kernel.operation\"`",
            ));
        };
        Ok(Args {
            name,
            kind,
            telemetry,
            result,
            attrs: attrs.unwrap_or_default(),
            metrics: metrics.unwrap_or_default(),
        })
    }
}

/// A constant as the grammar tells it from an expression: a path containing
/// `::` (`keys::SPAN_INVOKE`, `self::NAME`), or a SCREAMING_CASE identifier.
pub(crate) fn is_const_path(path: &syn::Path) -> bool {
    path.leading_colon.is_some()
        || path.segments.len() > 1
        || path
            .segments
            .first()
            .is_some_and(|s| s.arguments.is_empty() && is_screaming(&s.ident))
}

/// `NAME`, `KEY_2`: uppercase letters, digits and underscores, at least one letter.
pub(crate) fn is_screaming(ident: &Ident) -> bool {
    let s = ident.unraw().to_string();
    s.chars().any(|c| c.is_ascii_uppercase())
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// A path as written, without the spaces of its tokens (`keys::ID`).
pub(crate) fn path_text(path: &syn::Path) -> String {
    let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    let lead = if path.leading_colon.is_some() {
        "::"
    } else {
        ""
    };
    format!("{lead}{}", segments.join("::"))
}

/// Whether the next token ends the current list entry.
fn at_end(input: ParseStream) -> bool {
    input.is_empty() || input.peek(Token![,])
}

/// Whether a path (`a::b`, `::a`) starts here.
fn peek_path(input: ParseStream) -> bool {
    input.peek(Token![::]) || (input.peek(Ident::peek_any) && input.peek2(Token![::]))
}

fn parse_name(input: ParseStream) -> syn::Result<Name> {
    if input.peek(LitStr) {
        let fork = input.fork();
        fork.parse::<LitStr>()?;
        if at_end(&fork) {
            let lit: LitStr = input.parse()?;
            if lit.value().trim().is_empty() {
                return Err(syn::Error::new(
                    lit.span(),
                    "the span name must not be empty, as in `name = \"agent_kernel.invoke\"`",
                ));
            }
            return Ok(Name::Lit(lit));
        }
    }
    Ok(match input.parse::<Expr>()? {
        Expr::Path(p) if p.qself.is_none() && p.attrs.is_empty() && is_const_path(&p.path) => {
            Name::Const(p.path)
        }
        other => Name::Expr(other),
    })
}

fn parse_kind(input: ParseStream) -> syn::Result<KindArg> {
    if input.peek(Ident::peek_any) {
        let fork = input.fork();
        fork.call(Ident::parse_any)?;
        if at_end(&fork) {
            let ident = input.call(Ident::parse_any)?;
            return Ok(if KINDS.contains(&ident.to_string().as_str()) {
                KindArg::Keyword(ident)
            } else {
                KindArg::Ident(ident)
            });
        }
    }
    if input.peek(syn::Lit) || at_end(input) {
        let span = if input.is_empty() {
            input.span()
        } else {
            input.parse::<proc_macro2::TokenTree>()?.span()
        };
        return Err(syn::Error::new(
            span,
            format!(
                "expected a span kind: one of {}",
                list(KINDS.iter().copied())
            ),
        ));
    }
    Ok(KindArg::Expr(input.parse()?))
}

/// `key = "literal"` or `key = CONSTANT`.
fn parse_text(input: ParseStream, key: &Ident, what: &str) -> syn::Result<Text> {
    expect_eq(input, key, what)?;
    if input.peek(LitStr) {
        return Ok(Text::Lit(input.parse()?));
    }
    let expr: Expr = input.parse()?;
    match expr {
        Expr::Path(p) if p.qself.is_none() && p.attrs.is_empty() && is_const_path(&p.path) => {
            Ok(Text::Path(p.path))
        }
        other => Err(syn::Error::new(
            other.span(),
            format!(
                "`{key}` must be a string literal or a constant (a path with `::` or a SCREAMING_CASE name), as in `{key} = {what}`"
            ),
        )),
    }
}

fn parse_attr(input: ParseStream) -> syn::Result<Attr> {
    let key = if input.peek(LitStr) {
        let lit: LitStr = input.parse()?;
        let v = lit.value();
        if v.is_empty() || v.chars().any(char::is_whitespace) {
            return Err(syn::Error::new(
                lit.span(),
                "an attribute key must be non-empty and contain no whitespace, as in `\"gen_ai.tool.name\"`",
            ));
        }
        Key::Lit(lit)
    } else if peek_path(input) {
        let path = input.call(syn::Path::parse_mod_style)?;
        if !input.peek(Token![=]) {
            return Err(syn::Error::new(
                path.span(),
                format!(
                    "a constant key needs a value, as in `{} = expr`",
                    path_text(&path)
                ),
            ));
        }
        Key::Path(path)
    } else if input.peek(Ident::peek_any) {
        let ident = input.call(Ident::parse_any)?;
        if is_screaming(&ident) {
            return Err(syn::Error::new(
                ident.span(),
                format!(
                    "an identifier key is namespaced (`agent_kernel.{ident}`); to use the constant `{ident}` as the key write a path, as in `self::{ident} = expr`"
                ),
            ));
        }
        if ident == "self" {
            return Err(syn::Error::new(
                ident.span(),
                "`self` cannot be recorded whole; name what to record, as in `id = self.id`",
            ));
        }
        Key::Ident(ident)
    } else {
        return Err(input.error(
            "expected an attribute: `param`, `key = expr`, `\"dotted.key\" = expr` or `key = deferred`",
        ));
    };

    if input.peek(Token![.]) {
        let written = key.written();
        let rest: Expr = {
            input.parse::<Token![.]>()?;
            input.parse()?
        };
        let field = match &rest {
            Expr::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
            Expr::Field(_) | Expr::MethodCall(_) => None,
            _ => None,
        }
        .unwrap_or_else(|| "key".to_owned());
        return Err(syn::Error::new(
            key.span(),
            format!(
                "an expression needs a key: write `{field} = {written}.{}`",
                quote::ToTokens::to_token_stream(&rest)
            ),
        ));
    }

    if !input.peek(Token![=]) {
        return match key {
            Key::Ident(ident) => Ok(Attr {
                key: Key::Ident(ident.clone()),
                value: Value::Param(ident),
            }),
            Key::Lit(lit) => Err(syn::Error::new(
                lit.span(),
                format!(
                    "a string-literal key needs a value, as in `\"{}\" = expr`",
                    lit.value()
                ),
            )),
            // A path key is refused above when no `=` follows.
            Key::Path(path) => Err(syn::Error::new(path.span(), "a constant key needs a value")),
        };
    }
    input.parse::<Token![=]>()?;
    if input.peek(Ident) && input.fork().parse::<Ident>().is_ok_and(|i| i == "deferred") {
        let fork = input.fork();
        fork.parse::<Ident>()?;
        if fork.is_empty() || fork.peek(Token![,]) {
            input.parse::<Ident>()?;
            return Ok(Attr {
                key,
                value: Value::Deferred,
            });
        }
    }
    if input.peek(LitStr) {
        let fork = input.fork();
        fork.parse::<LitStr>()?;
        if fork.is_empty() || fork.peek(Token![,]) {
            return Ok(Attr {
                key,
                value: Value::Lit(input.parse()?),
            });
        }
    }
    if input.is_empty() || input.peek(Token![,]) {
        return Err(syn::Error::new(
            key.span(),
            format!(
                "`{} =` needs a value: an expression over the parameters, a string literal, `deferred`, or a closure over the return value",
                key.written()
            ),
        ));
    }
    match input.parse()? {
        Expr::Closure(closure) => Ok(Attr {
            key,
            value: Value::Returned(closure),
        }),
        expr => Ok(Attr {
            key,
            value: Value::Expr(expr),
        }),
    }
}

fn parse_metric(input: ParseStream) -> syn::Result<Metric> {
    let kind_token = input
        .call(Ident::parse_any)
        .map_err(|e| syn::Error::new(e.span(), "expected `counter(...)` or `histogram(...)`"))?;
    let kind = match kind_token.to_string().as_str() {
        "counter" => MetricKind::Counter,
        "histogram" => MetricKind::Histogram,
        "gauge" => {
            return Err(syn::Error::new(
                kind_token.span(),
                "`metrics(...)` declares `counter` and `histogram` only; register an observable gauge at run time with `Telemetry::register_gauge`",
            ));
        }
        other => {
            return Err(syn::Error::new(
                kind_token.span(),
                format!(
                    "unknown metric `{other}`{}; expected `counter(...)` or `histogram(...)`",
                    did_you_mean(other, ["counter", "histogram"])
                ),
            ));
        }
    };
    let content = parens(
        input,
        &kind_token,
        "name = \"agent_kernel.invocations\", labels(status)",
    )?;
    if starts_with_constant(&content) {
        return parse_const_metric(&content, kind);
    }
    let mut name = None;
    let mut unit = None;
    let mut description = None;
    let mut buckets = None;
    let mut labels: Option<Vec<Key>> = None;
    let mut when = None;
    comma_list(&content, |input| {
        let key = metric_param(input)?;
        match key.to_string().as_str() {
            "name" => {
                if name.is_some() {
                    return Err(duplicate(&key));
                }
                let text = parse_text(input, &key, "\"agent_kernel.invocations\"")?;
                if let Text::Lit(lit) = &text {
                    check_metric_name(lit)?;
                }
                name = Some(text);
            }
            "unit" => {
                if unit.is_some() {
                    return Err(duplicate(&key));
                }
                let lit = parse_lit_str(input, &key, "\"ms\"")?;
                if kind == MetricKind::Histogram && !TIME_UNITS.contains(&lit.value().as_str()) {
                    return Err(syn::Error::new(
                        lit.span(),
                        format!(
                            "a histogram records the span's duration; its unit must be one of {}",
                            list(TIME_UNITS.iter().copied())
                        ),
                    ));
                }
                unit = Some(lit);
            }
            "description" => {
                if description.is_some() {
                    return Err(duplicate(&key));
                }
                description = Some(parse_text(input, &key, "\"...\"")?);
            }
            "buckets" => {
                if buckets.is_some() {
                    return Err(duplicate(&key));
                }
                if kind == MetricKind::Counter {
                    return Err(syn::Error::new(
                        key.span(),
                        "`buckets` applies to histograms, not counters",
                    ));
                }
                expect_eq(input, &key, "[0.01, 0.1, 1.0]")?;
                buckets = Some(parse_buckets(input, &key)?);
            }
            "labels" => {
                if labels.is_some() {
                    return Err(duplicate(&key));
                }
                let content = parens(input, &key, "capability_id, status")?;
                let mut list = Vec::new();
                comma_list(&content, |input| {
                    if input.peek(LitStr) {
                        list.push(Key::Lit(input.parse()?));
                    } else if peek_path(input) {
                        list.push(Key::Path(input.call(syn::Path::parse_mod_style)?));
                    } else {
                        let ident = input.call(Ident::parse_any).map_err(|e| {
                            syn::Error::new(
                                e.span(),
                                "expected a label: a declared attribute key or `status`",
                            )
                        })?;
                        if input.peek(Token![=]) {
                            return Err(syn::Error::new(
                                ident.span(),
                                "labels name declared attributes; declare the value in `attrs(...)` and list its key here",
                            ));
                        }
                        list.push(Key::Ident(ident));
                    }
                    Ok(())
                })?;
                labels = Some(list);
            }
            "when" => {
                if when.is_some() {
                    return Err(duplicate(&key));
                }
                when = Some(parse_when(input, &key)?);
            }
            other => return Err(unknown_metric_param(&key, other)),
        }
        Ok(())
    })?;
    let Some(name) = name else {
        return Err(syn::Error::new(
            kind_token.span(),
            format!("this {kind_token} has no name: add `name = \"agent_kernel.invocations\"`"),
        ));
    };
    if kind == MetricKind::Histogram && unit.is_none() {
        return Err(syn::Error::new(
            kind_token.span(),
            "a histogram records the span's duration: add `unit = \"ms\"` (or \"s\", \"us\", \"ns\")",
        ));
    }
    Ok(Metric::Inline(InlineMetric {
        kind,
        name,
        unit,
        description,
        buckets,
        labels: labels.unwrap_or_default(),
        when,
    }))
}

/// Whether `counter(...)` starts with a constant (`counter(keys::DENIALS, ..)`)
/// rather than a parameter.
fn starts_with_constant(input: ParseStream) -> bool {
    let fork = input.fork();
    match fork.call(syn::Path::parse_mod_style) {
        Ok(path) => at_end(&fork) && is_const_path(&path),
        Err(_) => false,
    }
}

/// `counter(PATH, when = ..)`: everything else is in the constant.
fn parse_const_metric(input: ParseStream, kind: MetricKind) -> syn::Result<Metric> {
    let path = input.call(syn::Path::parse_mod_style)?;
    let mut when = None;
    if input.peek(Token![,]) {
        input.parse::<Token![,]>()?;
    }
    comma_list(input, |input| {
        let key = metric_param(input)?;
        match key.to_string().as_str() {
            "when" => {
                if when.is_some() {
                    return Err(duplicate(&key));
                }
                when = Some(parse_when(input, &key)?);
            }
            other if METRIC_PARAMS.contains(&other) => {
                return Err(syn::Error::new(
                    key.span(),
                    format!(
                        "`{other}` is part of the constant `{}`; beside a constant only `when` may be given",
                        path_text(&path)
                    ),
                ));
            }
            other => return Err(unknown_metric_param(&key, other)),
        }
        Ok(())
    })?;
    Ok(Metric::Const { kind, path, when })
}

fn metric_param(input: ParseStream) -> syn::Result<Ident> {
    input.call(Ident::parse_any).map_err(|e| {
        syn::Error::new(
            e.span(),
            format!(
                "expected a metric parameter: one of {}",
                list(METRIC_PARAMS.iter().copied())
            ),
        )
    })
}

fn unknown_metric_param(key: &Ident, other: &str) -> syn::Error {
    syn::Error::new(
        key.span(),
        format!(
            "unknown metric parameter `{other}`{}; valid parameters: {}",
            did_you_mean(other, METRIC_PARAMS.iter().copied()),
            list(METRIC_PARAMS.iter().copied())
        ),
    )
}

fn parse_when(input: ParseStream, key: &Ident) -> syn::Result<Ident> {
    expect_eq(input, key, "denied")?;
    let value = input.call(Ident::parse_any).map_err(|e| {
        syn::Error::new(
            e.span(),
            format!("expected one of {}", list(WHENS.iter().copied())),
        )
    })?;
    let text = value.to_string();
    if !WHENS.contains(&text.as_str()) {
        return Err(syn::Error::new(
            value.span(),
            format!(
                "unknown condition `{text}`{}; expected one of {}",
                did_you_mean(&text, WHENS.iter().copied()),
                list(WHENS.iter().copied())
            ),
        ));
    }
    Ok(value)
}

/// OpenTelemetry instrument-name rules: an ASCII letter first, then letters,
/// digits, `_ . - /`, at most 255 characters.
fn check_metric_name(lit: &LitStr) -> syn::Result<()> {
    let v = lit.value();
    let ok = v.len() <= 255
        && v.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c));
    if ok {
        Ok(())
    } else {
        Err(syn::Error::new(
            lit.span(),
            "invalid metric name: start with a letter, then letters, digits, `_`, `.`, `-` or `/` (at most 255), as in \"agent_kernel.invocations\"",
        ))
    }
}

fn parse_buckets(input: ParseStream, key: &Ident) -> syn::Result<Buckets> {
    if peek_path(input) || input.peek(Ident) {
        let fork = input.fork();
        if let Ok(path) = fork.call(syn::Path::parse_mod_style) {
            if at_end(&fork) && is_const_path(&path) {
                input.call(syn::Path::parse_mod_style)?;
                return Ok(Buckets::Path(path));
            }
        }
    }
    if !input.peek(syn::token::Bracket) {
        return Err(syn::Error::new(
            key.span(),
            "`buckets` takes a list of numbers or a constant, as in `buckets = [0.01, 0.1, 1.0]`",
        ));
    }
    let content;
    let bracket = bracketed!(content in input);
    let mut values: Vec<(f64, Span)> = Vec::new();
    comma_list(&content, |input| {
        let lit: syn::Lit = input
            .parse()
            .map_err(|e| syn::Error::new(e.span(), "expected a number literal"))?;
        let value = match &lit {
            syn::Lit::Float(f) => f.base10_parse::<f64>()?,
            syn::Lit::Int(i) => i.base10_parse::<f64>()?,
            other => return Err(syn::Error::new(other.span(), "expected a number literal")),
        };
        if !value.is_finite() {
            return Err(syn::Error::new(
                lit.span(),
                "bucket boundaries must be finite",
            ));
        }
        if let Some((prev, _)) = values.last() {
            if value <= *prev {
                return Err(syn::Error::new(
                    lit.span(),
                    format!("bucket boundaries must increase: {value} follows {prev}"),
                ));
            }
        }
        values.push((value, lit.span()));
        Ok(())
    })?;
    if values.is_empty() {
        return Err(syn::Error::new(
            bracket.span.join(),
            "`buckets` must list at least one boundary; leave it out for the SDK default",
        ));
    }
    Ok(Buckets::Lit(values))
}
