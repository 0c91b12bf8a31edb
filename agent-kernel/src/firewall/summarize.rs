//! Deterministic summaries: facts computed from the structure of redacted
//! data (no model involved). The same input always gives the same facts.
//!
//! - array whose first element is an object: `Total rows: N`, `Top keys: …`
//!   (the most frequent keys of the first 10 rows, at most 10; only the first
//!   4 096 keys of a row compete), then
//!   `key: min=…, max=…, avg=…` for up to 5 numeric top keys, then
//!   `key distribution: a=1, b=2` for up to 5 top keys holding 2 to 10
//!   distinct string (or boolean) values;
//! - object: `Keys: …` (sorted, at most 20), then one fact per entry;
//! - other array: `List of N items`, then each item as JSON (≤ 100 chars);
//! - string: its first 500 characters, plus `… (N chars total)` when longer;
//! - anything else: its JSON form (≤ 200 chars).
//!
//! Differences from the reference: distributions are looked for among all
//! top keys (the reference only looked at the first five, which with
//! alphabetically ordered keys hid e.g. `status`); booleans count as
//! categorical rather than numeric; scalars print in JSON form (`null`,
//! `true`).

use std::fmt::Write as _;
use std::io;

use serde::Serialize;
use serde_json::Value;

use std::borrow::Cow;
use std::collections::HashMap;

use super::redaction::{Entry, RedactedValue};

/// The most facts a summary holds.
pub const MAX_FACTS: usize = 20;

/// Rows whose keys decide the top keys.
pub(crate) const TOP_KEY_SAMPLE_ROWS: usize = 10;
/// Keys of each sample row that compete for the top keys: the count stays
/// in a small table, which keeps its cost linear in practice too (a table
/// of every key of ten rows of 20 000 keys falls out of the CPU caches).
pub(crate) const TOP_KEY_SAMPLE_KEYS: usize = 4096;
const MAX_TOP_KEYS: usize = 10;
// `RowFacts::observe` tracks the columns in a `u32` bit set.
const _: () = assert!(MAX_TOP_KEYS <= 32);
const MAX_NUMERIC_FACTS: usize = 5;
const MAX_DISTRIBUTION_FACTS: usize = 5;
const MAX_DISTINCT: usize = 10;
const STRING_FACT_CHARS: usize = 500;
const DICT_VALUE_CHARS: usize = 80;
const LIST_ITEM_CHARS: usize = 100;
const SCALAR_CHARS: usize = 200;
const NESTED_KEYS_SHOWN: usize = 5;
const KEYS_SHOWN: usize = 20;

/// Facts about `data`, at most `max_facts` of them.
pub fn summarize(data: &RedactedValue<'_>, max_facts: usize) -> Vec<String> {
    let mut facts = match data {
        RedactedValue::Array(rows) if matches!(rows.first(), Some(RedactedValue::Object(_))) => {
            summarize_rows(rows, max_facts)
        }
        RedactedValue::Object(entries) => summarize_object(entries, max_facts),
        RedactedValue::Array(items) => summarize_list(items, max_facts),
        RedactedValue::String(s) => vec![summarize_string(s)],
        RedactedValue::Scalar(v) => vec![json_prefix(v, SCALAR_CHARS)],
    };
    facts.truncate(max_facts);
    facts
}

/// Keeps the leading facts whose running character count stays within `max_chars`.
pub fn cap_facts(facts: &mut Vec<String>, max_chars: usize) -> usize {
    let mut total = 0usize;
    let mut keep = 0usize;
    for fact in facts.iter() {
        let chars = fact.chars().count();
        if total + chars > max_chars {
            break;
        }
        total += chars;
        keep += 1;
    }
    facts.truncate(keep);
    total
}

// ── Rows ────────────────────────────────────────────────────────────────────

/// Running statistics for one top key.
struct Column<'k, 'a> {
    key: &'k str,
    hint: usize,
    numeric: bool,
    count: usize,
    min: f64,
    max: f64,
    sum: f64,
    distinct: Vec<(Cow<'a, str>, usize)>,
    too_many: bool,
}

impl<'k, 'a> Column<'k, 'a> {
    fn new(key: &'k str) -> Self {
        Self {
            key,
            hint: 0,
            numeric: true,
            count: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            sum: 0.0,
            distinct: Vec::new(),
            too_many: false,
        }
    }

