//! Redaction: sensitive field names, sensitive text inside strings (and
//! object keys), `allowed_fields` filtering and the depth limit.
//!
//! The work is done once, over a borrowed view ([`RedactedValue`]) that
//! copies nothing the redaction did not change; callers turn the part they
//! need into owned JSON.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Number, Value};

use super::names::is_sensitive_field_name;
use super::patterns::{PATTERNS, PatternSet, Patterns, REDACTED, WINDOWED_ABOVE, candidates};

/// What replaces an array or object nested deeper than `max_depth`.
pub const DEPTH_MARKER: &str = "[TRUNCATED]";

/// The default traversal depth (the reference's `Budgets.max_depth`).
pub const DEFAULT_MAX_DEPTH: usize = 3;

/// The deepest traversal any redactor performs, whatever `max_depth` says;
/// it bounds recursion on adversarial input.
pub const MAX_DEPTH_CEILING: usize = 64;

/// How many distinct field names a warning lists before lumping the rest.
const MAX_NAMED_FIELDS: usize = 16;

/// Field names in warnings are cut to this many characters.
const MAX_NAME_CHARS: usize = 64;

/// JSON numbers smaller than this in magnitude cannot match a digit rule:
/// their text has no separator but a `.` and at most one of them, so only a
/// card number (13 digits or more) could match, and a `.` followed by digits
/// is not a phone number.
const MIN_CHECKED_NUMBER: f64 = 1e12;

/// Removes sensitive data from JSON values and strings.
///
/// Rules, applied top-down:
/// 1. With `allowed_fields` (a non-empty list; an empty one means "no
///    filter", as in the reference), keys not in the list are dropped from
///    the top-level object and from objects that are elements of top-level
///    arrays (at any array nesting); nested objects are not filtered.
/// 2. A key that is a sensitive field name ([`is_sensitive_field_name`]:
///    matched on normalised name tokens, e.g. `passwd`, `apiKey`,
///    `access_token`, `phone_number`) keeps its name; its value becomes
///    [`REDACTED`].
/// 3. Every string — values at any depth, and keys not vouched for by
///    `allowed_fields` — loses every [`PatternKind`](super::PatternKind).
///    A JSON number goes through the same digit rules as a string (its
///    JSON text, a zero fraction dropped: `4111111111111111.0` is read as
///    `4111111111111111`) and, if it matches, becomes the string
///    [`REDACTED`] whole, in every mode (so summary statistics never quote
///    it, and a column holding one is no longer numeric).
/// 4. An array or object at depth `max_depth` or deeper (the top-level
///    value is depth 0) becomes [`DEPTH_MARKER`]. **Change**: the reference
///    returned such subtrees unredacted.
///
/// Cheap to copy; the compiled patterns are shared process-wide.
#[derive(Debug, Clone, Copy)]
pub struct Redactor {
    patterns: &'static Patterns,
    max_depth: usize,
}

impl Default for Redactor {
    fn default() -> Self {
        Self::new()
    }
}

