//! A cap on the size of a driver's result (`max_result_bytes`).
//!
//! A tool can return far more text than an agent should read or the
//! firewall should walk (a web page, a log file). [`CappedDriver`] wraps any
//! driver and cuts a result whose text is larger than its cap:
//!
//! - the *size* of a result is the bytes of its text: every string (object
//!   keys included) as UTF-8, every number as its JSON text, 4 or 5 bytes
//!   for `null`, `true` and `false`, 2 for each array or object;
//! - a result within the cap is passed on untouched (not copied);
//! - a larger one keeps its leading values, in document order, while they
//!   fit; the string that crosses the cap is cut in three steps: to the cap
//!   plus a margin ([`CUT_MARGIN`], on a character boundary), then redacted
//!   ([`Redactor::redact_str`]), then cut to what is left of the cap (on a
//!   character boundary, and before a [`REDACTED`] marker rather than
//!   through it). A secret that straddles the cap is therefore seen whole
//!   by the redactor and leaves no fragment before the cut; only a secret
//!   longer than the margin that also straddles the margin's end could (a
//!   private-key block cannot: its pattern runs to the end of the text).
//!   Values after the cap are dropped; arrays and objects keep their shape;
//! - the result's metadata records the cut under [`RESULT_CUT_KEY`], and
//!   the kernel adds [`cut_warning`]'s warning to the frame (numbers only).

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use super::{Driver, DriverError, ExecutionContext};
use crate::firewall::{REDACTED, Redactor};
use crate::types::RawResult;

/// Bytes beyond the cap that the redactor sees before the final cut: longer
/// than the secrets the patterns find (a JWT of a few claims, a card number
/// with its separators), so one straddling the cap is redacted whole.
pub const CUT_MARGIN: usize = 4096;

/// The metadata key under which a cut result records
/// `{"max_result_bytes": …, "original_bytes": …}`.
pub const RESULT_CUT_KEY: &str = "agent_kernel.result_cut";

/// Nesting the size walk follows; deeper values count as their size and are
/// dropped when the result is cut (serde_json stops parsing at 128 levels
/// anyway).
const MAX_WALK_DEPTH: usize = 128;

/// A driver whose results are cut to `max_result_bytes` of text: strings
/// and keys as UTF-8, numbers as their JSON text, 4 or 5 bytes per literal,
/// 2 per array or object. A larger result keeps its leading values in
/// document order; the string that crosses the cap goes through
/// [`cut_text`] (cut with a [`CUT_MARGIN`], redacted, cut to the cap), later
/// values are dropped, and the metadata records the cut under
/// [`RESULT_CUT_KEY`] for the frame's warning ([`cut_warning`]).
///
/// ```
/// use agent_kernel::InMemoryDriver;
/// use agent_kernel::driver::CappedDriver;
/// let mut tool = InMemoryDriver::new("web");
/// tool.register_handler("fetch", |_ctx| Ok::<_, String>(serde_json::json!("<html>…</html>")));
/// let capped = CappedDriver::new(tool, 64 * 1024);
/// assert_eq!(capped.max_result_bytes(), 64 * 1024);
/// ```
#[derive(Debug)]
pub struct CappedDriver<D> {
    inner: D,
    max_result_bytes: usize,
    redactor: Redactor,
}

impl<D: Driver> CappedDriver<D> {
    /// Wraps `inner`; its results are cut to `max_result_bytes` bytes of text.
    pub fn new(inner: D, max_result_bytes: usize) -> Self {
        Self {
            inner,
            max_result_bytes,
            redactor: Redactor::new(),
        }
    }

    /// The cap.
    pub fn max_result_bytes(&self) -> usize {
        self.max_result_bytes
    }

    /// The wrapped driver.
    pub fn inner(&self) -> &D {
        &self.inner
    }
}

#[async_trait]
impl<D: Driver> Driver for CappedDriver<D> {
    fn driver_id(&self) -> &str {
        self.inner.driver_id()
    }

