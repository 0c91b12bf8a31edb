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
    pub name: LitStr,
    pub kind: Option<Ident>,
    pub telemetry: Option<Expr>,
    /// `result` (true) or `no_result` (false), with the flag's token.
    pub result: Option<(bool, Ident)>,
    pub attrs: Vec<Attr>,
    pub metrics: Vec<Metric>,
}

/// An attribute key as written.
#[derive(Clone)]
pub(crate) enum Key {
    /// `principal_id`: namespaced as `agent_kernel.principal_id`.
    Ident(Ident),
    /// `"gen_ai.tool.name"`: verbatim.
    Lit(LitStr),
}

impl Key {
    /// The key as written: what labels and `record` refer to.
    pub fn written(&self) -> String {
        match self {
            Key::Ident(i) => i.unraw().to_string(),
            Key::Lit(l) => l.value(),
        }
    }

    /// The span attribute key.
    pub fn span_key(&self) -> String {
        match self {
            Key::Ident(i) => format!("agent_kernel.{}", i.unraw()),
            Key::Lit(l) => l.value(),
        }
    }

    pub fn span(&self) -> Span {
        match self {
            Key::Ident(i) => i.span(),
            Key::Lit(l) => l.span(),
        }
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

pub(crate) struct Metric {
    pub kind: MetricKind,
    pub name: LitStr,
    pub unit: Option<LitStr>,
    pub description: Option<LitStr>,
    /// Bucket boundaries with the span of each literal.
    pub buckets: Option<(Span, Vec<(f64, Span)>)>,
    /// `labels(...)`: keys as written (`status` is the built-in outcome label).
    pub labels: Vec<Key>,
    pub when: Option<Ident>,
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
        let mut name: Option<LitStr> = None;
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
                    let lit = parse_lit_str(input, &key, "\"agent_kernel.operation\"")?;
                    if lit.value().trim().is_empty() {
                        return Err(syn::Error::new(
                            lit.span(),
                            "the span name must not be empty, as in `name = \"agent_kernel.invoke\"`",
                        ));
                    }
                    name = Some(lit);
                }
                "kind" => {
                    if kind.is_some() {
                        return Err(duplicate(&key));
                    }
                    expect_eq(input, &key, "internal")?;
                    let value = input.call(Ident::parse_any).map_err(|e| {
                        syn::Error::new(
                            e.span(),
                            format!(
                                "expected a span kind: one of {}",
                                list(KINDS.iter().copied())
                            ),
                        )
                    })?;
                    let text = value.to_string();
                    if !KINDS.contains(&text.as_str()) {
                        return Err(syn::Error::new(
                            value.span(),
                            format!(
                                "unknown span kind `{text}`{}; expected one of {}",
                                did_you_mean(&text, KINDS.iter().copied()),
                                list(KINDS.iter().copied())
                            ),
                        ));
                    }
                    kind = Some(value);
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
    } else if input.peek(Ident::peek_any) {
        let ident = input.call(Ident::parse_any)?;
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
    let mut name = None;
    let mut unit = None;
    let mut description = None;
    let mut buckets = None;
    let mut labels: Option<Vec<Key>> = None;
    let mut when = None;
    comma_list(&content, |input| {
        let key = input.call(Ident::parse_any).map_err(|e| {
            syn::Error::new(
                e.span(),
                format!(
                    "expected a metric parameter: one of {}",
                    list(METRIC_PARAMS.iter().copied())
                ),
            )
        })?;
        match key.to_string().as_str() {
            "name" => {
                if name.is_some() {
                    return Err(duplicate(&key));
                }
                let lit = parse_lit_str(input, &key, "\"agent_kernel.invocations\"")?;
                check_metric_name(&lit)?;
                name = Some(lit);
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
                description = Some(parse_lit_str(input, &key, "\"...\"")?);
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
                expect_eq(input, &key, "denied")?;
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
                when = Some(value);
            }
            other => {
                return Err(syn::Error::new(
                    key.span(),
                    format!(
                        "unknown metric parameter `{other}`{}; valid parameters: {}",
                        did_you_mean(other, METRIC_PARAMS.iter().copied()),
                        list(METRIC_PARAMS.iter().copied())
                    ),
                ));
            }
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
    Ok(Metric {
        kind,
        name,
        unit,
        description,
        buckets,
        labels: labels.unwrap_or_default(),
        when,
    })
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

fn parse_buckets(input: ParseStream, key: &Ident) -> syn::Result<(Span, Vec<(f64, Span)>)> {
    if !input.peek(syn::token::Bracket) {
        return Err(syn::Error::new(
            key.span(),
            "`buckets` takes a list of numbers, as in `buckets = [0.01, 0.1, 1.0]`",
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
    Ok((bracket.span.join(), values))
}
