//! Recall and precision of the context firewall, measured on two committed
//! corpora (`agent-kernel/tests/corpus/`):
//!
//! - `secrets.json`: secrets of every shape the firewall must remove —
//!   texts (each checked as a string, a value, an object key, nested, and in
//!   summary, table and raw frames), JSON numbers, and values under sensitive
//!   field names. A secret counts as removed when no fragment of it survives
//!   anywhere in the output (no run of 4 of its digits for a mostly-digit
//!   secret, no 8 consecutive characters of another) and the warnings name
//!   its kind.
//! - `precision.json`: values that must come back untouched (UUIDs, dates
//!   and times, invoice and order ids, versions, IP addresses, amounts,
//!   timestamps, digests, prose, non-sensitive field names).
//!
//! Prints the counts (recall on the secrets, false positives on the
//! precision corpus):
//! `cargo test -p agent-kernel --test redaction_corpus -- --nocapture`.
//! Only the public API that the firewall has had from the start is used, so
//! the same file measures older versions too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use agent_kernel::firewall::Redactor;
use agent_kernel::{Budgets, Firewall, FirewallRequest, ResponseMode};
use serde_json::{Value, json};

fn corpus(name: &str) -> Value {
    // The run-time variable first: a binary reused from another checkout's
    // build would look in that checkout.
    let dir = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned());
    let path = PathBuf::from(dir).join("tests/corpus").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "the corpus must be in the repository: {}: {e}",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ── What leaves the firewall ────────────────────────────────────────────────

/// Everything one shape hands out: strings and keys of the output, facts,
/// warnings.
struct Output {
    text: Vec<String>,
    warnings: Vec<String>,
}

fn collect(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Array(items) => items.iter().for_each(|i| collect(i, out)),
        Value::Object(map) => {
            for (k, v) in map {
                out.push(k.clone());
                collect(v, out);
            }
        }
        Value::Bool(_) | Value::Null => {}
    }
}

fn leaves(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Array(items) => items.iter().for_each(|i| leaves(i, out)),
        Value::Object(map) => map.values().for_each(|v| leaves(v, out)),
        Value::Bool(_) | Value::Null => {}
    }
}

fn redacted(value: &Value) -> Output {
    let (out, warnings, _) = Redactor::new().redact_value(value, None);
    let mut text = Vec::new();
    collect(&out, &mut text);
    Output { text, warnings }
}

fn frame(value: &Value, mode: ResponseMode) -> Output {
    let budgets = Budgets::default();
    let out = Firewall::new(budgets).apply(&FirewallRequest {
        data: value,
        requested_mode: mode,
        allowed_fields: None,
        max_rows: None,
        is_admin: true,
        budgets: &budgets,
    });
    let mut text = out.facts.clone();
    for row in &out.table_preview {
        collect(&Value::Object(row.clone()), &mut text);
    }
    if let Some(raw) = &out.raw_data {
        collect(raw, &mut text);
    }
    Output {
        text,
        warnings: out.warnings,
    }
}

/// The shapes a value is checked in: (name, output).
fn shapes(value: &Value) -> Vec<(&'static str, Output)> {
    let rows = json!([{"id": 1, "v": value}, {"id": 2, "v": "other"}, {"id": 3, "v": value}]);
    vec![
        ("value", redacted(&json!({ "v": value }))),
        ("nested", redacted(&json!({"a": [{"b": value}]}))),
        ("summary_rows", frame(&rows, ResponseMode::Summary)),
        (
            "summary_object",
            frame(&json!({ "v": value }), ResponseMode::Summary),
        ),
        (
            "summary_list",
            frame(&json!([value]), ResponseMode::Summary),
        ),
        ("table", frame(&rows, ResponseMode::Table)),
        ("raw", frame(&json!({ "v": value }), ResponseMode::Raw)),
    ]
}

// ── Fragments ───────────────────────────────────────────────────────────────

/// Fragments of `secret` that must not appear: for a mostly-digit secret,
/// every run of 4 consecutive digits (all of them when shorter); else every
/// 8 consecutive characters (all of it when shorter).
fn fragments(secret: &str) -> Vec<String> {
    let digits: Vec<char> = secret.chars().filter(char::is_ascii_digit).collect();
    let chars: Vec<char> = secret.chars().collect();
    let (source, width) = if digits.len() * 5 >= chars.len() * 3 {
        (digits, 4)
    } else {
        (chars, 8)
    };
    if source.len() <= width {
        return vec![source.iter().collect()];
    }
    source
        .windows(width)
        .map(|w| w.iter().collect::<String>())
        .collect()
}