    async fn execute(&self, ctx: &ExecutionContext<'_>) -> Result<RawResult, DriverError> {
        let mut raw = self.inner.execute(ctx).await?;
        let original = text_bytes(&raw.data, self.max_result_bytes);
        if original > self.max_result_bytes {
            let mut left = self.max_result_bytes;
            let cut = cut_value(&raw.data, &mut left, &self.redactor, 0).unwrap_or(Value::Null);
            raw.data = Arc::new(cut);
            raw.metadata.insert(
                RESULT_CUT_KEY.to_owned(),
                json!({ "max_result_bytes": self.max_result_bytes, "original_bytes": original }),
            );
        }
        Ok(raw)
    }

    fn is_remote(&self) -> bool {
        self.inner.is_remote()
    }
}

/// The frame warning for a result that [`CappedDriver`] cut, read from its
/// metadata (`None` when it was not cut). Only the two numbers are used.
pub fn cut_warning(metadata: &Map<String, Value>) -> Option<String> {
    let cut = metadata.get(RESULT_CUT_KEY)?;
    let cap = cut.get("max_result_bytes")?.as_u64()?;
    let original = cut.get("original_bytes")?.as_u64()?;
    let more = if original > cap.saturating_add(CUT_MARGIN as u64) {
        "more than "
    } else {
        ""
    };
    Some(format!(
        "Result cut to max_result_bytes={cap} (the tool returned {more}{original} bytes of text)."
    ))
}

/// The size of `value` (see the module documentation), counted up to just
/// past `limit` (the walk stops there: the exact size of a huge result is
/// not needed, only that it is over).
fn text_bytes(value: &Value, limit: usize) -> usize {
    fn walk(value: &Value, total: &mut usize, limit: usize, depth: usize) {
        if *total > limit {
            return;
        }
        match value {
            Value::Null | Value::Bool(true) => *total += 4,
            Value::Bool(false) => *total += 5,
            Value::Number(n) => *total += number_len(n),
            Value::String(s) => *total += s.len(),
            Value::Array(items) if depth < MAX_WALK_DEPTH => {
                *total += 2;
                for item in items {
                    walk(item, total, limit, depth + 1);
                    if *total > limit {
                        return;
                    }
                }
            }
            Value::Object(map) if depth < MAX_WALK_DEPTH => {
                *total += 2;
                for (key, item) in map {
                    *total += key.len();
                    walk(item, total, limit, depth + 1);
                    if *total > limit {
                        return;
                    }
                }
            }
            // Too deep to walk: over any cap.
            Value::Array(_) | Value::Object(_) => *total = limit.saturating_add(1),
        }
    }
    let mut total = 0;
    walk(value, &mut total, limit.saturating_add(CUT_MARGIN), 0);
    total
}

fn number_len(n: &serde_json::Number) -> usize {
    // Digits of the JSON text without building it, for integers (the
    // common case); floats through their text.
    match (n.as_u64(), n.as_i64()) {
        (Some(u), _) => u.checked_ilog10().map_or(1, |d| d as usize + 1),
        (_, Some(i)) => {
            i.unsigned_abs()
                .checked_ilog10()
                .map_or(1, |d| d as usize + 1)
                + 1
        }
        _ => n.to_string().len(),
    }
}

