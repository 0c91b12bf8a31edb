//! Fuzzing support for agent-kernel: the checks every target in
//! `fuzz_targets/` runs, and the replay of stored inputs as tests.
//!
//! - [`kernel_checks`]: `token`, `redaction`, `firewall`, `expand`, `shapes` (also
//!   included by `agent-kernel/tests/fuzz_regressions.rs`).
//! - [`macro_args`]: the `#[kernel_span]` argument parser, validator and code
//!   generator, compiled here from the macro crate's own sources.
//! - [`replay`]: the stored inputs of a target, replayed as a test.

pub mod kernel_checks;
pub mod replay;

// The proc-macro crate cannot be linked as a library, so its modules are
// compiled into this crate from their source files, unchanged. They refer to
// each other as `crate::args`, `crate::suggest`, …, hence they sit at the root.
// `lib.rs` (which uses `proc_macro` and holds `run`) is not included; `run`
// below mirrors it.
#[allow(dead_code, clippy::all)]
#[path = "../../agent-kernel-macros/src/args.rs"]
mod args;
#[allow(dead_code, clippy::all)]
#[path = "../../agent-kernel-macros/src/expand.rs"]
mod expand;
#[allow(dead_code, clippy::all)]
#[path = "../../agent-kernel-macros/src/item.rs"]
mod item;
#[allow(dead_code, clippy::all)]
#[path = "../../agent-kernel-macros/src/model.rs"]
mod model;
#[allow(dead_code, clippy::all)]
#[path = "../../agent-kernel-macros/src/suggest.rs"]
mod suggest;
#[allow(dead_code, clippy::all)]
#[path = "../../agent-kernel-macros/src/validate.rs"]
mod validate;

use std::str::FromStr;

use proc_macro2::{Delimiter, Group, Ident, Literal, Punct, Spacing, Span, TokenStream, TokenTree};

use kernel_checks::Bytes;

/// The attribute, as `agent-kernel-macros/src/lib.rs` `run` does it, also
/// returning whether the arguments and the item were accepted.
fn run(attr: TokenStream, item: TokenStream, generate: bool) -> (bool, TokenStream) {
    let args = syn::parse2::<args::Args>(attr);
    let func = item::parse(item.clone());
    let checked = match (args, func) {
        (Ok(args), Ok(item::Parsed::Func(func))) => validate::validate(args, func).map(Some),
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
        Ok(Some(plan)) if generate => (true, expand::expand(plan)),
        Ok(_) => (true, item),
        Err(e) => {
            let mut out = e.to_compile_error();
            out.extend(item::without_misplaced_attrs(item));
            (false, out)
        }
    }
}

/// Functions the attribute is applied to; their parameter names appear in
/// [`IDENTS`] so that `attrs(...)` can name them.
const ITEMS: &[&str] = &[
    "fn invoke(principal: &Principal, token: &CapabilityToken, response_mode: ResponseMode) -> Result<Frame, KernelError> { let _ = (principal, token); Ok(Frame::new(response_mode)) }",
    "async fn execute(&self, ctx: ExecutionContext, attempt: u32) -> std::io::Result<RawResult> { let _ = attempt; self.run(ctx).await }",
    "fn apply(req: &FirewallRequest<'_>, n: usize) { let _ = (req, n); }",
    "pub fn rows<'a, T: Clone + 'a>(items: &'a [T], (offset, limit): (usize, usize)) -> impl Iterator<Item = T> + 'a { items.iter().skip(offset).take(limit).cloned() }",
    "fn boxed(&self, id: String) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), E>> + Send + '_>> { Box::pin(async move { let _ = id; Ok(()) }) }",
];

