//! The windowed redaction (issue 19) against the implementation it
//! replaced, kept verbatim as an oracle in `tests/support/redaction_oracle/`:
//! on every input, the new output redacts a superset of the bytes the old
//! one redacts, and redacting the new output again changes nothing.
//!
//! Inputs: the secret and precision corpora (`tests/corpus/`), every stored
//! fuzz input (`fuzz/corpus/*`, `fuzz/regressions/*`, and the strings inside
//! the JSON ones), the three benchmark corpora (`benches/corpora/`), long
//! texts glued from all of these (windows only start above 256 bytes), and
//! a proptest over fragments chosen to sit across window edges.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/redaction_oracle/mod.rs"]
mod oracle;

use std::path::{Path, PathBuf};

use agent_kernel::firewall::REDACTED;
use agent_kernel::firewall::Redactor;
use proptest::prelude::*;
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Which bytes of `input` survive in `output` (`output` is `input` with
/// some non-empty ranges replaced by [`REDACTED`]), or `None` when it is not
/// of that form. The pieces between markers are aligned leftmost, the last
/// one at the end.
fn kept(input: &str, output: &str) -> Option<Vec<bool>> {
    let pieces: Vec<&str> = output.split(REDACTED).collect();
    let mut keep = vec![false; input.len()];
    let first = pieces.first()?;
    if !input.starts_with(first) {
        return None;
    }
    keep[..first.len()].fill(true);
    let mut at = first.len();
    let last = pieces.len() - 1;
    for (i, piece) in pieces.iter().enumerate().skip(1) {
        let start = if i == last {
            let start = input.len().checked_sub(piece.len())?;
            (start > at && input.ends_with(piece)).then_some(start)?
        } else {
            at + 1 + input.get(at + 1..)?.find(piece)?
        };
        keep[start..start + piece.len()].fill(true);
        at = start + piece.len();
    }
    (pieces.len() > 1 || at == input.len()).then_some(keep)
}

/// Asserts the two promises on `input`; returns whether the outputs are
/// identical.
fn check(input: &str) -> bool {
    let redactor = Redactor::new();
    let new = redactor.redact_str(input);
    let old = oracle::redact_str(input);
    let again = redactor.redact_str(&new);
    assert_eq!(again, new, "not idempotent on {input:?}");
    if new == old {
        return true;
    }
    let new_kept = kept(input, &new)
        .unwrap_or_else(|| panic!("new output not aligned: {input:?}\nnew: {new:?}\nold: {old:?}"));
    let old_kept = kept(input, &old)
        .unwrap_or_else(|| panic!("old output not aligned: {input:?}\nnew: {new:?}\nold: {old:?}"));
    for (i, (n, o)) in new_kept.iter().zip(&old_kept).enumerate() {
        assert!(
            !*n || *o,
            "byte {i} kept by the new redaction but removed by the old one in {input:?}\nnew: {new:?}\nold: {old:?}"
        );
    }
    false
}

fn strings_in(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings_in(v, out)),
        Value::Object(map) => {
            for (k, v) in map {
                out.push(k.clone());
                strings_in(v, out);
            }
        }
        _ => {}
    }
}

fn corpus_texts() -> Vec<String> {
    let mut texts = Vec::new();
    for name in ["secrets.json", "precision.json"] {
        let path = repo().join("agent-kernel/tests/corpus").join(name);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let value: Value = serde_json::from_str(&text).unwrap();
        strings_in(&value, &mut texts);
    }
    texts
}

fn fuzz_texts() -> Vec<String> {
    let mut texts = Vec::new();
    for kind in ["corpus", "regressions"] {
        let dir = repo().join("fuzz").join(kind);
        let targets = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
        for target in targets {
            let target = target.unwrap().path();
            for file in std::fs::read_dir(&target).unwrap() {
                let path = file.unwrap().path();
                if path.file_name().is_some_and(|n| n == ".gitkeep") {
                    continue;
                }
                let bytes = std::fs::read(&path).unwrap();
                // The redaction target reads a configuration byte first.
                for body in [&bytes[..], bytes.get(1..).unwrap_or_default()] {
                    let text = String::from_utf8_lossy(body).into_owned();
                    if let Ok(value) = serde_json::from_slice::<Value>(body) {
                        strings_in(&value, &mut texts);
                    }
                    texts.push(text);
                }
            }
        }
    }
    assert!(texts.len() > 200, "fuzz inputs missing: {}", texts.len());
    texts
}

fn bench_corpora() -> Vec<String> {
    ["prose", "logs", "fullwidth"]
        .iter()
        .map(|name| {
            let path = repo().join(format!("agent-kernel/benches/corpora/{name}.txt"));
            std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        })
        .collect()
}

