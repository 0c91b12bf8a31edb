//! How a tool call shows in telemetry beyond the kernel's own names: the
//! OpenTelemetry GenAI conventions (opt-in, the standard way), OpenInference
//! attributes, and the call's content (off by default; after the firewall
//! when on).
//!
//! Settings are read once, when the kernel is built: a builder option wins
//! over the environment.

use std::borrow::Cow;
use std::sync::{Arc, LazyLock};

use agent_kernel_otel::AttrValue;
use serde_json::Value;

use crate::firewall::Redactor;
use crate::registry::Resolved;
use crate::types::{Args, Frame};

/// The environment variable of the semantic-conventions opt-in
/// (a comma-separated list).
pub const SEMCONV_OPT_IN_ENV: &str = "OTEL_SEMCONV_STABILITY_OPT_IN";
/// The item of [`SEMCONV_OPT_IN_ENV`] that switches the GenAI conventions on.
pub const GENAI_OPT_IN: &str = "gen_ai_latest_experimental";
/// The environment variable the OpenTelemetry GenAI instrumentations read to
/// capture content: `true`, `span_only` and `span_and_event` mean on.
pub const CAPTURE_CONTENT_ENV: &str = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT";
/// Default cap on a captured value, in characters.
pub const DEFAULT_CAPTURE_CHARS: usize = 8 * 1024;
/// Appended to a captured value cut at its cap.
pub const TRUNCATION_MARKER: &str = "…[truncated]";

/// Whether the invoke span carries the tool call's arguments and result
/// (`gen_ai.tool.call.arguments` / `.result`, OpenInference `input.value` /
/// `output.value`). Off by default. When on, the arguments are recorded after
/// the firewall's redaction, with free text and long strings withheld
/// (`[WITHHELD: n chars]`; numbers, booleans and tokens of up to
/// [`MAX_CAPTURED_TOKEN`] characters of `A-Z a-z 0-9 _ . : / -` stay), and the
/// result from the [`Frame`] the model receives (after the firewall, never the
/// driver's raw output), its facts, rows and raw data withheld the same way; each is cut at
/// [`max_chars`](Self::max_chars) characters with [`TRUNCATION_MARKER`].
///
/// ```
/// use agent_kernel::otel::ContentCapture;
/// let capture = ContentCapture::on().with_max_chars(2_000);
/// assert!(capture.is_on());
/// assert_eq!(capture.max_chars(), 2_000);
/// assert!(!ContentCapture::off().is_on());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentCapture {
    enabled: bool,
    max_chars: usize,
}

impl Default for ContentCapture {
    fn default() -> Self {
        Self::off()
    }
}

impl ContentCapture {
    /// Content is not recorded (the default).
    pub const fn off() -> Self {
        ContentCapture {
            enabled: false,
            max_chars: DEFAULT_CAPTURE_CHARS,
        }
    }

    /// Content is recorded, redacted, up to [`DEFAULT_CAPTURE_CHARS`] characters per value.
    pub const fn on() -> Self {
        ContentCapture {
            enabled: true,
            max_chars: DEFAULT_CAPTURE_CHARS,
        }
    }

    /// The cap per value, in characters.
    #[must_use]
    pub const fn with_max_chars(mut self, max_chars: usize) -> Self {
        self.max_chars = max_chars;
        self
    }

    /// Whether content is recorded.
    pub const fn is_on(&self) -> bool {
        self.enabled
    }

    /// The cap per value, in characters.
    pub const fn max_chars(&self) -> usize {
        self.max_chars
    }

    /// The setting [`CAPTURE_CONTENT_ENV`]'s value asks for (any other
    /// value, or none, is off).
    pub fn from_env_value(value: Option<&str>) -> Self {
        let on = value.is_some_and(|v| {
            let v = v.trim();
            ["true", "span_only", "span_and_event"]
                .iter()
                .any(|on| v.eq_ignore_ascii_case(on))
        });
        if on { Self::on() } else { Self::off() }
    }
}