impl Redactor {
    /// A redactor with the default `max_depth` (3).
    pub fn new() -> Self {
        Self {
            patterns: &PATTERNS,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }

    /// The same redactor with another depth limit (capped at [`MAX_DEPTH_CEILING`]).
    #[must_use]
    pub fn with_max_depth(self, max_depth: usize) -> Self {
        Self {
            max_depth: max_depth.min(MAX_DEPTH_CEILING),
            ..self
        }
    }

    /// The depth limit in force.
    pub fn max_depth(&self) -> usize {
        self.max_depth
    }

    /// Removes every sensitive fragment (every kind) from `text`;
    /// borrows when nothing was found. Use it to scrub error messages before
    /// they reach logs or telemetry.
    pub fn redact_str<'a>(&self, text: &'a str) -> Cow<'a, str> {
        self.patterns.scrub(text).0
    }

    /// Like [`redact_str`](Self::redact_str), also reporting which kinds were found.
    pub fn redact_str_with_kinds<'a>(&self, text: &'a str) -> (Cow<'a, str>, PatternSet) {
        self.patterns.scrub(text)
    }

    /// The pattern kinds a JSON number matches (empty: it is shown as is).
    /// A matching number is redacted whole wherever it appears.
    pub fn number_kinds(&self, number: &Number) -> PatternSet {
        let big = match (number.as_u64(), number.as_i64(), number.as_f64()) {
            (Some(u), _, _) => u >= 1_000_000_000_000,
            (_, Some(i), _) => i <= -1_000_000_000_000,
            (_, _, Some(f)) => f.abs() >= MIN_CHECKED_NUMBER,
            _ => true,
        };
        if !big {
            return PatternSet::EMPTY;
        }
        let text = number.to_string();
        let text = text.strip_suffix(".0").unwrap_or(&text);
        self.patterns.scrub(text).1
    }

    /// Redacts `value` into owned JSON; returns the value, the warnings and
    /// the number of redactions (see [`RedactionCounts::total`]).
    pub fn redact_value(
        &self,
        value: &Value,
        allowed_fields: Option<&[String]>,
    ) -> (Value, Vec<String>, usize) {
        let redaction = self.redact(value, allowed_fields);
        let total = redaction.counts.total();
        (redaction.value.into_value(), redaction.warnings, total)
    }

    /// Redacts `value` into a borrowed view: the fast path. Nothing is copied
    /// but what changed; [`RedactedValue::into_value`] materialises it and
    /// the view serialises directly with serde.
    pub fn redact<'a>(&self, value: &'a Value, allowed_fields: Option<&[String]>) -> Redaction<'a> {
        let mut tally = Tally::default();
        let view = self.walk::<true>(value, Allowed::new(allowed_fields), 0, &mut tally);
        let value = view.unwrap_or(RedactedValue::Scalar(&Value::Null));
        Redaction {
            value,
            warnings: tally.warnings(self),
            counts: tally.counts(),
        }
    }

    /// Counts and describes the redactions `value` would need, without building anything.
    pub fn audit(
        &self,
        value: &Value,
        allowed_fields: Option<&[String]>,
    ) -> (Vec<String>, RedactionCounts) {
        let mut tally = Tally::default();
        let _ = self.walk::<false>(value, Allowed::new(allowed_fields), 0, &mut tally);
        (tally.warnings(self), tally.counts())
    }

    /// Redacts `value` as though it sat at `depth`, accumulating into `tally`.
    pub(crate) fn view_at<'a>(
        &self,
        value: &'a Value,
        allowed: Option<Allowed<'_>>,
        depth: usize,
        tally: &mut Tally<'a>,
    ) -> RedactedValue<'a> {
        self.walk::<true>(value, allowed, depth, tally)
            .unwrap_or(RedactedValue::Scalar(&Value::Null))
    }

    /// The traversal. With `BUILD` false it only tallies and returns `None`.
    fn walk<'a, const BUILD: bool>(
        &self,
        value: &'a Value,
        allowed: Option<Allowed<'_>>,
        depth: usize,
        tally: &mut Tally<'a>,
    ) -> Option<RedactedValue<'a>> {
        match value {
            Value::String(s) => self.string::<BUILD>(s, tally),
            Value::Number(n) => self.number::<BUILD>(value, n, tally),
            Value::Null | Value::Bool(_) => {
                if BUILD {
                    Some(RedactedValue::Scalar(value))
                } else {
                    None
                }
            }
            Value::Array(_) | Value::Object(_) if depth >= self.max_depth => {
                tally.withheld += 1;
                if BUILD {
                    Some(RedactedValue::String(Cow::Borrowed(DEPTH_MARKER)))
                } else {
                    None
                }
            }
            Value::Array(items) => {
                if BUILD {
                    let mut out = Vec::with_capacity(items.len());
                    for item in items {
                        if let Some(v) = self.walk::<BUILD>(item, allowed, depth + 1, tally) {
                            out.push(v);
                        }
                    }
                    Some(RedactedValue::Array(out))
                } else {
                    for item in items {
                        self.walk::<BUILD>(item, allowed, depth + 1, tally);
                    }
                    None
                }
            }
            Value::Object(map) => self.object::<BUILD>(map, allowed, depth, tally),
        }
    }

    /// A string value.
    #[inline]
    fn string<'a, const BUILD: bool>(
        &self,
        s: &'a str,
        tally: &mut Tally<'a>,
    ) -> Option<RedactedValue<'a>> {
        let (text, kinds) = if s.len() <= WINDOWED_ABOVE {
            // Field values mostly: the byte pre-scan inline, as the cheap
            // test that lets most values through untouched.
            let candidates = candidates(s);
            if candidates.is_empty() {
                return if BUILD {
                    Some(RedactedValue::String(Cow::Borrowed(s)))
                } else {
                    None
                };
            }
            self.patterns.scrub_with(s, candidates)
        } else {
            self.patterns.scrub(s)
        };
        if !kinds.is_empty() {
            tally.strings += 1;
            tally.string_kinds = tally.string_kinds.union(kinds);
        }
        if BUILD {
            Some(RedactedValue::String(text))
        } else {
            None
        }
    }

    /// A number: shown as is unless it matches a digit rule.
    #[inline]
    fn number<'a, const BUILD: bool>(
        &self,
        value: &'a Value,
        number: &Number,
        tally: &mut Tally<'a>,
    ) -> Option<RedactedValue<'a>> {
        let kinds = self.number_kinds(number);
        if kinds.is_empty() {
            return BUILD.then_some(RedactedValue::Scalar(value));
        }
        tally.numbers += 1;
        tally.number_kinds = tally.number_kinds.union(kinds);
        BUILD.then(redacted_marker)
    }

    /// An object: filter, redact sensitive names, scrub keys, recurse.
    fn object<'a, const BUILD: bool>(
        &self,
        map: &'a Map<String, Value>,
        allowed: Option<Allowed<'_>>,
        depth: usize,
        tally: &mut Tally<'a>,
    ) -> Option<RedactedValue<'a>> {
        let mut out = Vec::new();
        if BUILD {
            out.reserve_exact(allowed.map_or(map.len(), |a| a.len().min(map.len())));
        }
        self.object_into::<BUILD>(map, allowed, depth, tally, &mut out);
        if BUILD {
            Some(RedactedValue::Object(out))
        } else {
            None
        }
    }

    /// Redacts an object's entries into `out` (left empty unless `BUILD`).
    fn object_into<'a, const BUILD: bool>(
        &self,
        map: &'a Map<String, Value>,
        allowed: Option<Allowed<'_>>,
        depth: usize,
        tally: &mut Tally<'a>,
        out: &mut Vec<Entry<'a>>,
    ) {
        let filtered = allowed.is_some();
        // Built at the first scrubbed key only: most objects never need it.
        let mut names = KeyNames::for_keys(map.len());
        for (key, child) in map {
            let action = match tally.cache.lookup(key, filtered) {
                Some(action) => action,
                None => self.decide(key, allowed, tally),
            };
            match action {
                KeyAction::Omit(slot) => tally.omitted.bump(slot),
                KeyAction::Sensitive(slot, None) => {
                    tally.sensitive.bump(slot);
                    if BUILD {
                        names.push(out, Cow::Borrowed(key.as_str()), redacted_marker());
                    }
                }
                KeyAction::Sensitive(slot, Some((index, kinds))) => {
                    // A sensitive name that holds sensitive text itself
                    // (`password=hunter2` as a key): both go.
                    tally.sensitive.bump(slot);
                    tally.keys += 1;
                    tally.key_kinds = tally.key_kinds.union(kinds);
                    if BUILD {
                        let scrubbed = tally.scrubbed_keys.get(index).cloned().unwrap_or_default();
                        names.push(out, Cow::Owned(scrubbed), redacted_marker());
                    }
                }
                KeyAction::Keep => {
                    let child = self.child::<BUILD>(child, depth + 1, tally);
                    if let Some(child) = child {
                        names.push(out, Cow::Borrowed(key.as_str()), child);
                    }
                }
                KeyAction::KeepScrubbed(index, kinds) => {
                    tally.keys += 1;
                    tally.key_kinds = tally.key_kinds.union(kinds);
                    let child = self.child::<BUILD>(child, depth + 1, tally);
                    if let Some(child) = child {
                        let scrubbed = tally.scrubbed_keys.get(index).cloned().unwrap_or_default();
                        names.push(out, Cow::Owned(scrubbed), child);
                    }
                }
            }
        }
    }

    /// Redacts an object at `depth` (which must be below `max_depth`) into
    /// `buf`, replacing its contents.
    pub(crate) fn object_entries_into<'a>(
        &self,
        map: &'a Map<String, Value>,
        allowed: Option<Allowed<'_>>,
        depth: usize,
        tally: &mut Tally<'a>,
        buf: &mut Vec<Entry<'a>>,
    ) {
        buf.clear();
        self.object_into::<true>(map, allowed, depth, tally, buf);
    }

    /// Redacts one element of a top-level array (depth 1), reusing `buf`
    /// for an object's entries; returns whether `buf` now holds an object.
    pub(crate) fn row_into<'a>(
        &self,
        row: &'a Value,
        allowed: Option<Allowed<'_>>,
        tally: &mut Tally<'a>,
        buf: &mut Vec<Entry<'a>>,
    ) -> bool {
        buf.clear();
        match row {
            Value::Object(map) if self.max_depth > 1 => {
                self.object_entries_into(map, allowed, 1, tally, buf);
                true
            }
            other => {
                self.walk::<false>(other, allowed, 1, tally);
                false
            }
        }
    }

    /// An object's value: leaves inline, containers through [`walk`](Self::walk).
    #[inline]
    fn child<'a, const BUILD: bool>(
        &self,
        value: &'a Value,
        depth: usize,
        tally: &mut Tally<'a>,
    ) -> Option<RedactedValue<'a>> {
        match value {
            Value::String(s) => self.string::<BUILD>(s, tally),
            Value::Number(n) => self.number::<BUILD>(value, n, tally),
            Value::Null | Value::Bool(_) => {
                if BUILD {
                    Some(RedactedValue::Scalar(value))
                } else {
                    None
                }
            }
            Value::Array(_) | Value::Object(_) => self.walk::<BUILD>(value, None, depth, tally),
        }
    }

    /// Decides what happens to a key seen for the first time in this
    /// context, and caches the decision.
    #[cold]
    fn decide<'a>(
        &self,
        key: &'a str,
        allowed: Option<Allowed<'_>>,
        tally: &mut Tally<'a>,
    ) -> KeyAction {
        let action = if let Some(allowed) = allowed
            && !allowed.contains(key)
        {
            KeyAction::Omit(tally.omitted.slot(key))
        } else {
            // A key named in allowed_fields is configuration, not data;
            // any other key is scrubbed like a string.
            let scrubbed = match allowed {
                Some(_) => None,
                None => match self.patterns.scrub(key) {
                    (Cow::Owned(scrubbed), kinds) => {
                        tally.scrubbed_keys.push(scrubbed);
                        Some((tally.scrubbed_keys.len() - 1, kinds))
                    }
                    (Cow::Borrowed(_), _) => None,
                },
            };
            // Sensitive if either form is (scrubbing never adds a name
            // token, but a fragment glued to a word can set one free:
            // `passwordeyJ…` becomes `password[REDACTED]`).
            let sensitive = is_sensitive_field_name(key)
                || scrubbed.is_some_and(|(index, _)| {
                    tally
                        .scrubbed_keys
                        .get(index)
                        .is_some_and(|k| is_sensitive_field_name(k))
                });
            match (sensitive, scrubbed) {
                (true, scrubbed) => KeyAction::Sensitive(tally.sensitive.slot(key), scrubbed),
                (false, Some((index, kinds))) => KeyAction::KeepScrubbed(index, kinds),
                (false, None) => KeyAction::Keep,
            }
        };
        tally.cache.insert(key, allowed.is_some(), action);
        action
    }
}

