//! The context firewall: turns a tool's raw JSON output into the bounded,
//! redacted content of a frame.
//!
//! Redaction always runs first ([`Redactor`]); then the response mode
//! decides what leaves:
//! - [`ResponseMode::Raw`]: the whole redacted value, for admins only
//!   (anyone else gets a warning and a summary); a payload larger than
//!   `max_chars` gets a warning but is returned whole;
//! - [`ResponseMode::HandleOnly`]: warnings only (the kernel attaches the handle);
//! - [`ResponseMode::Table`]: an array's first `max_rows` rows (the
//!   request's `max_rows` wins over the budget), each capped at `max_fields`
//!   keys; an object becomes one row, anything else `{"value": …}`;
//! - [`ResponseMode::Summary`]: deterministic facts (see [`summarize()`]), at
//!   most [`MAX_FACTS`] within `max_chars`.
//!
//! Only what is shown is redacted and copied: a table redacts the rows it
//! outputs, a summary reads a borrowed redacted view, and handle-only mode
//! only counts.

mod digits;
mod names;
mod patterns;
mod prescan;
mod redaction;
mod summarize;
mod windows;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod shape_tests;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::types::ResponseMode;

pub use names::is_sensitive_field_name;
pub use patterns::{PatternKind, PatternSet, REDACTED};
pub use redaction::{
    DEFAULT_MAX_DEPTH, DEPTH_MARKER, Entry, MAX_DEPTH_CEILING, RedactedValue, Redaction,
    RedactionCounts, Redactor,
};
pub use summarize::{MAX_FACTS, cap_facts, summarize};

use redaction::{Allowed, RedactedValue as View, Tally, entries_into_map};

/// Limits the firewall enforces on what reaches the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct Budgets {
    /// Rows in a table preview (a request's own `max_rows` takes precedence).
    pub max_rows: usize,
    /// Keys per table row.
    pub max_fields: usize,
    /// Characters of summary facts; also the size above which raw output is flagged.
    pub max_chars: usize,
    /// Nesting depth redaction descends to; deeper arrays and objects are withheld.
    pub max_depth: usize,
}

impl Default for Budgets {
    fn default() -> Self {
        Self {
            max_rows: 50,
            max_fields: 20,
            max_chars: 4000,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
}

/// One transformation request.
#[derive(Debug, Clone, Copy)]
pub struct FirewallRequest<'a> {
    /// The tool's raw output.
    pub data: &'a Value,
    /// The mode the caller asked for.
    pub requested_mode: ResponseMode,
    /// The only keys kept in the top-level object or in the objects of a
    /// top-level array (an empty list keeps none; `None` keeps every key).
    pub allowed_fields: Option<&'a [String]>,
    /// Row limit from the token's constraints; overrides `budgets.max_rows`.
    pub max_rows: Option<usize>,
    /// Whether the principal holds the `admin` role (required for raw mode).
    pub is_admin: bool,
    /// The budgets to enforce.
    pub budgets: &'a Budgets,
}

/// What the firewall lets through.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FirewallOutput {
    /// The mode actually applied (raw falls back to summary for non-admins).
    pub effective_mode: ResponseMode,
    /// Summary facts (summary mode only).
    pub facts: Vec<String>,
    /// Table rows (table mode only).
    pub table_preview: Vec<Map<String, Value>>,
    /// What was redacted, omitted, capped or refused; never a redacted value.
    pub warnings: Vec<String>,
    /// The redacted value (raw mode only).
    pub raw_data: Option<Value>,
    /// Counters for telemetry.
    pub stats: FirewallStats,
}

/// Counters describing one transformation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FirewallStats {
    /// Top-level rows in the input: an array's length, else 1.
    pub rows_in: usize,
    /// Rows handed out: table rows, `rows_in` for raw output, 0 otherwise.
    pub rows_out: usize,
    /// Redactions performed (see [`RedactionCounts::total`]).
    pub redactions: usize,
    /// Characters of output: facts for a summary, compact JSON for a table or raw output.
    pub chars: usize,
}

/// The context firewall. Cheap to clone and share (`Send + Sync`); the
/// compiled patterns are process-wide.
#[derive(Debug, Clone, Default)]
pub struct Firewall {
    budgets: Budgets,
    redactor: Redactor,
}

impl Firewall {
    /// A firewall whose default budgets (used by [`table_rows`](Self::table_rows)) are `budgets`.
    pub fn new(budgets: Budgets) -> Self {
        Self {
            budgets,
            redactor: Redactor::new().with_max_depth(budgets.max_depth),
        }
    }

    /// The default budgets.
    pub fn budgets(&self) -> &Budgets {
        &self.budgets
    }