/// Identifiers: the grammar's words, parameter names, near misses, keywords.
const IDENTS: &[&str] = &[
    "name",
    "kind",
    "telemetry",
    "result",
    "no_result",
    "attrs",
    "metrics",
    "internal",
    "client",
    "server",
    "producer",
    "consumer",
    "counter",
    "histogram",
    "gauge",
    "unit",
    "description",
    "buckets",
    "labels",
    "when",
    "always",
    "success",
    "error",
    "denied",
    "failure",
    "status",
    "deferred",
    "principal",
    "token",
    "response_mode",
    "ctx",
    "attempt",
    "req",
    "n",
    "items",
    "offset",
    "limit",
    "id",
    "principal_id",
    "capability_id",
    "self",
    "Self",
    "crate",
    "super",
    "nmae",
    "atrs",
    "r#type",
    "r#name",
    "_",
    "x",
    "async",
    "await",
    "fn",
    "let",
    "move",
    "true",
    "clone",
    "len",
    "as_str",
    "telemetry_for",
];

/// Whole fragments, lexed with `TokenStream::from_str`.
const SNIPPETS: &[&str] = &[
    "name = \"agent_kernel.invoke\"",
    "kind = client",
    "attrs(principal_id = principal.principal_id, response_mode)",
    "attrs(\"gen_ai.tool.name\" = token.capability_id, safety_class = deferred)",
    "attrs(x = \"literal\", y = items.len(), z = req.data.as_ref().map(|d| d.len()))",
    "metrics(counter(name = \"agent_kernel.invocations\", labels(status, capability_id), when = failure))",
    "metrics(histogram(name = \"agent_kernel.invocation_duration\", unit = \"ms\", buckets = [0.01, 1, 1e3]))",
    "histogram(name = \"h\", unit = \"s\", description = \"d\")",
    "telemetry = self.telemetry()",
    "result",
    "no_result",
    "labels(\"gen_ai.tool.name\", status)",
    "buckets = [1.0, 0.5]",
    "buckets = []",
    "buckets = [1e400]",
    "when = sucess",
    "principal.",
    "= deferred ,",
    "|x| x + 1",
    "match token { _ => 1 }",
];

const PUNCTS: &[char] = &[
    '=', ',', '.', ':', '?', '-', '&', '#', '!', '+', '*', '/', '<', '>', '|', '\'', ';', '@',
];

const LITERALS: &[&str] = &[
    "1",
    "0",
    "1.5",
    "1e3",
    "1e400",
    "-0.0",
    "1_000",
    "0x10",
    "1u8",
    "2.5f32",
    "'c'",
    "b\"x\"",
    "r\"raw\"",
    "r#\"raw#\"#",
    "c\"c\"",
    "\"\"",
    "\" \"",
    "\"a b\"",
    "\"agent_kernel.x\"",
    "\"ms\"",
    "\"gen_ai.tool.name\"",
    "\"é\\u{301}\"",
    "\"\\n\"",
];

/// A token stream built from bytes: identifiers, punctuation, literals,
/// groups (nested at most `depth` deep) and lexed fragments.
fn tokens(b: &mut Bytes<'_>, depth: u32, budget: &mut u32) -> TokenStream {
    let mut out = TokenStream::new();
    let n = b.u8() % 16;
    for _ in 0..n {
        if *budget == 0 || b.is_empty() {
            break;
        }
        *budget -= 1;
        let tag = b.u8();
        match tag % 12 {
            0..=3 => {
                let word = IDENTS[usize::from(b.u8()) % IDENTS.len()];
                let ident = match word.strip_prefix("r#") {
                    Some(raw) => Ident::new_raw(raw, Span::call_site()),
                    None => Ident::new(word, Span::call_site()),
                };
                out.extend([TokenTree::Ident(ident)]);
            }
            4..=6 => {
                let c = PUNCTS[usize::from(b.u8()) % PUNCTS.len()];
                let spacing = if tag & 0x80 != 0 {
                    Spacing::Joint
                } else {
                    Spacing::Alone
                };
                out.extend([TokenTree::Punct(Punct::new(c, spacing))]);
            }
            7 => {
                let lit = match b.u8() % 4 {
                    0 => Literal::string(&b.text(32)),
                    1 => Literal::i64_unsuffixed(b.u64() as i64),
                    2 => {
                        let f = f64::from_bits(b.u64());
                        Literal::f64_unsuffixed(if f.is_finite() { f } else { 0.25 })
                    }
                    _ => match Literal::from_str(LITERALS[usize::from(b.u8()) % LITERALS.len()]) {
                        Ok(l) => l,
                        Err(_) => continue,
                    },
                };
                out.extend([TokenTree::Literal(lit)]);
            }
            8 | 9 if depth > 0 => {
                let delimiter = match b.u8() % 5 {
                    0 | 1 => Delimiter::Parenthesis,
                    2 => Delimiter::Bracket,
                    3 => Delimiter::Brace,
                    _ => Delimiter::None,
                };
                let inner = tokens(b, depth - 1, budget);
                out.extend([TokenTree::Group(Group::new(delimiter, inner))]);
            }
            _ => {
                if let Ok(ts) =
                    TokenStream::from_str(SNIPPETS[usize::from(b.u8()) % SNIPPETS.len()])
                {
                    out.extend(ts);
                }
            }
        }
    }
    out
}

