//! `#[kernel_span]`: OpenTelemetry spans and metrics for agent-kernel
//! functions, generated at compile time.
//!
//! Use it through `agent_kernel_otel::kernel_span` (the generated code calls
//! `::agent_kernel_otel::__private_v0_1`, a module whose name carries the
//! runtime's version; the runtime pins this crate with `=`). Without the
//! `otel` feature the attribute
//! checks its arguments and returns the function unchanged, token for token;
//! with it, the function is wrapped in span and metric code.
//!
//! The crate is split the way the work flows: `args.rs` parses the
//! arguments (syntax), `item.rs` the annotated item, `validate.rs` checks
//! the arguments against the function and turns both into the checked
//! model of `model.rs` (a `Plan`: span name and kind, the
//! declared keys, the attribute pushes, the metrics, the result detection),
//! and `expand.rs` only prints a plan. Parsing and validation run with and
//! without `otel`, so the feature never reveals a new argument error.
#![forbid(unsafe_code)]

mod args;
mod expand;
mod item;
mod model;
mod suggest;
mod validate;

use proc_macro::TokenStream;

/// Wraps a function in an OpenTelemetry span (and, optionally, metrics).
///
/// # Grammar
/// ```text
/// #[kernel_span( param, ... )]          // any order, each at most once
///
/// param   := name = NAME                // required
///          | kind = KIND                // default internal
///          | telemetry = EXPR           // binding for a root span: a Telemetry or &Telemetry,
///                                       //   evaluated only while telemetry is enabled
///          | result | no_result         // override Result detection (type aliases)
///          | attrs( attr, ... )
///          | metrics( metric, ... )
/// NAME    := "span.name"                // a non-empty string literal
///          | CONST                      // a &'static str constant
///          | EXPR                       // anything else: computed at each call while telemetry
///                                       //   is on (impl Into<Cow<'static, str>>, e.g. format!(..))
/// KIND    := internal | client | server | producer | consumer
///          | IDENT                      // a parameter holding an agent_kernel_otel::SpanKind
///          | EXPR                       // any other SpanKind expression, computed at each call
///                                       //   while telemetry is on: (client) is the variable
///                                       //   `client`, driver.span_kind() a method call
/// CONST   := a path containing `::` (keys::SPAN_INVOKE, self::NAME, crate::otel::X)
///          | a SCREAMING_CASE identifier (NAME)
///
/// attr    := IDENT                      // shorthand: the parameter of that name
///          | KEY = EXPR                 // an expression over the parameters (borrowed, never moved),
///                                       //   in a closure of its own; no control flow leaving it
///          | KEY = "literal"            // a constant
///          | KEY = deferred             // recorded later by agent_kernel_otel::record("key", value)
///          | KEY = |out| EXPR           // computed from the return value (by reference) when
///                                       //   the body returns: an async fn's output, a Result
///                                       //   as a whole; not set on panic or cancellation
/// KEY     := IDENT                      // span key agent_kernel.IDENT, label key IDENT
///          | "dotted.key"               // span key and label key verbatim
///          | PATH                       // a &'static str constant, a path containing `::`
///                                       //   (keys::CAPABILITY_ID): the span key; the label key is
///                                       //   its value without a leading `agent_kernel.`
///
/// metric  := counter( mparam, ... )     // adds 1 per call
///          | histogram( mparam, ... )   // records the span's duration in `unit`
///          | counter( CONST [, when = WHEN] )    // a CounterSpec constant
///          | histogram( CONST [, when = WHEN] )  // a HistogramSpec constant
/// mparam  := name = TEXT                // required
///          | unit = "UCUM"              // histogram: required, one of "s" "ms" "us" "ns"
///          | description = TEXT
///          | buckets = [ NUMBER, ... ]  // histogram only; increasing explicit boundaries
///          | buckets = CONST            // a [f64; N] or &[f64] constant
///          | labels( LABEL, ... )       // declared attribute keys, or `status`
///          | when = WHEN                // default always
/// TEXT    := "literal" | CONST
/// LABEL   := IDENT | "dotted.key"       // a key as written in attrs(...)
///          | PATH                       // a &'static str constant holding a bare label key
///          | status                     // status = success | error | denied
/// WHEN    := always | success | error | denied | failure   // failure = error or denied
/// ```
///
/// **Telling the forms apart.** A keyword and a variable of the same name:
/// `kind = client` is the keyword, `kind = (client)` the variable (any
/// parenthesised or longer expression is run-time). A bare identifier that is
/// no keyword must be a parameter (`kind = kind`), else it is reported as a
/// misspelled keyword. A constant key and an identifier key: an identifier is
/// always namespaced (`capability_id` → `agent_kernel.capability_id`), a path
/// containing `::` is a constant (`keys::CAPABILITY_ID`); a SCREAMING_CASE
/// identifier as a key is refused (write `self::NAME`). For `name`, metric
/// names and buckets, a path containing `::` or a SCREAMING_CASE identifier
/// is a constant; for `name`, anything else is a run-time expression. Paths
/// are resolved at the function's module (not `Self::..`).
///
/// **What is checked where.** Literals are checked by the macro, with an error
/// at the offending token. A constant's *value* cannot be seen by a macro, so
/// with the `otel` feature the generated code checks it with `const`
/// assertions (a failure is a compile error at the annotated function): a
/// constant span name is a non-empty `&'static str`; a metric name follows the
/// OpenTelemetry instrument-name rules; a histogram constant's unit is `s`,
/// `ms`, `us` or `ns`; buckets are finite and increasing; every label of a
/// metric is `status` or names a declared key (by its label key); no two keys
/// (constants included) have the same value. That a constant's value matches
/// `docs/telemetry.md` is the contract test's job. Without `otel` the
/// function comes back unchanged and no constant is read.
///
/// A metric used by several functions is declared once as a constant
/// (`agent_kernel_otel::CounterSpec`, `agent_kernel_otel::HistogramSpec`) and
/// named by each: `metrics(counter(keys::POLICY_DENIALS, when = denied))`.
///
/// Attribute values are anything that implements
/// `agent_kernel_otel::ToAttrValue` (strings, numbers, booleans, `Option`s of
/// them, your own enums); `None` leaves the attribute out. Only what `attrs`
/// names is recorded: arguments never leak by default. Metric label values
/// must come from bounded sets (registered capability ids, closed enums):
/// that is the caller's responsibility.
///
/// Attribute expressions and the `telemetry` expression are evaluated before
/// the body, and telemetry never changes a result: they may not contain `?`,
/// `return`, `become`, `yield` or `.await`, nor a `break` or `continue` whose
/// loop or labeled block is outside the expression, wherever these sit
/// (closures and `async` blocks inside are scopes of their own, and may).
/// Since a macro call's tokens cannot be checked, each expression is also
/// evaluated in a closure of its own: control flow hidden in a macro call
/// ends that closure, never the function (a `return` of `()` leaves the
/// attribute out; `?`, `.await`, `break`, `continue` and a `return` of
/// another value do not compile there). Turn an
/// error into a value (`.ok()` leaves the attribute out), or record the value
/// later with `deferred` or `|out| ..`. In `|out| ..`, `return` and `?` end
/// that closure and are allowed.
///
/// `deferred` or `|out| ..`? A value known only from the result is cheaper as
/// a closure over the return value: it is computed once, after the body, and
/// needs no slot in the OpenTelemetry context; `deferred` is for values known
/// midway, or on error paths that return no such value.
///
/// # What it generates
/// - Sync functions: the span is attached to the thread while the body runs and
///   ends on every return path, `?` included.
/// - `async fn`, and functions whose last expression is `async { .. }` or
///   `Box::pin(async { .. })` (what `#[async_trait]` produces, so the attribute
///   works on methods of an `#[async_trait]` impl): the future is wrapped so
///   the span's context is attached on each poll, never across an `.await`;
///   dropping the future ends the span as cancelled (ERROR).
/// - A return type whose last path segment is `Result` (`io::Result<T>` too)
///   sets status ERROR on `Err` with a redacted description, `error.type`, and
///   an `exception` event (see `agent_kernel_otel::SpanError`); `Ok` leaves it
///   unset. A panic ends the span as ERROR and keeps unwinding.
/// - While telemetry is disabled at run time: one relaxed atomic load, then
///   the plain body; no attribute expression is evaluated.
///
/// # Examples
/// ```
/// # extern crate agent_kernel_otel;
/// use agent_kernel_otel::{kernel_span, record, Telemetry};
///
/// struct Token { capability_id: String }
/// #[derive(Debug)]
/// enum KernelError { Denied }
///
/// struct Kernel { telemetry: Telemetry }
///
/// impl Kernel {
///     #[kernel_span(
///         name = "agent_kernel.invoke",
///         kind = internal,
///         telemetry = self.telemetry,
///         attrs(
///             principal_id,
///             capability_id = token.capability_id,
///             "gen_ai.tool.name" = token.capability_id,
///             "gen_ai.operation.name" = "execute_tool",
///             safety_class = deferred,
///             reason_category = deferred,
///         ),
///         metrics(
///             counter(name = "agent_kernel.invocations", unit = "{invocation}",
///                     labels(capability_id, safety_class, status)),
///             histogram(name = "agent_kernel.invocation_duration", unit = "ms",
///                       buckets = [0.01, 0.1, 1, 10, 100, 1000, 10000],
///                       labels(capability_id, safety_class, status)),
///             counter(name = "agent_kernel.policy_denials", unit = "{denial}",
///                     labels(capability_id, reason_category), when = denied),
///         ),
///     )]
///     fn invoke(&self, principal_id: &str, token: &Token) -> Result<usize, KernelError> {
///         record("safety_class", "read");
///         if token.capability_id.is_empty() {
///             record("reason_category", "unknown_capability");
///             return Err(KernelError::Denied);
///         }
///         Ok(principal_id.len())
///     }
/// }
///
/// let kernel = Kernel { telemetry: Telemetry::global() };
/// let token = Token { capability_id: "billing.list".into() };
/// assert_eq!(kernel.invoke("alice", &token).unwrap(), 5);
/// ```
///
/// Async functions and child spans find their parent and binding through the
/// OpenTelemetry `Context`:
/// ```
/// # extern crate agent_kernel_otel;
/// use agent_kernel_otel::kernel_span;
///
/// #[kernel_span(name = "agent_kernel.driver.execute", kind = client, attrs(driver_id, attempt))]
/// async fn execute(driver_id: &str, attempt: u32) -> std::io::Result<Vec<u8>> {
///     Ok(driver_id.as_bytes().to_vec())
/// }
/// # let _ = execute("http", 1);
/// ```
///
/// # Errors
/// Every misuse is a compile error at the offending token, with a fix where
/// one exists: unknown parameters (with the nearest valid name), a missing or
/// empty `name`, an `attrs` entry naming no parameter (with the nearest
/// parameter), control flow that would leave an attribute expression, a
/// label that is no declared attribute, a bad `kind` (a misspelled keyword
/// that names no parameter), a metric name or buckets that are neither
/// literals nor constants, parameters beside a metric constant, a
/// SCREAMING_CASE key (write the constant as a path), malformed `metrics`,
/// or the attribute on something other than a function with a body
/// (a struct, a trait method without a body, a `const fn`, an `extern` fn).
#[proc_macro_attribute]
pub fn kernel_span(attr: TokenStream, item: TokenStream) -> TokenStream {
    run(attr.into(), item.into(), cfg!(feature = "otel")).into()
}