fn redacted_marker<'a>() -> RedactedValue<'a> {
    RedactedValue::String(Cow::Borrowed(REDACTED))
}

/// The keys of the object being built, so that a scrubbed key colliding
/// with an earlier one is renamed (`[REDACTED]#2`, `#3`, …) in constant
/// time per key, whatever the number of collisions.
///
/// Empty until the first scrubbed key (most objects have none); from then
/// on it holds every key pushed. For each scrubbed base name it remembers
/// the next suffix to try: names are only ever added, so every suffix below
/// it is still taken, and each taken name is skipped at most once.
#[derive(Debug, Default)]
pub(crate) struct KeyNames {
    /// Keys in the object (the size the set is made for).
    keys: usize,
    taken: Option<HashSet<String>>,
    next_suffix: HashMap<String, usize>,
    /// Candidate names tested so far (the work done: linear in the keys).
    #[cfg(test)]
    probes: usize,
}

impl KeyNames {
    /// For an object of `keys` keys.
    pub(crate) fn for_keys(keys: usize) -> Self {
        Self {
            keys,
            ..Self::default()
        }
    }

    /// Appends an entry to `out`, renaming a scrubbed (owned) key that
    /// collides with an earlier one.
    pub(crate) fn push<'a>(
        &mut self,
        out: &mut Vec<Entry<'a>>,
        key: Cow<'a, str>,
        value: RedactedValue<'a>,
    ) {
        let key = match key {
            Cow::Owned(scrubbed) => {
                let keys = self.keys;
                let taken = self.taken.get_or_insert_with(|| {
                    let mut taken = HashSet::with_capacity(keys.max(out.len() + 1));
                    taken.extend(out.iter().map(|(k, _)| k.to_string()));
                    taken
                });
                #[cfg(test)]
                {
                    self.probes += 1;
                }
                if taken.contains(&scrubbed) {
                    let next = self.next_suffix.entry(scrubbed.clone()).or_insert(2);
                    let renamed = loop {
                        let candidate = format!("{scrubbed}#{next}");
                        *next += 1;
                        #[cfg(test)]
                        {
                            self.probes += 1;
                        }
                        if !taken.contains(&candidate) {
                            break candidate;
                        }
                    };
                    taken.insert(renamed.clone());
                    Cow::Owned(renamed)
                } else {
                    taken.insert(scrubbed.clone());
                    Cow::Owned(scrubbed)
                }
            }
            Cow::Borrowed(key) => {
                if let Some(taken) = self.taken.as_mut() {
                    taken.insert(key.to_owned());
                }
                Cow::Borrowed(key)
            }
        };
        out.push((key, value));
    }

    /// Candidate names tested so far.
    #[cfg(test)]
    pub(crate) fn probes(&self) -> usize {
        self.probes
    }
}