/// Target `macro_args`. First byte: which function the attribute sits on, and
/// how the argument tokens are made (lexed from the remaining bytes as text,
/// or built token by token from them).
///
/// Checks, besides "never panics": an accepted attribute leaves the item
/// unchanged, token for token, without the `otel` feature; with it, the
/// generated code parses as Rust items; a refused attribute gives the same
/// errors with and without the feature.
pub fn macro_args(data: &[u8]) {
    let mut b = Bytes::new(data);
    let cfg = b.u8();
    let item_src = ITEMS[usize::from(cfg & 7) % ITEMS.len()];
    let attr = if cfg & 0x80 != 0 {
        let mut budget = 256;
        tokens(&mut b, 6, &mut budget)
    } else {
        let text = String::from_utf8_lossy(b.rest());
        match TokenStream::from_str(&text) {
            Ok(ts) => ts,
            Err(_) => return,
        }
    };
    check_macro(attr, item_src);
}

fn check_macro(attr: TokenStream, item_src: &str) {
    let item = TokenStream::from_str(item_src).expect("the fixed items lex");
    let (ok_off, off) = run(attr.clone(), item.clone(), false);
    let (ok_on, on) = run(attr, item.clone(), true);
    assert_eq!(
        ok_off, ok_on,
        "the feature changes whether the attribute is accepted"
    );
    if ok_off {
        assert_eq!(
            off.to_string(),
            item.to_string(),
            "off-feature output differs from the item"
        );
        if let Err(e) = syn::parse2::<syn::File>(on.clone()) {
            panic!("generated code does not parse: {e}\n{on}");
        }
    } else {
        assert_eq!(
            off.to_string(),
            on.to_string(),
            "errors differ with the feature"
        );
    }
}

#[cfg(test)]
mod tests {
    //! Replays the stored inputs of all five targets, built as the fuzz
    //! targets are (this crate's features). The kernel targets are replayed
    //! again against the workspace's features by
    //! `agent-kernel/tests/fuzz_regressions.rs`; `macro_args` only here, as
    //! the macro's modules cannot be linked from the workspace.
    use std::path::Path;

    use crate::replay::replay;

    fn fuzz_dir() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn token_inputs_replay() {
        replay(fuzz_dir(), "token", crate::kernel_checks::token);
    }

    #[test]
    fn redaction_inputs_replay() {
        replay(fuzz_dir(), "redaction", crate::kernel_checks::redaction);
    }

    #[test]
    fn firewall_inputs_replay() {
        replay(fuzz_dir(), "firewall", crate::kernel_checks::firewall);
    }

    #[test]
    fn expand_inputs_replay() {
        replay(fuzz_dir(), "expand", crate::kernel_checks::expand);
    }

    #[test]
    fn shapes_inputs_replay() {
        replay(fuzz_dir(), "shapes", crate::kernel_checks::shapes);
    }

    #[test]
    fn macro_args_inputs_replay() {
        replay(fuzz_dir(), "macro_args", super::macro_args);
    }
}

#[cfg(test)]
mod seeds;