/// The fragments of `secrets` found in `output` (digit fragments are looked
/// for in the digits of each output string, separators removed).
fn leaks(secrets: &[String], output: &Output) -> Vec<String> {
    let mut found = Vec::new();
    let haystacks: Vec<&String> = output.text.iter().chain(&output.warnings).collect();
    for secret in secrets {
        for fragment in fragments(secret) {
            let digit_fragment = fragment.chars().all(|c| c.is_ascii_digit());
            let hit = haystacks.iter().any(|h| {
                if digit_fragment {
                    // Runs of digits in the output, as written.
                    h.split(|c: char| !c.is_ascii_digit())
                        .any(|run| run.len() >= fragment.len() && run.contains(&fragment))
                } else {
                    h.contains(&fragment)
                }
            });
            if hit {
                found.push(fragment);
                break;
            }
        }
    }
    found
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

// ── The measurement ─────────────────────────────────────────────────────────

#[derive(Default)]
struct Tally {
    items: usize,
    passed: usize,
    checks: usize,
    checks_passed: usize,
    failures: Vec<String>,
}

impl Tally {
    fn item(&mut self, label: &str, results: Vec<(String, bool)>) {
        self.items += 1;
        self.checks += results.len();
        let failed: Vec<&String> = results
            .iter()
            .filter(|(_, ok)| !ok)
            .map(|(m, _)| m)
            .collect();
        self.checks_passed += results.len() - failed.len();
        if failed.is_empty() {
            self.passed += 1;
        } else {
            self.failures.push(format!(
                "{label}: {}",
                failed
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
    }
}

fn percent(n: usize, d: usize) -> f64 {
    if d == 0 {
        100.0
    } else {
        #[allow(clippy::cast_precision_loss)]
        let r = n as f64 * 100.0 / d as f64;
        r
    }
}

/// Recall on the secret corpus, by kind.
fn measure_secrets() -> BTreeMap<String, Tally> {
    let corpus = corpus("secrets.json");
    let mut by_kind: BTreeMap<String, Tally> = BTreeMap::new();
    let redactor = Redactor::new();
    for item in corpus["text"].as_array().expect("text") {
        let text = item["text"].as_str().expect("text");
        let kind = item["kind"].as_str();
        let secrets = strings(&item["secrets"]);
        let keep = strings(&item["keep"]);
        let mut results = Vec::new();
        let (out, _) = redactor.redact_str_with_kinds(text);
        let string = Output {
            text: vec![out.to_string()],
            warnings: Vec::new(),
        };
        let mut all = vec![("string", string), ("key", redacted(&json!({ text: 1 })))];
        all.extend(shapes(&json!(text)));
        for (shape, output) in &all {
            let leaked = leaks(&secrets, output);
            results.push((format!("{shape} leaks {leaked:?}"), leaked.is_empty()));
        }
        for k in &keep {
            results.push((format!("lost {k:?}: {out:?}"), out.contains(k.as_str())));
        }
        if let Some(kind) = kind {
            // Each kind under its own name in the warnings.
            let (_, warnings, _) = redactor.redact_value(&json!({ "note": text }), None);
            let named = warnings
                .iter()
                .any(|w| w.contains(&format!("({kind}")) || w.contains(&format!(", {kind}")));
            results.push((format!("kind {kind} not in {warnings:?}"), named));
        }
        by_kind
            .entry(kind.unwrap_or("any").to_owned())
            .or_default()
            .item(&format!("{text:?}"), results);
    }
    for item in corpus["numbers"].as_array().expect("numbers") {
        let value = &item["value"];
        let secret = value.to_string();
        let secret = secret.strip_suffix(".0").unwrap_or(&secret).to_owned();
        let mut results = Vec::new();
        for (shape, output) in shapes(value) {
            let leaked = leaks(std::slice::from_ref(&secret), &output);
            results.push((format!("{shape} leaks {leaked:?}"), leaked.is_empty()));
        }
        by_kind
            .entry("number".to_owned())
            .or_default()
            .item(&format!("number {value}"), results);
    }
    for item in corpus["fields"].as_array().expect("fields") {
        let field = item["field"].as_str().expect("field");
        let value = &item["value"];
        // Every leaf of the value is a secret (the keys of an object value are not).
        let mut secrets = Vec::new();
        leaves(value, &mut secrets);
        let mut results = Vec::new();
        let rows = json!([{"id": 1, field: value}, {"id": 2, field: value}]);
        for (shape, output) in [
            ("object", redacted(&json!({ field: value }))),
            ("nested", redacted(&json!({"user": { field: value }}))),
            ("summary_rows", frame(&rows, ResponseMode::Summary)),
            (
                "summary_object",
                frame(&json!({ field: value }), ResponseMode::Summary),
            ),
            ("table", frame(&rows, ResponseMode::Table)),
        ] {
            let mut output = output;
            // The field name itself is not a secret.
            output.text.retain(|s| s != field);
            let leaked = leaks(&secrets, &output);
            results.push((format!("{shape} leaks {leaked:?}"), leaked.is_empty()));
        }
        by_kind
            .entry("field".to_owned())
            .or_default()
            .item(&format!("field {field}"), results);
    }
    by_kind
}

/// False positives on the precision corpus, by group.
fn measure_precision() -> BTreeMap<String, Tally> {
    let corpus = corpus("precision.json");
    let redactor = Redactor::new();
    let mut by_group: BTreeMap<String, Tally> = BTreeMap::new();
    let groups = corpus["text"].as_object().expect("text");
    for (group, texts) in groups {
        for text in strings(texts) {
            let value = json!({ "note": text });
            let key = json!({ text.as_str(): 1 });
            let results = vec![
                (
                    format!("string -> {:?}", redactor.redact_str(&text)),
                    redactor.redact_str(&text) == text.as_str(),
                ),
                (
                    "value changed".to_owned(),
                    redactor.redact_value(&value, None).0 == value,
                ),
                (
                    "key changed".to_owned(),
                    redactor.redact_value(&key, None).0 == key,
                ),
            ];
            by_group
                .entry(group.clone())
                .or_default()
                .item(&format!("{text:?}"), results);
        }
    }
    for number in corpus["numbers"].as_array().expect("numbers") {
        let value = json!({ "n": number });
        let rows = json!([{"n": number}, {"n": 1}]);
        let summary = frame(&rows, ResponseMode::Summary);
        let results = vec![
            (
                "value changed".to_owned(),
                redactor.redact_value(&value, None).0 == value,
            ),
            (
                format!("no statistics: {:?}", summary.text),
                summary.text.iter().any(|f| f.starts_with("n: min=")),
            ),
        ];
        by_group
            .entry("number".to_owned())
            .or_default()
            .item(&format!("number {number}"), results);
    }
    for item in corpus["fields"].as_array().expect("fields") {
        let field = item["field"].as_str().expect("field");
        let value = json!({ field: item["value"] });
        let results = vec![(
            "value changed".to_owned(),
            redactor.redact_value(&value, None).0 == value,
        )];
        by_group
            .entry("field".to_owned())
            .or_default()
            .item(&format!("field {field}"), results);
    }
    by_group
}

fn report(title: &str, tallies: &BTreeMap<String, Tally>, good: &str) -> (usize, usize) {
    let items: usize = tallies.values().map(|t| t.items).sum();
    let passed: usize = tallies.values().map(|t| t.passed).sum();
    let checks: usize = tallies.values().map(|t| t.checks).sum();
    let checks_passed: usize = tallies.values().map(|t| t.checks_passed).sum();
    println!(
        "{title}: {passed}/{items} items {good} ({:.1}%), {checks_passed}/{checks} checks",
        percent(passed, items)
    );
    for (name, t) in tallies {
        println!("  {name:<20} {:>3}/{:<3}", t.passed, t.items);
    }
    (passed, items)
}

#[test]
fn recall_and_precision_on_the_corpora() {
    let secrets = measure_secrets();
    let precision = measure_precision();
    let (removed, total) = report("secrets", &secrets, "removed whole");
    let (kept, values) = report("precision", &precision, "untouched");
    println!(
        "recall {removed}/{total} ({:.1}%), false positives {}/{values}",
        percent(removed, total),
        values - kept
    );
    let failures: Vec<&String> = secrets
        .values()
        .chain(precision.values())
        .flat_map(|t| &t.failures)
        .collect();
    for f in &failures {
        println!("FAILED {f}");
    }
    assert!(failures.is_empty(), "{} item(s) failed", failures.len());
}