/// The `allowed_fields` filter; `None` when there is nothing to filter.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Allowed<'f> {
    fields: &'f [String],
}

impl<'f> Allowed<'f> {
    /// The filter for `fields`: `None` is no filter; a list shows the fields
    /// it names, so an empty list shows none (one meaning everywhere: grant,
    /// invoke, firewall, expand).
    pub(crate) fn new(fields: Option<&'f [String]>) -> Option<Self> {
        fields.map(|fields| Self { fields })
    }

    fn len(&self) -> usize {
        self.fields.len()
    }

    fn contains(&self, key: &str) -> bool {
        self.fields.iter().any(|f| f == key)
    }
}

// ── The view ────────────────────────────────────────────────────────────────

/// An object entry of a [`RedactedValue`].
pub type Entry<'a> = (Cow<'a, str>, RedactedValue<'a>);

/// Redacted JSON that borrows from the original wherever redaction changed nothing.
#[derive(Debug, Clone, PartialEq)]
pub enum RedactedValue<'a> {
    /// `null`, a boolean or a number, unchanged.
    Scalar(&'a Value),
    /// A string (scrubbed, or a marker such as [`REDACTED`]).
    String(Cow<'a, str>),
    /// An array.
    Array(Vec<RedactedValue<'a>>),
    /// An object: the surviving entries, in the original order.
    Object(Vec<Entry<'a>>),
}

impl RedactedValue<'_> {
    /// Materialises the view as owned JSON.
    pub fn into_value(self) -> Value {
        match self {
            Self::Scalar(v) => v.clone(),
            Self::String(s) => Value::String(s.into_owned()),
            Self::Array(items) => {
                // Objects of one array usually share their keys: build them from a template.
                let mut template = None;
                let items = items
                    .into_iter()
                    .map(|item| match item {
                        Self::Object(mut entries) => {
                            Value::Object(row_from_entries(&mut entries, &mut template))
                        }
                        other => other.into_value(),
                    })
                    .collect();
                Value::Array(items)
            }
            Self::Object(entries) => Value::Object(entries_into_map(entries)),
        }
    }

    /// Copies the view into owned JSON.
    pub fn to_value(&self) -> Value {
        self.clone().into_value()
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }
}

/// Builds a table row from redacted entries (draining them). Rows usually
/// share their keys: the first row's layout is kept as a template whose
/// clone (keys copied in one pass, no ordered inserts) takes the next rows'
/// values when their keys match it exactly.
pub(crate) fn row_from_entries(
    entries: &mut Vec<Entry<'_>>,
    template: &mut Option<Map<String, Value>>,
) -> Map<String, Value> {
    if let Some(layout) = template.as_ref()
        && layout.len() == entries.len()
        && layout.keys().zip(entries.iter()).all(|(a, (b, _))| a == b)
    {
        let mut row = layout.clone();
        for (slot, (_, value)) in row.values_mut().zip(entries.drain(..)) {
            *slot = value.into_value();
        }
        return row;
    }
    let mut row = Map::new();
    for (key, value) in entries.drain(..) {
        row.insert(key.into_owned(), value.into_value());
    }
    if template.is_none() {
        *template = Some(row.keys().map(|k| (k.clone(), Value::Null)).collect());
    }
    row
}

/// Builds a JSON object from view entries.
pub(crate) fn entries_into_map(
    entries: Vec<(Cow<'_, str>, RedactedValue<'_>)>,
) -> Map<String, Value> {
    let mut map = Map::new();
    for (k, v) in entries {
        map.insert(k.into_owned(), v.into_value());
    }
    map
}

impl Serialize for RedactedValue<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Scalar(v) => v.serialize(serializer),
            Self::String(s) => serializer.serialize_str(s),
            Self::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Self::Object(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k.as_ref(), v)?;
                }
                map.end()
            }
        }
    }
}