    /// The redactor, configured with the default budgets' `max_depth`.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// Transforms one tool output; `req.budgets` applies.
    pub fn apply(&self, req: &FirewallRequest<'_>) -> FirewallOutput {
        let budgets = req.budgets;
        let redactor = self.redactor.with_max_depth(budgets.max_depth);
        let allowed_fields = req.allowed_fields;
        let rows_in = match req.data {
            Value::Array(items) => items.len(),
            _ => 1,
        };
        let mut mode = req.requested_mode;
        let fallback = mode == ResponseMode::Raw && !req.is_admin;
        if fallback {
            mode = ResponseMode::Summary;
        }

        let mut out = FirewallOutput {
            effective_mode: mode,
            stats: FirewallStats {
                rows_in,
                ..FirewallStats::default()
            },
            ..FirewallOutput::default()
        };
        match mode {
            ResponseMode::Raw => {
                let redaction = redactor.redact(req.data, allowed_fields);
                out.warnings = redaction.warnings;
                out.stats.redactions = redaction.counts.total();
                let chars = summarize::view_json_chars(&redaction.value);
                if chars > budgets.max_chars {
                    out.warnings.push(format!(
                        "raw output ({chars} chars) exceeds budget ({} chars); data returned untruncated.",
                        budgets.max_chars
                    ));
                }
                out.stats.chars = chars;
                out.stats.rows_out = rows_in;
                out.raw_data = Some(redaction.value.into_value());
            }
            ResponseMode::HandleOnly => {
                let (warnings, counts) = redactor.audit(req.data, allowed_fields);
                out.warnings = warnings;
                out.stats.redactions = counts.total();
            }
            ResponseMode::Table => {
                let max_rows = req.max_rows.unwrap_or(budgets.max_rows);
                let (rows, warnings, stats) =
                    table(&redactor, budgets, req.data, allowed_fields, max_rows);
                out.table_preview = rows;
                out.warnings = warnings;
                out.stats = stats;
            }
            ResponseMode::Summary => {
                let (mut facts, warnings, counts) = summary(&redactor, req.data, allowed_fields);
                out.warnings = warnings;
                out.stats.redactions = counts.total();
                out.stats.chars = cap_facts(&mut facts, budgets.max_chars);
                out.facts = facts;
            }
        }
        if fallback {
            out.warnings
                .push("raw mode requires admin role; falling back to summary.".to_owned());
        }
        out
    }

    /// Table rows for an expansion: `rows` (already filtered, offset, limited
    /// and projected by the caller) redacted as the elements of a top-level
    /// array, filtered by `allowed_fields`, capped at `max_rows` (default: the
    /// budget's) and at the budget's `max_fields` keys per row.
    pub fn table_rows(
        &self,
        rows: &[Value],
        allowed_fields: Option<&[String]>,
        max_rows: Option<usize>,
    ) -> (Vec<Map<String, Value>>, Vec<String>, FirewallStats) {
        let max_rows = max_rows.unwrap_or(self.budgets.max_rows);
        table_from_rows(
            &self.redactor,
            &self.budgets,
            rows,
            allowed_fields,
            max_rows,
        )
    }
}

/// Whether `data` weighs more than `limit` (one per array element and
/// object entry, plus the bytes of strings and keys), looking no deeper than
/// `max_depth` (what the firewall walks) and stopping as soon as it knows:
/// the work is bounded by `limit`, whatever the size of `data`.
pub fn weighs_more_than(data: &Value, max_depth: usize, limit: usize) -> bool {
    let mut weight = 0usize;
    let mut stack = vec![(data, 0usize)];
    while let Some((value, depth)) = stack.pop() {
        weight = weight.saturating_add(match value {
            Value::String(s) => s.len(),
            Value::Array(items) => items.len(),
            Value::Object(map) => map.len(),
            _ => 1,
        });
        if weight > limit {
            return true;
        }
        if depth < max_depth {
            match value {
                Value::Array(items) => stack.extend(items.iter().map(|v| (v, depth + 1))),
                Value::Object(map) => {
                    for (key, child) in map {
                        weight = weight.saturating_add(key.len());
                        stack.push((child, depth + 1));
                    }
                }
                _ => {}
            }
        }
    }
    weight > limit
}

