//! The string redaction of agent-kernel before issue 19 (commit 8e64130),
//! kept verbatim as a test oracle and a benchmark baseline: eight passes
//! (one regular expression each, several for the digit kinds), repeated to a
//! fixed point. Not part of the library. The new implementation must redact
//! a superset of the bytes this one redacts (`tests/redaction_oracle.rs`).
//!
//! Included with `#[path]` by the oracle test and the `redaction` bench.
#![allow(dead_code, unreachable_pub, clippy::all, clippy::pedantic)]

mod digits;
mod names;
mod patterns;
mod prescan;

use std::borrow::Cow;

/// Today's `Redactor::redact_str`: the text without its sensitive
/// fragments (borrowed when nothing was found).
pub fn redact_str(text: &str) -> Cow<'_, str> {
    patterns::PATTERNS.scrub(text).0
}

/// The names of the kinds found (`PatternKind::as_str`), in pass order.
pub fn redact_str_with_kinds(text: &str) -> (Cow<'_, str>, Vec<&'static str>) {
    let (out, kinds) = patterns::PATTERNS.scrub(text);
    (
        out,
        kinds.iter().map(patterns::PatternKind::as_str).collect(),
    )
}