/// The result of [`Redactor::redact`].
#[derive(Debug, Clone, PartialEq)]
pub struct Redaction<'a> {
    /// The redacted view.
    pub value: RedactedValue<'a>,
    /// One warning per kind of redaction (never quoting a redacted value).
    pub warnings: Vec<String>,
    /// What was redacted, by kind.
    pub counts: RedactionCounts,
}

/// How many redactions of each kind one traversal performed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct RedactionCounts {
    /// Fields dropped because they were not in `allowed_fields`.
    pub omitted_fields: usize,
    /// Values replaced because of a sensitive field name.
    pub sensitive_fields: usize,
    /// String values that lost sensitive fragments.
    pub scrubbed_strings: usize,
    /// Object keys that lost sensitive fragments.
    pub scrubbed_keys: usize,
    /// Numbers replaced because they matched a digit rule (a card number).
    pub redacted_numbers: usize,
    /// Arrays and objects withheld beyond `max_depth`.
    pub depth_withheld: usize,
    /// The pattern kinds found in strings, keys and numbers.
    pub pattern_kinds: PatternSet,
}

impl RedactionCounts {
    /// All redactions together.
    pub fn total(&self) -> usize {
        self.omitted_fields
            + self.sensitive_fields
            + self.scrubbed_strings
            + self.scrubbed_keys
            + self.redacted_numbers
            + self.depth_withheld
    }