/// `value` cut to the `left` bytes of text still allowed (decremented);
/// `None` when nothing of it fits.
fn cut_value(value: &Value, left: &mut usize, redactor: &Redactor, depth: usize) -> Option<Value> {
    match value {
        Value::String(s) => {
            if *left == 0 && !s.is_empty() {
                return None;
            }
            let text = cut_text(s, *left, redactor);
            *left -= text.len();
            Some(Value::String(text))
        }
        Value::Array(items) if depth < MAX_WALK_DEPTH && *left >= 2 => {
            *left -= 2;
            let mut out = Vec::new();
            for item in items {
                match cut_value(item, left, redactor, depth + 1) {
                    Some(v) => out.push(v),
                    None => break,
                }
            }
            Some(Value::Array(out))
        }
        Value::Object(map) if depth < MAX_WALK_DEPTH && *left >= 2 => {
            *left -= 2;
            let mut out = Map::new();
            for (key, item) in map {
                if key.len() > *left {
                    break;
                }
                *left -= key.len();
                match cut_value(item, left, redactor, depth + 1) {
                    Some(v) => {
                        out.insert(key.clone(), v);
                    }
                    None => {
                        *left += key.len();
                        break;
                    }
                }
            }
            Some(Value::Object(out))
        }
        Value::Array(_) | Value::Object(_) => None,
        scalar => {
            let size = text_bytes(scalar, usize::MAX - CUT_MARGIN);
            if size > *left {
                return None;
            }
            *left -= size;
            Some(scalar.clone())
        }
    }
}

/// `text` cut to at most `cap` bytes without leaving a fragment of a
/// secret that straddles the cut: cut to `cap` + [`CUT_MARGIN`], redacted
/// with `redactor`, then cut to `cap` on a character boundary, before a
/// [`REDACTED`] marker rather than through it.
pub fn cut_text(text: &str, cap: usize, redactor: &Redactor) -> String {
    if text.len() <= cap {
        return text.to_owned();
    }
    let wide = text
        .get(..floor_char_boundary(text, cap.saturating_add(CUT_MARGIN)))
        .unwrap_or_default();
    let redacted = redactor.redact_str(wide);
    let mut end = floor_char_boundary(&redacted, cap);
    // Not through a marker: before it. (Searched as bytes: the bytes
    // before the cut need not start a character; a marker does.)
    let marker = REDACTED.as_bytes();
    let from = end.saturating_sub(marker.len() - 1);
    let to = (end + marker.len() - 1).min(redacted.len());
    if let Some(k) = redacted
        .as_bytes()
        .get(from..to)
        .and_then(|w| w.windows(marker.len()).position(|x| x == marker))
        && from + k < end
    {
        end = from + k;
    }
    redacted.get(..end).unwrap_or_default().to_owned()
}