/// Summary mode: redacts and summarises in one pass. An array of objects
/// is redacted row by row into a reused buffer (only the first rows, which
/// decide the top keys, are kept); anything else through a full view.
fn summary(
    redactor: &Redactor,
    data: &Value,
    allowed_fields: Option<&[String]>,
) -> (Vec<String>, Vec<String>, RedactionCounts) {
    let allowed = Allowed::new(allowed_fields);
    let mut tally = Tally::default();
    let facts = match data {
        Value::Array(rows) if redactor.max_depth() > 0 => {
            let sample_len = rows.len().min(summarize::TOP_KEY_SAMPLE_ROWS);
            let (sample, rest) = rows.split_at_checked(sample_len).unwrap_or((rows, &[]));
            let first: Vec<View<'_>> = sample
                .iter()
                .map(|row| redactor.view_at(row, allowed, 1, &mut tally))
                .collect();
            if matches!(first.first(), Some(View::Object(_))) {
                let mut facts = summarize::RowFacts::new(rows.len(), &first);
                for row in &first {
                    if let View::Object(entries) = row {
                        facts.observe(entries);
                    }
                }
                let mut buf = Vec::new();
                for row in rest {
                    if redactor.row_into(row, allowed, &mut tally, &mut buf) {
                        facts.observe(&buf);
                    }
                }
                facts.finish(MAX_FACTS)
            } else {
                let mut items = first;
                items.extend(
                    rest.iter()
                        .map(|row| redactor.view_at(row, allowed, 1, &mut tally)),
                );
                summarize(&View::Array(items), MAX_FACTS)
            }
        }
        other => summarize(&redactor.view_at(other, allowed, 0, &mut tally), MAX_FACTS),
    };
    (facts, tally.warnings(redactor), tally.counts())
}

/// Table mode over any top-level value.
fn table(
    redactor: &Redactor,
    budgets: &Budgets,
    data: &Value,
    allowed_fields: Option<&[String]>,
    max_rows: usize,
) -> (Vec<Map<String, Value>>, Vec<String>, FirewallStats) {
    match data {
        Value::Array(rows) => table_from_rows(redactor, budgets, rows, allowed_fields, max_rows),
        single => {
            let mut tally = Tally::default();
            let view = redactor.view_at(single, Allowed::new(allowed_fields), 0, &mut tally);
            let mut rows = Vec::new();
            let mut capped = 0;
            if max_rows > 0 {
                rows.push(into_row(view, budgets.max_fields, &mut capped));
            }
            finish_table(redactor, budgets, rows, &tally, 1, capped)
        }
    }
}

/// Table mode over the elements of an array (depth 1).
fn table_from_rows(
    redactor: &Redactor,
    budgets: &Budgets,
    rows: &[Value],
    allowed_fields: Option<&[String]>,
    max_rows: usize,
) -> (Vec<Map<String, Value>>, Vec<String>, FirewallStats) {
    let allowed = Allowed::new(allowed_fields);
    let mut tally = Tally::default();
    let mut capped = 0;
    let shown = rows.get(..max_rows.min(rows.len())).unwrap_or_default();
    let mut table = Vec::with_capacity(shown.len());
    let mut buf = Vec::new();
    let mut template = None;
    for row in shown {
        let row = match row {
            Value::Object(map) if redactor.max_depth() > 1 => {
                redactor.object_entries_into(map, allowed, 1, &mut tally, &mut buf);
                if buf.len() > budgets.max_fields {
                    capped += buf.len() - budgets.max_fields;
                    buf.truncate(budgets.max_fields);
                }
                redaction::row_from_entries(&mut buf, &mut template)
            }
            other => into_row(
                redactor.view_at(other, allowed, 1, &mut tally),
                budgets.max_fields,
                &mut capped,
            ),
        };
        table.push(row);
    }
    finish_table(redactor, budgets, table, &tally, rows.len(), capped)
}

/// One table row: an object capped at `max_fields` keys, or `{"value": …}`.
fn into_row(view: View<'_>, max_fields: usize, capped: &mut usize) -> Map<String, Value> {
    match view {
        View::Object(mut entries) => {
            if entries.len() > max_fields {
                *capped += entries.len() - max_fields;
                entries.truncate(max_fields);
            }
            entries_into_map(entries)
        }
        other => {
            let mut row = Map::new();
            if max_fields > 0 {
                row.insert("value".to_owned(), other.into_value());
            } else {
                *capped += 1;
            }
            row
        }
    }
}

fn finish_table(
    redactor: &Redactor,
    budgets: &Budgets,
    rows: Vec<Map<String, Value>>,
    tally: &Tally<'_>,
    rows_in: usize,
    capped_fields: usize,
) -> (Vec<Map<String, Value>>, Vec<String>, FirewallStats) {
    let mut warnings = tally.warnings(redactor);
    if rows.len() < rows_in {
        warnings.push(format!(
            "Table shows {} of {rows_in} rows (max_rows).",
            rows.len()
        ));
    }
    if capped_fields > 0 {
        warnings.push(format!(
            "{capped_fields} field(s) beyond max_fields={} left out of table rows.",
            budgets.max_fields
        ));
    }
    let stats = FirewallStats {
        rows_in,
        rows_out: rows.len(),
        redactions: tally.counts().total(),
        chars: summarize::table_json_chars(&rows),
    };
    (rows, warnings, stats)
}