/// Whether [`SEMCONV_OPT_IN_ENV`]'s value opts into the GenAI conventions.
pub fn genai_opted_in(value: Option<&str>) -> bool {
    value.is_some_and(|v| v.split(',').any(|item| item.trim() == GENAI_OPT_IN))
}

/// A kernel's tool-call telemetry settings, resolved at build.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ToolCallTelemetry {
    pub(crate) genai: bool,
    pub(crate) capture: ContentCapture,
}

/// Redacts captured arguments as the audit trail does (nesting beyond
/// eight levels withheld).
static ARGUMENT_REDACTOR: LazyLock<Redactor> = LazyLock::new(|| Redactor::new().with_max_depth(8));

#[cfg_attr(not(feature = "otel"), allow(dead_code))]
impl ToolCallTelemetry {
    /// The settings: the builder's where given, else the environment's.
    pub(crate) fn resolve(genai: Option<bool>, capture: Option<ContentCapture>) -> Self {
        ToolCallTelemetry {
            genai: genai.unwrap_or_else(|| {
                genai_opted_in(std::env::var(SEMCONV_OPT_IN_ENV).ok().as_deref())
            }),
            capture: capture.unwrap_or_else(|| {
                ContentCapture::from_env_value(std::env::var(CAPTURE_CONTENT_ENV).ok().as_deref())
            }),
        }
    }

    /// The invoke span's name: `agent_kernel.invoke`, or with the GenAI
    /// opt-in `execute_tool {tool}` (the registered id, `_OTHER` otherwise).
    pub(crate) fn invoke_span_name(&self, target: Resolved<'_>) -> Cow<'static, str> {
        if self.genai {
            Cow::Owned(format!(
                "execute_tool {}",
                target.label().map_or(super::keys::OTHER, |l| &**l)
            ))
        } else {
            Cow::Borrowed(super::keys::SPAN_INVOKE)
        }
    }

    /// The content slots of one call: the arguments captured now (redacted,
    /// cut), the result when the call returns. Empty while capture is off
    /// or telemetry is disabled.
    pub(crate) fn content(&self, args: &Args) -> CapturedContent {
        let on = self.capture.is_on() && agent_kernel_otel::is_enabled();
        let arguments = on.then(|| {
            let (redacted, _, _) =
                ARGUMENT_REDACTOR.redact_value(&Value::Object(args.clone()), None);
            cut(
                withhold_text(redacted).to_string(),
                self.capture.max_chars(),
            )
        });
        CapturedContent {
            max_chars: on.then_some(self.capture.max_chars()),
            arguments,
        }
    }
}

impl ToolCallTelemetry {
    /// Records one tool execution in `gen_ai.execute_tool.duration` (with the
    /// GenAI opt-in only; nothing while telemetry is off): seconds, labelled
    /// by operation, tool name, tool type (when a driver served) and
    /// `error.type` (on failures).
    ///
    /// The instrument is looked up on the binding's meter at each call (the
    /// SDK returns the one it has): a cost paid only under the opt-in, and the
    /// global meter is followed when the application installs it late.
    #[cfg_attr(not(feature = "otel"), allow(unused_variables))]
    pub(crate) fn record_execute_tool(
        &self,
        telemetry: &super::TelemetrySlot,
        tool: &str,
        tool_type: Option<&'static str>,
        error_type: Option<&'static str>,
        elapsed: std::time::Duration,
    ) {
        #[cfg(feature = "otel")]
        if self.genai && agent_kernel_otel::is_enabled() {
            use super::keys;
            use agent_kernel_otel::opentelemetry::KeyValue;
            let histogram = telemetry
                .current()
                .meter()
                .f64_histogram(keys::METRIC_GEN_AI_EXECUTE_TOOL_DURATION)
                .with_unit("s")
                .with_description("Duration of tool executions")
                .with_boundaries(keys::GEN_AI_DURATION_BUCKETS_S.to_vec())
                .build();
            let mut labels = vec![
                KeyValue::new(
                    keys::GEN_AI_OPERATION_NAME,
                    keys::GEN_AI_OPERATION_EXECUTE_TOOL,
                ),
                KeyValue::new(keys::GEN_AI_TOOL_NAME, tool.to_owned()),
            ];
            if let Some(tool_type) = tool_type {
                labels.push(KeyValue::new(keys::GEN_AI_TOOL_TYPE, tool_type));
            }
            if let Some(error_type) = error_type {
                labels.push(KeyValue::new(keys::ERROR_TYPE, error_type));
            }
            histogram.record(elapsed.as_secs_f64(), &labels);
        }
    }
}

/// What one invoke span records of its content (see [`ContentCapture`]).
pub(crate) struct CapturedContent {
    /// The cap when capture is on for this call.
    max_chars: Option<usize>,
    arguments: Option<Arc<str>>,
}

#[cfg_attr(not(feature = "otel"), allow(dead_code))]
impl CapturedContent {
    /// The arguments, as JSON after redaction.
    pub(crate) fn arguments(&self) -> Option<AttrValue<'static>> {
        self.arguments.clone().map(AttrValue::Shared)
    }