    /// Adds `other` to these counts.
    pub fn merge(&mut self, other: &Self) {
        self.omitted_fields += other.omitted_fields;
        self.sensitive_fields += other.sensitive_fields;
        self.scrubbed_strings += other.scrubbed_strings;
        self.scrubbed_keys += other.scrubbed_keys;
        self.redacted_numbers += other.redacted_numbers;
        self.depth_withheld += other.depth_withheld;
        self.pattern_kinds = self.pattern_kinds.union(other.pattern_kinds);
    }
}

// ── Tally and warnings ──────────────────────────────────────────────────────

/// Occurrences per field name, bounded in the number of names it keeps.
#[derive(Debug, Default)]
struct NameCounts<'a> {
    named: Vec<(&'a str, usize)>,
    others: usize,
    total: usize,
}

impl<'a> NameCounts<'a> {
    /// The entry for `name` (created with count 0), or `None` when the list is full.
    fn slot(&mut self, name: &'a str) -> Option<usize> {
        if let Some(i) = self.named.iter().position(|(n, _)| *n == name) {
            return Some(i);
        }
        if self.named.len() < MAX_NAMED_FIELDS {
            self.named.push((name, 0));
            return Some(self.named.len() - 1);
        }
        None
    }

    /// Counts one occurrence.
    fn bump(&mut self, slot: Option<usize>) {
        self.total += 1;
        match slot.and_then(|i| self.named.get_mut(i)) {
            Some(entry) => entry.1 += 1,
            None => self.others += 1,
        }
    }
}