/// The attribute, with the `otel` switch as an argument (so tests can run both
/// expansions).
fn run(
    attr: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
    generate: bool,
) -> proc_macro2::TokenStream {
    let args = syn::parse2::<args::Args>(attr);
    let func = item::parse(item.clone());
    let checked = match (args, func) {
        (Ok(args), Ok(item::Parsed::Func(func))) => validate::validate(args, func).map(Some),
        // A body that does not parse (yet): the arguments are still checked
        // against the signature, and the item comes back as written, so
        // rustc reports the body's syntax error once and rust-analyzer keeps
        // working on the function (as tracing-attributes does).
        (Ok(args), Ok(item::Parsed::Unparsed(func))) => {
            validate::validate(args, func).map(|_| None)
        }
        (Err(mut a), Err(b)) => {
            a.combine(b);
            Err(a)
        }
        (Err(e), Ok(_)) | (Ok(_), Err(e)) => Err(e),
    };
    match checked {
        Ok(Some(plan)) if generate => expand::expand(plan),
        Ok(_) => item,
        Err(e) => {
            let mut out = e.to_compile_error();
            out.extend(item::without_misplaced_attrs(item));
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::run;
    use proc_macro2::TokenStream;
    use quote::ToTokens;
    use std::path::Path;

    /// Every `#[kernel_span(...)]` function in a file, as (attribute args, item
    /// without that attribute).
    fn annotated(file: &syn::File) -> Vec<(TokenStream, TokenStream)> {
        fn take(attrs: &mut Vec<syn::Attribute>) -> Option<TokenStream> {
            let pos = attrs.iter().position(|a| {
                a.path()
                    .segments
                    .last()
                    .is_some_and(|s| s.ident == "kernel_span")
            })?;
            let attr = attrs.remove(pos);
            Some(match attr.meta {
                syn::Meta::List(l) => l.tokens,
                _ => TokenStream::new(),
            })
        }
        fn items(list: &[syn::Item], out: &mut Vec<(TokenStream, TokenStream)>) {
            for item in list {
                match item {
                    syn::Item::Fn(f) => {
                        let mut f = f.clone();
                        if let Some(args) = take(&mut f.attrs) {
                            out.push((args, f.into_token_stream()));
                        }
                    }
                    syn::Item::Impl(i) => {
                        for it in &i.items {
                            if let syn::ImplItem::Fn(f) = it {
                                let mut f = f.clone();
                                if let Some(args) = take(&mut f.attrs) {
                                    out.push((args, f.into_token_stream()));
                                }
                            }
                        }
                    }
                    syn::Item::Trait(t) => {
                        for it in &t.items {
                            if let syn::TraitItem::Fn(f) = it {
                                let mut f = f.clone();
                                if let Some(args) = take(&mut f.attrs) {
                                    out.push((args, f.into_token_stream()));
                                }
                            }
                        }
                    }
                    syn::Item::Mod(m) => {
                        if let Some((_, inner)) = &m.content {
                            items(inner, out);
                        }
                    }
                    _ => {}
                }
            }
        }
        let mut out = Vec::new();
        items(&file.items, &mut out);
        out
    }

    fn pass_cases() -> Vec<std::path::PathBuf> {
        // The run-time variable (set by cargo and nextest) first: a test
        // binary reused from another checkout's build would otherwise look in
        // that checkout.
        let manifest_dir = std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned());
        let dir = Path::new(&manifest_dir).join("../tests/ui/pass");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .expect("tests/ui/pass exists")
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "rs"))
            .collect();
        files.sort();
        files
    }

    #[test]
    fn off_feature_output_equals_input_for_every_pass_case() {
        let files = pass_cases();
        assert!(
            files.len() >= 12,
            "expected at least 12 pass cases, found {}",
            files.len()
        );
        let mut functions = 0;
        for path in files {
            let src = std::fs::read_to_string(&path).expect("readable case");
            let file = syn::parse_file(&src).expect("case parses");
            let cases = annotated(&file);
            assert!(
                !cases.is_empty(),
                "{} has no #[kernel_span]",
                path.display()
            );
            for (args, item) in cases {
                let off = run(args.clone(), item.clone(), false);
                assert_eq!(
                    off.to_string(),
                    item.to_string(),
                    "{}: off-feature output differs",
                    path.display()
                );
                let on = run(args, item, true);
                assert!(
                    !on.to_string().contains("compile_error"),
                    "{}: expansion failed: {on}",
                    path.display()
                );
                functions += 1;
            }
        }
        assert!(functions >= 12);
    }

    #[test]
    fn the_private_module_carries_this_crates_version() {
        let version = env!("CARGO_PKG_VERSION");
        let mut parts = version.split('.');
        let expected = format!(
            "__private_v{}_{}",
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default()
        );
        assert_eq!(crate::expand::PRIVATE, expected);
    }

    #[test]
    fn a_body_that_does_not_parse_comes_back_as_written() {
        let item: TokenStream = "fn f(x: u32) -> u32 { x + }".parse().expect("tokens");
        for generate in [false, true] {
            let out = run(
                "name = \"x\", attrs(x)".parse().expect("tokens"),
                item.clone(),
                generate,
            );
            assert_eq!(out.to_string(), item.to_string());
        }
        // The arguments are still checked against the signature.
        let out = run(
            "name = \"x\", attrs(y)".parse().expect("tokens"),
            item.clone(),
            true,
        );
        assert!(out.to_string().contains("compile_error"), "{out}");
        assert!(out.to_string().contains("`y` is not a parameter"), "{out}");
    }

    #[test]
    fn errors_are_the_same_with_and_without_the_feature() {
        let cases: &[(&str, &str)] = &[
            ("nmae = \"x\"", "fn f() {}"),
            ("name = \"\"", "fn f() {}"),
            ("name = \"x\", attrs(missing)", "fn f(present: u8) {}"),
            ("name = \"x\"", "struct S;"),
            ("name = \"x\"", "const fn f() {}"),
            (
                "name = \"x\", attrs(n = { input.parse::<u32>()? })",
                "fn f(input: &str) -> Result<(), E> { Ok(()) }",
            ),
            (
                "name = \"x\", attrs(n = match x { 0 => return 0, k => k })",
                "fn f(x: u32) -> u32 { x }",
            ),
            (
                "name = \"x\", attrs(n = loop { break }, m = { continue })",
                "fn f() {}",
            ),
            ("name = \"x\", attrs(n = x.await)", "async fn f(x: F) {}"),
            (
                "name = \"x\", telemetry = t()?",
                "fn f() -> Option<()> { None }",
            ),
            ("name = q.to_string()", "fn f(x: u8) {}"),
            ("name = \"x\", kind = (q)", "fn f(x: u8) {}"),
            ("name = \"x\", kind = clinet", "fn f(x: u8) {}"),
            ("name = \"x\", attrs(KEY = x)", "fn f(x: u8) {}"),
            (
                "name = \"x\", metrics(counter(C, name = \"y\"))",
                "fn f() {}",
            ),
        ];
        for (args, item) in cases {
            let args: TokenStream = args.parse().expect("tokens");
            let item: TokenStream = item.parse().expect("tokens");
            let off = run(args.clone(), item.clone(), false).to_string();
            let on = run(args, item, true).to_string();
            assert!(off.contains("compile_error"), "{off}");
            assert_eq!(off, on);
        }
    }

    /// The errors `run` reports for these arguments on a function with
    /// parameters `x`, `y`, `c` and `xs` (the same in both feature states).
    fn errors(args: &str) -> Vec<String> {
        let item: TokenStream =
            "fn f(x: Option<u32>, y: u32, c: bool, xs: &[u32]) -> Option<u32> { x }"
                .parse()
                .expect("tokens");
        let args: TokenStream = args.parse().expect("tokens");
        let off = run(args.clone(), item.clone(), false);
        let on = run(args, item, true);
        if off.to_string().contains("compile_error") {
            assert_eq!(off.to_string(), on.to_string());
        } else {
            assert!(!on.to_string().contains("compile_error"), "{on}");
        }
        let mut found = Vec::new();
        let mut tokens = off.into_iter().peekable();
        while let Some(tt) = tokens.next() {
            if let proc_macro2::TokenTree::Ident(i) = &tt {
                if i == "compile_error" {
                    tokens.next(); // `!`
                    if let Some(proc_macro2::TokenTree::Group(g)) = tokens.next() {
                        found.push(g.stream().to_string());
                    }
                }
            }
        }
        found
    }

    #[test]
    fn control_flow_that_leaves_an_expression_is_refused_wherever_it_sits() {
        let refused: &[(&str, &[&str])] = &[
            ("n = { x? }", &["`?`"]),
            ("n = x?.pow(2)", &["`?`"]),
            ("n = y.pow(x?)", &["`?`"]),
            ("n = u32::from(x?)", &["`?`"]),
            ("n = (x?, 1)", &["`?`"]),
            ("n = [x?]", &["`?`"]),
            ("n = [x?; 2]", &["`?`"]),
            ("n = -(x? as i64)", &["`?`"]),
            ("n = &xs[x? as usize]", &["`?`"]),
            ("n = (1..x?)", &["`?`"]),
            ("n = S { a: x?, ..S::default() }", &["`?`"]),
            ("n = { let v = x?; v }", &["`?`"]),
            (
                "n = { let Some(v) = x else { return None }; v }",
                &["`return`"],
            ),
            ("n = if let Some(v) = x? { v } else { 0 }", &["`?`"]),
            ("n = if c { 1 } else { return None }", &["`return`"]),
            ("n = match x { Some(v) if v > x? => v, _ => 0 }", &["`?`"]),
            (
                "n = match x { Some(v) => v, None => return None }",
                &["`return`"],
            ),
            ("n = unsafe { x? }", &["`?`"]),
            ("n = { let mut a = 0; a = x?; a }", &["`?`"]),
            ("n = while x? > 0 {}", &["`?`"]),
            ("n = for v in x? {}", &["`?`"]),
            ("n = for v in { continue; xs } {}", &["`continue`"]),
            ("n = if c { break } else { 1 }", &["`break`"]),
            ("n = loop { break 'outer 1 }", &["`break 'outer`"]),
            ("n = 'a: loop { continue 'b }", &["`continue 'b`"]),
            ("n = 'a: { break 'b 1 }", &["`break 'b`"]),
            ("n = while { break } {}", &["`break`"]),
            ("n = 'a: { loop {} ; break }", &["`break`"]),
            ("n = loop { break x? }", &["`?`"]),
            ("n = x.await", &["`.await`"]),
            ("n = y.pow(x.await)", &["`.await`"]),
            ("n = yield 1", &["`yield`"]),
            ("n = { become g(y) }", &["`become`"]),
            ("n = return", &["`return`"]),
            (
                "n = (x?, return None, y.await)",
                &["`?`", "`return`", "`.await`"],
            ),
            ("n = x?, m = return None", &["`?`", "`return`"]),
            ("n = |out| out.await", &["`.await`"]),
            ("n = |out| { break }", &["`break`"]),
        ];
        for (attrs, expected) in refused {
            let found = errors(&format!("name = \"x\", attrs({attrs})"));
            assert_eq!(found.len(), expected.len(), "{attrs}: {found:?}");
            for (message, token) in found.iter().zip(expected.iter()) {
                assert!(message.contains(token), "{attrs}: {message}");
            }
        }
        let found = errors("name = \"x\", telemetry = t(x?)");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("`telemetry` expression"), "{found:?}");
    }

    #[test]
    fn control_flow_that_stays_inside_an_expression_is_accepted() {
        let accepted = [
            "n = (|| x?.checked_add(1))()",
            "n = (move || -> Option<u32> { return Some(x? + 1) })()",
            "n = (async || x.await)",
            "n = async { return g(x).await? }",
            "n = async move { y.await }",
            "n = loop { break 1 }",
            "n = 'a: loop { loop { break 'a 1 } }",
            "n = 'a: loop { for v in xs { if c { continue 'a } break 'a *v } }",
            "n = 'b: { if c { break 'b 1 } 2 }",
            "n = { let mut k = 0; for v in xs { if *v == 0 { continue } k += 1 } k }",
            "n = 'w: while c { break 'w }",
            "n = { fn inner() -> u32 { return 1 } inner() }",
            "n = const { 1 }",
            "n = m!(return 1)",
            "n = try { x? }",
            "n = |out| { return out.len(); }",
            "n = |out| out.as_ref()?.checked_add(1)",
            "n = |out| loop { break out }",
        ];
        for attrs in accepted {
            let found = errors(&format!("name = \"x\", attrs({attrs})"));
            assert!(found.is_empty(), "{attrs}: {found:?}");
        }
    }
}