    /// `application/json` when content is recorded.
    pub(crate) fn mime_type(&self) -> Option<AttrValue<'static>> {
        self.max_chars
            .map(|_| AttrValue::Static("application/json"))
    }

    /// The frame the model receives, as JSON, when capture is on: its
    /// mode, warnings and handle as they are; the facts, rows and raw data
    /// (tool output, which may hold what no pattern recognises) with free
    /// text and long strings withheld; no provenance (the caller's ids are
    /// the span's, recorded as `KernelBuilder::caller_ids` says).
    pub(crate) fn result(&self, frame: &Frame) -> Option<AttrValue<'static>> {
        let max_chars = self.max_chars?;
        let Ok(Value::Object(mut shown)) = serde_json::to_value(frame) else {
            return None;
        };
        shown.remove("provenance");
        for key in ["facts", "table_preview", "raw_data"] {
            if let Some(value) = shown.get_mut(key) {
                let (redacted, _, _) = ARGUMENT_REDACTOR.redact_value(value, None);
                *value = withhold_text(redacted);
            }
        }
        Some(AttrValue::Shared(cut(
            Value::Object(shown).to_string(),
            max_chars,
        )))
    }
}

/// The longest argument string (or key) a capture shows.
pub const MAX_CAPTURED_TOKEN: usize = 32;

/// Whether a string of the arguments may be shown: a short token (an id, a
/// status, a date, a number) that cannot carry free text or a
/// credential-length secret (nor a card or account number), or the
/// firewall's own marker.
fn is_showable(s: &str) -> bool {
    s.starts_with(crate::firewall::REDACTED)
        || (s.len() <= MAX_CAPTURED_TOKEN
            && s.bytes().filter(u8::is_ascii_digit).count() <= MAX_CAPTURED_DIGITS
            && !looks_like_a_key(s)
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.:/-".contains(&b)))
}

/// A run of 16 or more characters mixing upper case, lower case and digits:
/// the shape of a generated secret (an API key, a password, a signing key),
/// not of an id or a word.
fn looks_like_a_key(s: &str) -> bool {
    s.len() >= 16
        && s.bytes().any(|b| b.is_ascii_uppercase())
        && s.bytes().any(|b| b.is_ascii_lowercase())
        && s.bytes().any(|b| b.is_ascii_digit())
}

/// The most digits a shown string may hold: enough for dates and invoice
/// numbers, too few for a card, an account or a phone number.
const MAX_CAPTURED_DIGITS: usize = 8;

/// Captured arguments, after the firewall's redaction: free text and long
/// strings (which redaction cannot judge: a customer's note, a password in
/// a key, a signing secret) are withheld, keys included; numbers, booleans
/// and short tokens stay. The walk is bounded by the redactor's depth limit.
fn withhold_text(value: Value) -> Value {
    match value {
        Value::String(s) if !is_showable(&s) => {
            Value::String(format!("[WITHHELD: {} chars]", s.chars().count()))
        }
        Value::Array(items) => Value::Array(items.into_iter().map(withhold_text).collect()),
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            let mut withheld = 0usize;
            for (key, value) in map {
                let key = if is_showable(&key) {
                    key
                } else {
                    withheld += 1;
                    format!("[WITHHELD]#{withheld}")
                };
                out.insert(key, withhold_text(value));
            }
            Value::Object(out)
        }
        other => other,
    }
}