/// Every text of `texts` glued to the next with each separator in turn,
/// cut into pieces of about 4 KiB (long enough to be windowed).
fn glued(texts: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for sep in [
        " ",
        "\n",
        "  ",
        " filler words here ",
        "\t",
        ", ",
        " x y z ",
    ] {
        let mut buf = String::new();
        for text in texts {
            buf.push_str(text);
            buf.push_str(sep);
            if buf.len() > 4096 {
                out.push(std::mem::take(&mut buf));
            }
        }
        out.push(buf);
    }
    out
}

#[test]
fn corpora_redact_at_least_what_the_old_implementation_did() {
    let texts = corpus_texts();
    let mut same = 0;
    for text in texts.iter().chain(&glued(&texts)) {
        same += usize::from(check(text));
    }
    println!(
        "corpora: {same} of {} outputs identical",
        texts.len() + glued(&texts).len()
    );
}

#[test]
fn fuzz_inputs_redact_at_least_what_the_old_implementation_did() {
    let texts = fuzz_texts();
    let glued = glued(&texts);
    let mut same = 0;
    for text in texts.iter().chain(&glued) {
        same += usize::from(check(text));
    }
    println!(
        "fuzz inputs: {same} of {} outputs identical",
        texts.len() + glued.len()
    );
}

#[test]
fn bench_corpora_redact_at_least_what_the_old_implementation_did() {
    for text in bench_corpora() {
        check(&text);
        // The same text windowed from every kind of edge.
        for cut in [1, 2, 3, 5, 8, 13, 100, 257, 1000] {
            let start = text.char_indices().nth(cut).map_or(0, |(i, _)| i);
            check(&text[start..]);
        }
    }
}

#[test]
fn the_alignment_sees_removed_bytes() {
    assert_eq!(
        kept("a 4111 b", &format!("a {REDACTED} b")),
        Some(vec![true, true, false, false, false, false, true, true])
    );
    assert_eq!(kept("abc", "abc"), Some(vec![true; 3]));
    assert_eq!(kept("abc", "abd"), None);
}

/// Fragments that stress window edges: secrets of every kind, the shapes
/// that reach across gaps (grouped numbers, quoted values, `Bearer`,
/// `Authorization: Basic`, quoted local parts, private-key blocks),
/// full-width digits, and plain words.
const FRAGMENTS: &[&str] = &[
    "the",
    "report",
    "and",
    "customer",
    "data",
    "é",
    "日本",
    "。",
    " ",
    "  ",
    "\n",
    "\t",
    "\r\n",
    "\"",
    "'",
    "=",
    ":",
    ": ",
    " = ",
    "=>",
    ":=",
    "\\",
    ",",
    ".",
    "-",
    "_",
    "/",
    "@",
    "+",
    "(",
    ")",
    "4111",
    "1111",
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "5500 0000 0000 0004",
    "123-45-6789",
    "123 45 6789",
    "+1 555 123 4567",
    "(020) 7946 0958",
    "+33 1 23 45 67 89",
    "555",
    "0123",
    "12",
    "１２３",
    "０９０－１２３４－５６７８",
    "４１１１ １１１１ １１１１ １１１１",
    "bob@example.com",
    "\"john doe\"@example.com",
    "\"a b c d e f g h i\"@example.com",
    "\"a\\\" b c d e f\"@example.com",
    "\"a b\" \"c d e f g\"@x.org",
    "alice@localhost",
    "josé@bücher.de",
    "postgres://admin:s3cret@db.example.com:5432/app",
    "redis://:hunter2@cache:6379",
    "password",
    "password=hunter2",
    "api_key: \"sk_live_abcdefghijklmnop\"",
    "secret = \"a b c\"",
    "token: abc def",
    "Authorization: Basic dXNlcjpwYXNz",
    "Authorization",
    "Basic",
    "Bearer",
    "Bearer abcdefghijklmnop.qrs",
    "bearer",
    "access_key",
    "api key",
    "ABCD1234EFGH5678",
    "AKIAIOSFODNN7EXAMPLE",
    "AIzaSyA1234567890abcdefghijklmnopqrstu",
    "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    "xoxb-1234567890-abcdefghij",
    "sk-ant-api03-abcdefghijklmnopqrstuvwx",
    "sk-proj-abcdefghij1234567890klmn",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc_def-ghi",
    "-----BEGIN RSA PRIVATE KEY-----",
    "MIIEowIBAAKCAQEA",
    "-----END RSA PRIVATE KEY-----",
    "123e4567-e89b-12d3-a456-426614174000",
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "2024-01-15T10:30:00Z",
    "v1.2.3",
    "10.0.0.5",
    "$1,234.56",
    "INV-2024-000123",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn glued_fragments_redact_at_least_what_the_old_implementation_did(
        picks in prop::collection::vec(
            (0..FRAGMENTS.len(), prop::sample::select(vec!["", " ", "  ", "\n", "x", "\""])),
            40..400,
        )
    ) {
        let mut text = String::new();
        for (i, glue) in picks {
            text.push_str(FRAGMENTS[i]);
            text.push_str(glue);
        }
        check(&text);
    }
}