/// What one traversal redacted.
#[derive(Debug, Default)]
pub(crate) struct Tally<'a> {
    omitted: NameCounts<'a>,
    sensitive: NameCounts<'a>,
    strings: usize,
    string_kinds: PatternSet,
    keys: usize,
    key_kinds: PatternSet,
    numbers: usize,
    number_kinds: PatternSet,
    withheld: usize,
    cache: KeyCache<'a>,
    scrubbed_keys: Vec<String>,
}

impl Tally<'_> {
    pub(crate) fn counts(&self) -> RedactionCounts {
        RedactionCounts {
            omitted_fields: self.omitted.total,
            sensitive_fields: self.sensitive.total,
            scrubbed_strings: self.strings,
            scrubbed_keys: self.keys,
            redacted_numbers: self.numbers,
            depth_withheld: self.withheld,
            pattern_kinds: self
                .string_kinds
                .union(self.key_kinds)
                .union(self.number_kinds),
        }
    }

    /// One warning per field name and per kind of redaction, in a fixed order.
    pub(crate) fn warnings(&self, redactor: &Redactor) -> Vec<String> {
        let mut out = Vec::new();
        let field = |name: &str| display_name(redactor, name);
        for (name, n) in &self.omitted.named {
            out.push(format!(
                "Field '{}' omitted (not in allowed_fields){}.",
                field(name),
                times(*n)
            ));
        }
        if self.omitted.others > 0 {
            out.push(format!(
                "Other fields omitted (not in allowed_fields){}.",
                times(self.omitted.others)
            ));
        }
        for (name, n) in &self.sensitive.named {
            out.push(format!(
                "Field '{}' redacted (sensitive field name){}.",
                field(name),
                times(*n)
            ));
        }
        if self.sensitive.others > 0 {
            out.push(format!(
                "Other fields redacted (sensitive field name){}.",
                times(self.sensitive.others)
            ));
        }
        if self.strings == 1 {
            out.push(format!(
                "String value contained sensitive patterns ({}) and was redacted.",
                self.string_kinds
            ));
        } else if self.strings > 1 {
            out.push(format!(
                "{} string values contained sensitive patterns ({}) and were redacted.",
                self.strings, self.string_kinds
            ));
        }
        if self.keys == 1 {
            out.push(format!(
                "Field name contained sensitive patterns ({}) and was redacted.",
                self.key_kinds
            ));
        } else if self.keys > 1 {
            out.push(format!(
                "{} field names contained sensitive patterns ({}) and were redacted.",
                self.keys, self.key_kinds
            ));
        }
        if self.numbers == 1 {
            out.push(format!(
                "Number value matched sensitive patterns ({}) and was redacted.",
                self.number_kinds
            ));
        } else if self.numbers > 1 {
            out.push(format!(
                "{} number values matched sensitive patterns ({}) and were redacted.",
                self.numbers, self.number_kinds
            ));
        }
        if self.withheld > 0 {
            out.push(format!(
                "{} nested value(s) deeper than max_depth={} withheld.",
                self.withheld, redactor.max_depth
            ));
        }
        out
    }
}

fn times(n: usize) -> String {
    if n > 1 {
        format!(", {n} times")
    } else {
        String::new()
    }
}