/// `text` cut to `max_chars` characters (at a character boundary), with
/// [`TRUNCATION_MARKER`] when cut.
fn cut(mut text: String, max_chars: usize) -> Arc<str> {
    if let Some((end, _)) = text.char_indices().nth(max_chars) {
        text.truncate(end);
        text.push_str(TRUNCATION_MARKER);
    }
    Arc::from(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_opt_in_is_one_item_of_a_list() {
        assert!(genai_opted_in(Some("gen_ai_latest_experimental")));
        assert!(genai_opted_in(Some("http, gen_ai_latest_experimental ,db")));
        assert!(!genai_opted_in(Some("gen_ai_latest_experimental_x")));
        assert!(!genai_opted_in(Some("http")));
        assert!(!genai_opted_in(Some("")));
        assert!(!genai_opted_in(None));
    }

    #[test]
    fn capture_values_of_the_genai_instrumentations() {
        for on in ["true", "TRUE", "span_only", "span_and_event", " True "] {
            assert!(ContentCapture::from_env_value(Some(on)).is_on(), "{on}");
        }
        for off in ["false", "1", "yes", "event_only", "", "no_content"] {
            assert!(!ContentCapture::from_env_value(Some(off)).is_on(), "{off}");
        }
        assert!(!ContentCapture::from_env_value(None).is_on());
    }

    #[test]
    fn captured_arguments_withhold_free_text_and_long_strings() {
        let args = serde_json::json!({
            "status": "overdue",
            "limit": 5,
            "paid": false,
            "invoice_id": "INV-2024-001",
            "note": "leave them by the blue door",
            "hmac": "kernel-hmac-secret-7f3a9c1e5b2d4f6a8c0e",
            "billing_rw=Tr0ub4dor3xK9qZ": 1,
            "key": "U5aMtj6wD2oS5NSGHd14DBfY5gEBl5rr",
            "card_compact": "4000000000000000",
            "nested": {"deep": ["a b", "ok"]},
        });
        let Value::Object(args) = args else {
            unreachable!()
        };
        let capture = ToolCallTelemetry {
            genai: false,
            capture: ContentCapture::on(),
        };
        let (redacted, _, _) = ARGUMENT_REDACTOR.redact_value(&Value::Object(args), None);
        let shown = withhold_text(redacted);
        assert_eq!(shown["status"], "overdue");
        assert_eq!(shown["key"], "[WITHHELD: 32 chars]");
        assert_eq!(shown["card_compact"], "[WITHHELD: 16 chars]");
        assert_eq!(shown["limit"], 5);
        assert_eq!(shown["paid"], false);
        assert_eq!(shown["invoice_id"], "INV-2024-001");
        assert_eq!(shown["note"], "[WITHHELD: 27 chars]");
        assert_eq!(shown["hmac"], "[WITHHELD: 39 chars]");
        assert_eq!(shown["nested"]["deep"][0], "[WITHHELD: 3 chars]");
        assert_eq!(shown["nested"]["deep"][1], "ok");
        let text = shown.to_string();
        assert!(!text.contains("Tr0ub4dor3xK9qZ"), "{text}");
        assert!(text.contains("[WITHHELD]#1"), "{text}");
        assert!(capture.capture.is_on());
    }

    #[test]
    fn cut_keeps_whole_characters_and_marks_the_cut() {
        assert_eq!(&*cut("abc".to_owned(), 3), "abc");
        assert_eq!(&*cut("abcd".to_owned(), 3), "abc…[truncated]");
        // Multi-byte characters are never split.
        assert_eq!(&*cut("ééé".to_owned(), 2), "éé…[truncated]");
        assert_eq!(&*cut("日本語テキスト".to_owned(), 0), "…[truncated]");
    }
}