/// The largest character boundary of `text` at or below `at`.
fn floor_char_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::InMemoryDriver;
    use crate::types::{Args, Constraints};

    /// Every 4-byte piece of `secret` that a cut output could leak (pieces
    /// of the filler or the marker are not evidence).
    fn fragments<'s>(secret: &'s str, filler: &str) -> Vec<&'s str> {
        (0..secret.len().saturating_sub(3))
            .filter_map(|i| secret.get(i..i + 4))
            .filter(|piece| !filler.contains(piece) && !REDACTED.contains(piece))
            .collect()
    }

    /// (text, the part of it that must not leak).
    const SECRETS: [(&str, &str); 9] = [
        ("4111 1111 1111 1111", "4111 1111 1111 1111"),
        ("alice.smith@example.com", "alice.smith@example.com"),
        ("+1-555-123-4567", "+1-555-123-4567"),
        ("123-45-6789", "123-45-6789"),
        (
            "postgres://admin:s3cretpass@db.example.com/app",
            "admin:s3cretpass",
        ),
        ("password=hunter2hunter2", "hunter2hunter2"),
        (
            "Bearer abcdefghijklmnopqrstuvwxyz012345",
            "abcdefghijklmnopqrstuvwxyz012345",
        ),
        (
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        ),
        ("AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    ];

    #[test]
    fn a_secret_across_the_cap_leaves_no_fragment() {
        let redactor = Redactor::new();
        let filler = "lorem ipsum dolor sit amet ";
        for (secret, sensitive) in SECRETS {
            let pieces = fragments(sensitive, filler);
            assert!(!pieces.is_empty(), "{secret}");
            let before = filler.repeat(20);
            for offset in 0..=secret.len() {
                let cap = before.len() + offset;
                let text = format!("{before}{secret} {}", filler.repeat(400));
                let out = cut_text(&text, cap, &redactor);
                assert!(
                    out.len() <= cap,
                    "{secret} at {offset}: {} > {cap}",
                    out.len()
                );
                for piece in &pieces {
                    assert!(
                        !out.contains(piece),
                        "{secret} cut at {offset} leaves {piece:?}: {:?}",
                        &out[before.len().saturating_sub(20)..]
                    );
                }
            }
        }
    }

    #[test]
    fn a_cut_never_splits_a_character_or_a_marker() {
        let redactor = Redactor::new();
        let text = format!(
            "{}ok {}",
            "日本語".repeat(100),
            "bob@example.com ".repeat(50)
        );
        for cap in 0..text.len().min(1200) {
            let out = cut_text(&text, cap, &redactor);
            assert!(out.len() <= cap);
            // Every marker in the output is whole.
            let opened = out.matches('[').count();
            assert_eq!(opened, out.matches(REDACTED).count(), "cap {cap}: {out:?}");
            assert!(!out.contains("bob@"), "cap {cap}");
        }
    }

    #[test]
    fn text_within_the_cap_is_untouched() {
        let redactor = Redactor::new();
        assert_eq!(
            cut_text("bob@example.com", 15, &redactor),
            "bob@example.com"
        );
        assert_eq!(
            text_bytes(&json!({"a": "bc", "n": 123, "t": true}), 100),
            2 + (1 + 2) + (1 + 3) + (1 + 4)
        );
        assert_eq!(text_bytes(&json!(-5), 100), 2);
        assert_eq!(text_bytes(&json!(0), 100), 1);
        assert_eq!(text_bytes(&json!(1.5), 100), 3);
    }

    #[test]
    fn values_after_the_cap_are_dropped_in_document_order() {
        let redactor = Redactor::new();
        let value = json!([{"id": "aaaa"}, {"id": "bbbb"}, {"id": "cccc"}]);
        assert_eq!(text_bytes(&value, 100), 2 + 3 * (2 + 2 + 4));
        let mut left = 20;
        assert_eq!(
            cut_value(&value, &mut left, &redactor, 0),
            Some(json!([{"id": "aaaa"}, {"id": "bbbb"}, {}]))
        );
        let mut left = 16;
        assert_eq!(
            cut_value(&value, &mut left, &redactor, 0),
            Some(json!([{"id": "aaaa"}, {"id": "bb"}]))
        );
    }

    fn run(driver: &CappedDriver<InMemoryDriver>) -> RawResult {
        let args = Args::default();
        let constraints = Constraints::default();
        let ctx = ExecutionContext {
            capability_id: "web.fetch",
            principal_id: "p",
            args: &args,
            constraints: &constraints,
            action_id: "a",
            operation: "fetch",
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        runtime.block_on(driver.execute(&ctx)).expect("execute")
    }

    #[test]
    fn the_driver_cuts_and_records_the_cut() {
        let page = format!("{}card 4111 1111 1111 1111 end", "x ".repeat(100));
        let mut tool = InMemoryDriver::new("web");
        let served = page.clone();
        tool.register_handler("fetch", move |_ctx| Ok::<_, String>(json!(served.clone())));
        let capped = CappedDriver::new(tool, 210);
        let raw = run(&capped);
        let text = raw.data.as_str().expect("a string");
        assert!(text.len() <= 210);
        assert!(!text.contains("4111") && !text.contains("1111"), "{text}");
        assert_eq!(
            cut_warning(&raw.metadata).as_deref(),
            Some(
                format!(
                    "Result cut to max_result_bytes=210 (the tool returned {} bytes of text).",
                    page.len()
                )
                .as_str()
            )
        );
        // Within the cap: untouched, no warning.
        let small = CappedDriver::new(capped.inner, page.len());
        let raw = run(&small);
        assert_eq!(raw.data.as_str(), Some(page.as_str()));
        assert_eq!(cut_warning(&raw.metadata), None);
    }
}