    fn observe(&mut self, value: &RedactedValue<'a>) {
        let number = match value {
            RedactedValue::Scalar(Value::Number(n)) => n.as_f64(),
            _ => None,
        };
        if let Some(x) = number {
            self.count += 1;
            self.min = self.min.min(x);
            self.max = self.max.max(x);
            self.sum += x;
            return;
        }
        self.numeric = false;
        if self.too_many {
            return;
        }
        let category: &str = match value {
            RedactedValue::String(s) => s,
            RedactedValue::Scalar(Value::Bool(true)) => "true",
            RedactedValue::Scalar(Value::Bool(false)) => "false",
            _ => return,
        };
        if let Some(entry) = self.distinct.iter_mut().find(|(v, _)| v == category) {
            entry.1 += 1;
        } else if self.distinct.len() < MAX_DISTINCT {
            let owned = match value {
                RedactedValue::String(s) => s.clone(),
                _ => Cow::Owned(category.to_owned()),
            };
            self.distinct.push((owned, 1));
        } else {
            self.too_many = true;
        }
    }
}

/// Facts about an array of objects, fed one row at a time. The top keys
/// come from the first rows, which the caller keeps alive (`'k`).
pub(crate) struct RowFacts<'k, 'a> {
    facts: Vec<String>,
    columns: Vec<Column<'k, 'a>>,
}

impl<'k, 'a> RowFacts<'k, 'a> {
    /// Starts with `Total rows` and `Top keys`, from the first (up to 10) rows.
    pub(crate) fn new(total_rows: usize, first_rows: &'k [RedactedValue<'a>]) -> Self {
        // Counts in first-seen order; the index finds a key's count in
        // constant time, however many keys the rows have.
        let sample = first_rows.get(..TOP_KEY_SAMPLE_ROWS).unwrap_or(first_rows);
        let keys: usize = sample
            .iter()
            .map(|row| match row {
                RedactedValue::Object(entries) => entries.len().min(TOP_KEY_SAMPLE_KEYS),
                _ => 0,
            })
            .sum();
        let mut key_counts: Vec<(&'k str, usize)> = Vec::with_capacity(keys);
        let mut index: HashMap<&'k str, usize> = HashMap::with_capacity(keys);
        for row in sample {
            if let RedactedValue::Object(entries) = row {
                for (key, _) in entries.iter().take(TOP_KEY_SAMPLE_KEYS) {
                    let key: &'k str = key;
                    match index.get(key).and_then(|&i| key_counts.get_mut(i)) {
                        Some(entry) => entry.1 += 1,
                        None => {
                            index.insert(key, key_counts.len());
                            key_counts.push((key, 1));
                        }
                    }
                }
            }
        }
        // Most frequent first; ties keep first-seen order (the sort is stable).
        key_counts.sort_by_key(|entry| std::cmp::Reverse(entry.1));
        key_counts.truncate(MAX_TOP_KEYS);
        let mut top = String::from("Top keys: ");
        for (i, (key, _)) in key_counts.iter().enumerate() {
            if i > 0 {
                top.push_str(", ");
            }
            top.push_str(key);
        }
        Self {
            facts: vec![format!("Total rows: {total_rows}"), top],
            columns: key_counts.iter().map(|(k, _)| Column::new(k)).collect(),
        }
    }

    /// Accounts for one row's entries: each column at its position in the
    /// last row if it is still there, else all the others in one pass over
    /// the entries (not one pass per column: rows of many keys are read
    /// once).
    pub(crate) fn observe(&mut self, entries: &[Entry<'a>]) {
        // Bit i: column i is still to be found in this row.
        let mut pending = 0u32;
        for (i, column) in self.columns.iter_mut().enumerate() {
            // Neither numeric nor categorical any more: nothing left to learn.
            if !column.numeric && column.too_many {
                continue;
            }
            match entries.get(column.hint) {
                Some((k, v)) if k == column.key => column.observe(v),
                _ => pending |= 1 << i,
            }
        }
        if pending == 0 {
            return;
        }
        for (pos, (key, value)) in entries.iter().enumerate() {
            for (i, column) in self.columns.iter_mut().enumerate() {
                if pending & (1 << i) != 0 && key == column.key {
                    pending &= !(1 << i);
                    column.hint = pos;
                    column.observe(value);
                }
            }
            if pending == 0 {
                break;
            }
        }
    }

    /// The facts, at most `max_facts`.
    pub(crate) fn finish(self, max_facts: usize) -> Vec<String> {
        let Self { mut facts, columns } = self;
        for column in columns
            .iter()
            .filter(|c| c.numeric && c.count > 0)
            .take(MAX_NUMERIC_FACTS)
        {
            if facts.len() >= max_facts {
                break;
            }
            // Counts stay far below 2^53, so the conversion is exact.
            #[allow(clippy::cast_precision_loss)]
            let avg = column.sum / column.count as f64;
            facts.push(format!(
                "{}: min={:.2}, max={:.2}, avg={avg:.2}",
                column.key, column.min, column.max
            ));
        }
        let mut distributions = 0;
        for mut column in columns {
            if distributions >= MAX_DISTRIBUTION_FACTS || facts.len() >= max_facts {
                break;
            }
            if column.numeric || column.too_many || column.distinct.len() < 2 {
                continue;
            }
            column.distinct.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            let mut line = format!("{} distribution: ", column.key);
            for (i, (value, n)) in column.distinct.iter().enumerate() {
                if i > 0 {
                    line.push_str(", ");
                }
                let _ = write!(line, "{value}={n}");
            }
            facts.push(line);
            distributions += 1;
        }
        facts.truncate(max_facts);
        facts
    }
}

fn summarize_rows(rows: &[RedactedValue<'_>], max_facts: usize) -> Vec<String> {
    let mut acc = RowFacts::new(rows.len(), rows);
    for row in rows {
        if let RedactedValue::Object(entries) = row {
            acc.observe(entries);
        }
    }
    acc.finish(max_facts)
}

// ── Objects, lists, strings ─────────────────────────────────────────────────

fn summarize_object(entries: &[Entry<'_>], max_facts: usize) -> Vec<String> {
    let mut keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_ref()).collect();
    keys.sort_unstable();
    keys.truncate(KEYS_SHOWN);
    let mut facts = vec![format!("Keys: {}", keys.join(", "))];
    for (key, value) in entries.iter().take(max_facts.saturating_sub(1)) {
        let fact = match value {
            RedactedValue::String(s) => format!("{key}: {}", take_chars(s, DICT_VALUE_CHARS)),
            RedactedValue::Array(items) => format!("{key}: list of {} items", items.len()),
            RedactedValue::Object(inner) => {
                let shown: Vec<&str> = inner
                    .iter()
                    .take(NESTED_KEYS_SHOWN)
                    .map(|(k, _)| k.as_ref())
                    .collect();
                format!("{key}: dict with keys [{}]", shown.join(", "))
            }
            RedactedValue::Scalar(v) => format!("{key}: {}", json_prefix(v, DICT_VALUE_CHARS)),
        };
        facts.push(fact);
    }
    facts
}

fn summarize_list(items: &[RedactedValue<'_>], max_facts: usize) -> Vec<String> {
    let mut facts = vec![format!("List of {} items", items.len())];
    facts.extend(
        items
            .iter()
            .take(max_facts.saturating_sub(1))
            .map(|item| json_prefix(item, LIST_ITEM_CHARS)),
    );
    facts
}

fn summarize_string(s: &str) -> String {
    match s.char_indices().nth(STRING_FACT_CHARS) {
        Some((cut, _)) => format!(
            "{}… ({} chars total)",
            s.get(..cut).unwrap_or_default(),
            s.chars().count()
        ),
        None => s.to_owned(),
    }
}

/// The first `n` characters of `s`.
pub(crate) fn take_chars(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((cut, _)) => s.get(..cut).unwrap_or(s),
        None => s,
    }
}

/// The first `max_chars` characters of `value`'s compact JSON, without
/// serialising more than needed.
pub(crate) fn json_prefix<T: Serialize + ?Sized>(value: &T, max_chars: usize) -> String {
    let mut sink = Prefix {
        buf: Vec::new(),
        limit: max_chars.saturating_mul(4).saturating_add(4),
    };
    // The sink stops the serialiser with an error once it has enough.
    let _ = serde_json::to_writer(&mut sink, value);
    let valid = match std::str::from_utf8(&sink.buf) {
        Ok(s) => s,
        Err(e) => sink
            .buf
            .get(..e.valid_up_to())
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or_default(),
    };
    take_chars(valid, max_chars).to_owned()
}

struct Prefix {
    buf: Vec<u8>,
    limit: usize,
}

impl io::Write for Prefix {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = self.limit.saturating_sub(self.buf.len());
        if room == 0 {
            return Err(io::Error::other("prefix complete"));
        }
        let n = data.len().min(room);
        self.buf
            .extend_from_slice(data.get(..n).unwrap_or_default());
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Per byte: characters it adds to a JSON string beyond one (escapes add,
/// UTF-8 continuation bytes take one away).
static JSON_CHAR_DELTA: [i8; 256] = {
    let mut table = [0i8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = match b {
            b'"' | b'\\' | 0x08 | 0x09 | 0x0a | 0x0c | 0x0d => 1,
            0x00..=0x1f => 5,
            0x80..=0xbf => -1,
            _ => 0,
        };
        i += 1;
    }
    table
};

/// Characters of the compact JSON form of a string (quotes and escapes included).
fn str_json_chars(s: &str) -> usize {
    let delta: isize = s
        .as_bytes()
        .iter()
        .map(|&b| isize::from(JSON_CHAR_DELTA[usize::from(b)]))
        .sum();
    (s.len() + 2).saturating_add_signed(delta)
}

/// Counts characters written through `fmt::Write`.
struct FmtCounter(usize);

impl std::fmt::Write for FmtCounter {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0 += s.chars().count();
        Ok(())
    }
}

fn scalar_json_chars(v: &Value) -> usize {
    match v {
        Value::Null => 4,
        Value::Bool(true) => 4,
        Value::Bool(false) => 5,
        Value::Number(n) => {
            let mut counter = FmtCounter(0);
            let _ = write!(counter, "{n}");
            counter.0
        }
        Value::String(s) => str_json_chars(s),
        Value::Array(items) => {
            2 + items.len().saturating_sub(1) + items.iter().map(scalar_json_chars).sum::<usize>()
        }
        Value::Object(map) => map_json_chars(map),
    }
}

/// Characters of the compact JSON form of `map`.
pub(crate) fn map_json_chars(map: &serde_json::Map<String, Value>) -> usize {
    2 + map.len().saturating_sub(1)
        + map
            .iter()
            .map(|(k, v)| str_json_chars(k) + 1 + scalar_json_chars(v))
            .sum::<usize>()
}

/// Characters of the compact JSON form of a table (an array of objects).
pub(crate) fn table_json_chars(rows: &[serde_json::Map<String, Value>]) -> usize {
    2 + rows.len().saturating_sub(1) + rows.iter().map(map_json_chars).sum::<usize>()
}

/// Characters of the compact JSON form of a redacted view.
pub(crate) fn view_json_chars(view: &RedactedValue<'_>) -> usize {
    match view {
        RedactedValue::Scalar(v) => scalar_json_chars(v),
        RedactedValue::String(s) => str_json_chars(s),
        RedactedValue::Array(items) => {
            2 + items.len().saturating_sub(1) + items.iter().map(view_json_chars).sum::<usize>()
        }
        RedactedValue::Object(entries) => {
            2 + entries.len().saturating_sub(1)
                + entries
                    .iter()
                    .map(|(k, v)| str_json_chars(k) + 1 + view_json_chars(v))
                    .sum::<usize>()
        }
    }
}