/// A field name fit for a warning: scrubbed and cut short.
fn display_name(redactor: &Redactor, name: &str) -> String {
    let scrubbed = redactor.redact_str(name);
    match scrubbed.char_indices().nth(MAX_NAME_CHARS) {
        Some((cut, _)) => format!("{}…", scrubbed.get(..cut).unwrap_or_default()),
        None => scrubbed.into_owned(),
    }
}

// ── Key decisions ───────────────────────────────────────────────────────────

/// What the walk does with an object entry; name slots index the warning tally.
#[derive(Debug, Clone, Copy)]
enum KeyAction {
    /// Drop it (not in `allowed_fields`).
    Omit(Option<usize>),
    /// Replace the value (sensitive field name); keep the key, or its
    /// scrubbed form (an index into `Tally::scrubbed_keys`).
    Sensitive(Option<usize>, Option<(usize, PatternSet)>),
    /// Keep it as it is.
    Keep,
    /// Keep it under a scrubbed name (an index into `Tally::scrubbed_keys`).
    KeepScrubbed(usize, PatternSet),
}

/// How many distinct keys a traversal remembers decisions for.
const MAX_CACHED_KEYS: usize = 64;

/// A key's length and bytes, packed so that equal signatures mean equal
/// keys for keys of up to 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KeySig {
    len: usize,
    head: u64,
    tail: u64,
}

impl KeySig {
    #[inline(always)]
    fn of(key: &str) -> Self {
        let b = key.as_bytes();
        let (head, tail) = if let (Some(h), Some(t)) = (b.first_chunk::<8>(), b.last_chunk::<8>()) {
            (u64::from_le_bytes(*h), u64::from_le_bytes(*t))
        } else if let (Some(h), Some(t)) = (b.first_chunk::<4>(), b.last_chunk::<4>()) {
            let (h, t) = (u32::from_le_bytes(*h), u32::from_le_bytes(*t));
            (u64::from(h) | (u64::from(t) << 32), 0)
        } else {
            (b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)), 0)
        };
        Self {
            len: b.len(),
            head,
            tail,
        }
    }
}

#[derive(Debug)]
struct CachedKey<'a> {
    sig: KeySig,
    key: &'a str,
    filtered: bool,
    action: KeyAction,
}

/// Decisions for the keys seen so far; the rows of a table usually share
/// their keys, so each distinct key is examined once per traversal.
#[derive(Debug, Default)]
struct KeyCache<'a> {
    entries: Vec<CachedKey<'a>>,
    next: usize,
    /// Look-ups missed in a row.
    misses: usize,
}

/// After this many misses in a row, one miss in this many scans the cache.
const MAX_MISS_STREAK: usize = 32;

impl<'a> KeyCache<'a> {
    #[inline(always)]
    fn lookup(&mut self, key: &str, filtered: bool) -> Option<KeyAction> {
        let sig = KeySig::of(key);
        let hit = |e: &CachedKey<'_>| {
            e.sig == sig && e.filtered == filtered && (sig.len <= 16 || e.key == key)
        };
        // Keys tend to come in the same order: try the slot after the last hit first.
        let index = match self.entries.get(self.next) {
            Some(e) if hit(e) => self.next,
            _ => {
                // A long run of misses (objects of ever new keys): scan the
                // full cache only now and then, so that a miss costs a
                // constant, not a scan of every cached key.
                if self.misses >= MAX_MISS_STREAK && self.misses % MAX_MISS_STREAK != 0 {
                    self.misses += 1;
                    return None;
                }
                match self.entries.iter().position(hit) {
                    Some(index) => index,
                    None => {
                        self.misses += 1;
                        return None;
                    }
                }
            }
        };
        self.misses = 0;
        self.next = index + 1;
        self.entries.get(index).map(|e| e.action)
    }

    fn insert(&mut self, key: &'a str, filtered: bool, action: KeyAction) {
        if self.entries.len() < MAX_CACHED_KEYS {
            self.entries.push(CachedKey {
                sig: KeySig::of(key),
                key,
                filtered,
                action,
            });
            self.next = self.entries.len();
        }
    }
}
