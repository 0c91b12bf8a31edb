//! Text rendering of what the kernel returns: frames, errors, audit
//! records, as the demo prints them.

use std::fmt::Write as _;

use agent_kernel::{ActionTrace, Frame, KernelError, ResponseMode};
use serde_json::{Map, Value};

/// Rows of a table preview printed at most.
pub const PREVIEW_ROWS: usize = 5;

/// Characters of one table cell printed at most.
const CELL_CHARS: usize = 48;

/// Indents every line of `text` by `pad`.
pub fn indent(text: &str, pad: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        out.push_str(pad);
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn cell(v: Option<&Value>) -> String {
    let text = match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    if text.chars().count() > CELL_CHARS {
        let mut cut: String = text.chars().take(CELL_CHARS - 1).collect();
        cut.push('…');
        cut
    } else {
        text
    }
}

/// A plain-text table of the first `max_rows` rows (columns in the first
/// row's order, then any others), with a "… N more" line.
pub fn table(rows: &[Map<String, Value>], max_rows: usize) -> String {
    let mut columns: Vec<&str> = Vec::new();
    for row in rows.iter().take(max_rows) {
        for key in row.keys() {
            if !columns.contains(&key.as_str()) {
                columns.push(key);
            }
        }
    }
    if columns.is_empty() {
        return "(no rows)\n".to_owned();
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .take(max_rows)
        .map(|row| columns.iter().map(|c| cell(row.get(*c))).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain(std::iter::once(c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |values: &mut dyn Iterator<Item = &str>| {
        let mut s = String::new();
        for (i, v) in values.enumerate() {
            let pad = widths[i].saturating_sub(v.chars().count());
            let _ = write!(s, "{v}{}  ", " ".repeat(pad));
        }
        s.trim_end().to_owned()
    };
    let mut out = String::new();
    out.push_str(&line(&mut columns.iter().copied()));
    out.push('\n');
    out.push_str(&line(
        &mut widths
            .iter()
            .map(|w| "─".repeat(*w))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str),
    ));
    out.push('\n');
    for row in &cells {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
        out.push('\n');
    }
    if rows.len() > max_rows {
        let _ = writeln!(out, "… {} more rows", rows.len() - max_rows);
    }
    out
}

/// A frame as the model would receive it: mode, facts, table, raw data,
/// handle and warnings.
pub fn frame(frame: &Frame) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "frame  action_id={}  capability={}  mode={}",
        frame.action_id, frame.capability_id, frame.response_mode
    );
    match frame.response_mode {
        ResponseMode::Summary => {
            for fact in &frame.facts {
                let _ = writeln!(out, "  • {fact}");
            }
        }
        ResponseMode::Table => {
            out.push_str(&indent(&table(&frame.table_preview, PREVIEW_ROWS), "  "));
        }
        ResponseMode::Raw => match &frame.raw_data {
            Some(Value::Array(items)) => {
                for item in items.iter().take(2) {
                    let _ = writeln!(out, "  {item}");
                }
                if items.len() > 2 {
                    let _ = writeln!(out, "  … {} more items", items.len() - 2);
                }
            }
            Some(other) => {
                let _ = writeln!(out, "  {other}");
            }
            None => out.push_str("  (no raw data)\n"),
        },
        ResponseMode::HandleOnly => {}
    }
    if let Some(h) = &frame.handle {
        let _ = writeln!(
            out,
            "  handle {}: {} rows behind it, expires {}",
            h.handle_id, h.total_rows, h.expires_at
        );
    }
    for w in &frame.warnings {
        let _ = writeln!(out, "  ⚠ {w}");
    }
    out
}

/// A kernel error: kind, denial category, message.
pub fn error(err: &KernelError) -> String {
    let category = err
        .denial_category()
        .map(|c| format!("  category={c}"))
        .unwrap_or_default();
    format!("refused  kind={}{category}\n  {err}\n", err.kind())
}

/// An audit record, with its OpenTelemetry ids when instrumentation filled
/// them in.
pub fn action_trace(t: &ActionTrace) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "explain({})", t.action_id);
    let _ = writeln!(
        out,
        "  principal={}  capability={}  token={}",
        t.principal_id, t.capability_id, t.token_id
    );
    let _ = writeln!(
        out,
        "  outcome={}  requested={}  used={}  driver={}",
        t.outcome.as_str(),
        t.requested_mode,
        t.response_mode,
        if t.driver_id.is_empty() {
            "-"
        } else {
            &t.driver_id
        }
    );
    let args: Vec<&str> = t.args.keys().map(String::as_str).collect();
    let _ = writeln!(
        out,
        "  args keys=[{}]  handle={}  duration={}",
        args.join(", "),
        t.handle_id.as_deref().unwrap_or("-"),
        t.duration.map_or_else(
            || "-".to_owned(),
            |d| format!("{:.3} ms", d.as_secs_f64() * 1e3)
        )
    );
    if let Some(category) = t.denial_category {
        let _ = writeln!(out, "  denial category={category}");
    }
    if let Some(e) = &t.error {
        let _ = writeln!(out, "  error: {e}");
    }
    match (&t.trace_id, &t.span_id) {
        (Some(trace), Some(span)) => {
            let _ = writeln!(
                out,
                "  OpenTelemetry: trace_id={trace} span_id={span} (search the backend for this trace id)"
            );
        }
        _ => out.push_str("  OpenTelemetry: no trace id recorded (instrumentation off)\n"),
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn table_aligns_and_truncates() {
        let rows: Vec<Map<String, Value>> = (0..7)
            .map(|i| {
                json!({"id": format!("INV-{i}"), "amount": i * 10})
                    .as_object()
                    .unwrap()
                    .clone()
            })
            .collect();
        let t = table(&rows, 3);
        let lines: Vec<&str> = t.lines().collect();
        // serde_json maps keep keys sorted.
        assert_eq!(lines[0], "amount  id");
        assert!(lines[1].starts_with("──────  ─────"));
        assert_eq!(lines[2], "0       INV-0");
        assert_eq!(lines[5], "… 4 more rows");
        assert_eq!(table(&[], 3), "(no rows)\n");
        let long = json!({"note": "x".repeat(100)})
            .as_object()
            .unwrap()
            .clone();
        assert!(table(&[long], 1).contains('…'));
    }
}
