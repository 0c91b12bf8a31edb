//! Adversarial shapes (issue 16): outputs whose shape made a stage
//! super-linear. Speed is measured by the `adversarial` benchmark group;
//! these tests check the results on the shapes and count the work done
//! where it can be counted, never the time.

use std::borrow::Cow;

use serde_json::{Map, Value, json};

use super::redaction::{Entry, KeyNames, RedactedValue};
use super::*;
use crate::types::ResponseMode;

fn run(data: &Value, mode: ResponseMode) -> FirewallOutput {
    let budgets = Budgets::default();
    Firewall::new(budgets).apply(&FirewallRequest {
        data,
        requested_mode: mode,
        allowed_fields: None,
        max_rows: None,
        is_admin: false,
        budgets: &budgets,
    })
}

/// The renaming before issue 16 (a rescan of every earlier key per
/// candidate), kept as the reference the linear one must agree with.
fn rename_reference(out: &[String], key: &str, scrubbed: bool) -> String {
    if !scrubbed || !out.iter().any(|k| k == key) {
        return key.to_owned();
    }
    (2..)
        .map(|n| format!("{key}#{n}"))
        .find(|candidate| !out.iter().any(|k| k == candidate))
        .unwrap_or_default()
}

fn marker<'a>() -> RedactedValue<'a> {
    RedactedValue::String(Cow::Borrowed(REDACTED))
}

#[test]
fn colliding_scrubbed_keys_are_renamed_with_linear_work() {
    for n in [1_000usize, 4_000] {
        let mut names = KeyNames::default();
        let mut out: Vec<Entry<'_>> = Vec::new();
        for _ in 0..n {
            names.push(&mut out, Cow::Owned(REDACTED.to_owned()), marker());
        }
        let keys: Vec<&str> = out.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(keys.first(), Some(&REDACTED));
        assert_eq!(keys.get(1).copied(), Some("[REDACTED]#2"));
        let last = format!("{REDACTED}#{n}");
        assert_eq!(keys.last().copied(), Some(last.as_str()));
        // One test per key, one more per renamed key: 2n - 1, not n²/2.
        assert_eq!(names.probes(), 2 * n - 1, "n={n}");
    }
}

#[test]
fn renaming_skips_names_already_taken_and_agrees_with_the_reference() {
    // Original keys that look like renamed ones, scrubbed keys of two bases,
    // interleaved: the linear renaming gives the reference's names.
    let pushes: Vec<(String, bool)> = (0..300)
        .map(|i| match i % 5 {
            0 => (format!("{REDACTED}#{}", i / 5 + 2), false),
            1 | 2 => (REDACTED.to_owned(), true),
            3 => (format!("a{REDACTED}"), true),
            _ => (format!("plain{i}"), false),
        })
        .collect();
    let mut names = KeyNames::default();
    let mut out: Vec<Entry<'_>> = Vec::new();
    let mut reference: Vec<String> = Vec::new();
    for (key, scrubbed) in &pushes {
        let want = rename_reference(&reference, key, *scrubbed);
        reference.push(want);
        let key = if *scrubbed {
            Cow::Owned(key.clone())
        } else {
            Cow::Borrowed(key.as_str())
        };
        names.push(&mut out, key, marker());
    }
    let got: Vec<String> = out.iter().map(|(k, _)| k.to_string()).collect();
    assert_eq!(got, reference);
    assert!(names.probes() <= 3 * pushes.len(), "{}", names.probes());
}

/// One object whose every key is an e-mail address (the first shape).
fn email_keys(n: usize) -> Value {
    let map: Map<String, Value> = (0..n)
        .map(|i| (format!("user{i}@example.com"), json!(i)))
        .collect();
    Value::Object(map)
}

#[test]
fn an_object_of_email_keys_keeps_every_key_under_a_distinct_name() {
    let data = email_keys(4_000);
    let budgets = Budgets::default();
    let redaction = Redactor::new().redact(&data, None);
    let RedactedValue::Object(entries) = &redaction.value else {
        panic!("an object stays an object");
    };
    assert_eq!(entries.len(), 4_000);
    let distinct: std::collections::HashSet<&str> =
        entries.iter().map(|(k, _)| k.as_ref()).collect();
    assert_eq!(distinct.len(), 4_000, "no two keys share a name");
    assert!(distinct.iter().all(|k| k.starts_with(REDACTED)));
    assert_eq!(redaction.counts.scrubbed_keys, 4_000);

    let table = run(&data, ResponseMode::Table);
    let row = table.table_preview.first().cloned().unwrap_or_default();
    assert_eq!(row.len(), budgets.max_fields);
    assert!(row.keys().all(|k| k.starts_with(REDACTED)));
    assert!(
        !serde_json::to_string(&table.table_preview)
            .unwrap_or_default()
            .contains("@example.com")
    );

    let summary = run(&data, ResponseMode::Summary);
    let keys = summary.facts.first().cloned().unwrap_or_default();
    assert!(keys.starts_with("Keys: [REDACTED]"), "{keys}");
    assert!(!summary.facts.concat().contains("@example.com"));
}

#[test]
fn rows_of_many_distinct_keys_summarise_their_first_keys() {
    let rows: Vec<Value> = (0..10)
        .map(|r| {
            let map: Map<String, Value> = (0..3_000)
                .map(|i| (format!("k{r}_{i:05}"), json!(i)))
                .collect();
            Value::Object(map)
        })
        .collect();
    let summary = run(&Value::Array(rows), ResponseMode::Summary);
    assert_eq!(
        summary.facts.first().map(String::as_str),
        Some("Total rows: 10")
    );
    // Every key appears once: the first ten seen (row 0, in key order) lead.
    let top: Vec<String> = (0..10).map(|i| format!("k0_{i:05}")).collect();
    assert_eq!(
        summary.facts.get(1).cloned(),
        Some(format!("Top keys: {}", top.join(", ")))
    );
}

fn digit_uuids(n: u64) -> String {
    let uuids: Vec<String> = (0..n)
        .map(|i| {
            let d = format!("{:032}", i * 7_919);
            format!(
                "{}-{}-{}-{}-{}",
                &d[0..8],
                &d[8..12],
                &d[12..16],
                &d[16..20],
                &d[20..32]
            )
        })
        .collect();
    uuids.join(" ")
}

#[test]
fn digit_candidates_inside_identifiers_cost_one_search_per_identifier() {
    for n in [500u64, 2_000] {
        let text = digit_uuids(n);
        super::digits::REJECTED.with(|c| c.set(0));
        assert_eq!(Redactor::new().redact_str(&text), text.as_str());
        let rejected = super::digits::REJECTED.with(std::cell::Cell::get);
        // At most one rejected candidate per UUID and digit pass (three):
        // the search resumes after the identifier, not one character on.
        assert!(rejected <= 3 * n as usize, "n={n}: {rejected} rejections");
    }
}

#[test]
fn a_long_string_of_digit_only_uuids_is_left_alone() {
    let text = digit_uuids(2_000);
    let table = run(&json!(text), ResponseMode::Table);
    let shown = table
        .table_preview
        .first()
        .and_then(|row| row.get("value"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    assert_eq!(shown, text, "identifiers are not numbers");
}

#[test]
fn weight_counts_what_the_firewall_walks_and_stops_at_the_limit() {
    assert!(!weighs_more_than(&json!("abc"), 3, 3));
    assert!(weighs_more_than(&json!("abcd"), 3, 3));
    // Entries and key bytes count; below max_depth only.
    let nested = json!({"a": {"b": {"c": {"d": "x".repeat(1_000)}}}});
    assert!(!weighs_more_than(&nested, 3, 100));
    assert!(weighs_more_than(&nested, 4, 100));
    // A deep chain far beyond the depth limit costs nothing beyond it.
    let mut deep = json!(0);
    for _ in 0..1_000 {
        deep = json!([deep]);
    }
    assert!(!weighs_more_than(&deep, 64, 100));
    assert!(weighs_more_than(&deep, 64, 63));
}
