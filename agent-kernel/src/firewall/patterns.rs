//! The eight kinds of sensitive text the redactor removes from strings, the
//! compiled regular expressions behind them, and a byte pre-scan that proves
//! most strings cannot match any of them without running a regex at all.
//!
//! Semantics follow the reference's sequential substitution passes (e-mail,
//! phone, card, SSN, bearer, JWT, API key, connection string, in that order,
//! each pass running on the output of the previous one). Deliberate
//! differences, all in the direction of removing more:
//! - card numbers are 13 to 19 digits long (the reference stops at 16, so a
//!   19-digit PAN survived);
//! - besides the reference's `api_key`/`api_token`/`access_key` forms, the
//!   API-key pass also removes values assigned to `token`, `secret`,
//!   `secret_key`, `private_key`, `password`, `passwd` and `pwd`
//!   (`token: …`, `"password": "…"`, `client_secret=…`);
//! - the password of a connection string may contain `@` (the whole
//!   `user:password` part up to the last `@` of the authority is removed);
//!   the host is not part of the match, so a credentialed URL right after
//!   another one (`a://u:p@h1,b://v:q@h2`, `…?next=https://v:q@h2/`) is
//!   found in the same pass (the reference's `@\S+` swallowed it);
//! - a phone number may directly follow another one (`+1-555-123-4567(020)
//!   7946-0958`): the end of a replacement counts as a boundary;
//! - phone numbers also come in the short international form
//!   `+<country code>-<3 digits>-<4 digits>` (`+1-555-1724`, the same
//!   separator twice: `-`, `.` or white space), and a number may end a
//!   sentence (`call 555-123-4567.`): a `.` after it only prevents a match
//!   when more than white space follows (`555-123-4567.txt`, `…4567.89`).

use std::borrow::Cow;
use std::fmt;
use std::sync::LazyLock;

use regex::{Captures, NoExpand, Regex};

/// The marker that replaces every redacted value or text fragment.
pub const REDACTED: &str = "[REDACTED]";

/// Rounds of all passes [`Patterns::scrub`] runs at most before it stops
/// (one round normally suffices; a second confirms the fixed point).
const MAX_SCRUB_ROUNDS: usize = 4;

/// A kind of sensitive text recognised inside string values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PatternKind {
    /// An e-mail address (`user@example.com`).
    Email,
    /// A phone number (`+1-555-123-4567`, `(020) 7946-0958`, `+1-555-1724`).
    Phone,
    /// A payment card number: 13 to 19 digits, optionally separated by single spaces or dashes.
    CardNumber,
    /// A US social security number (`123-45-6789`).
    Ssn,
    /// An HTTP bearer token (`Bearer abc…`).
    BearerToken,
    /// A JSON Web Token (`eyJ….eyJ….…`).
    Jwt,
    /// A credential assignment (`api_key=…`, `token: …`, `password=…`); the name is kept.
    ApiKey,
    /// Credentials embedded in a URL or connection string (`scheme://user:pass@host`); scheme and host are kept.
    ConnectionString,
}

impl PatternKind {
    /// Every kind, in the order the passes run.
    pub const ALL: [Self; 8] = [
        Self::Email,
        Self::Phone,
        Self::CardNumber,
        Self::Ssn,
        Self::BearerToken,
        Self::Jwt,
        Self::ApiKey,
        Self::ConnectionString,
    ];

    /// A stable lower-case name, suitable for warnings and telemetry labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Phone => "phone",
            Self::CardNumber => "card_number",
            Self::Ssn => "ssn",
            Self::BearerToken => "bearer_token",
            Self::Jwt => "jwt",
            Self::ApiKey => "api_key",
            Self::ConnectionString => "connection_string",
        }
    }

    const fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for PatternKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of [`PatternKind`]s (a small bit set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PatternSet(u8);

impl PatternSet {
    /// The empty set.
    pub const EMPTY: Self = Self(0);
    /// Every kind.
    pub const ALL: Self = Self(0xff);

    /// Whether `kind` is in the set.
    pub const fn contains(self, kind: PatternKind) -> bool {
        self.0 & kind.bit() != 0
    }

    /// Adds `kind` to the set.
    pub fn insert(&mut self, kind: PatternKind) {
        self.0 |= kind.bit();
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The union of two sets.
    #[must_use]
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// The kinds in the set, in pass order.
    pub fn iter(self) -> impl Iterator<Item = PatternKind> {
        PatternKind::ALL
            .into_iter()
            .filter(move |k| self.contains(*k))
    }
}

impl FromIterator<PatternKind> for PatternSet {
    fn from_iter<I: IntoIterator<Item = PatternKind>>(iter: I) -> Self {
        let mut set = Self::EMPTY;
        for kind in iter {
            set.insert(kind);
        }
        set
    }
}

impl fmt::Display for PatternSet {
    /// Comma-separated kind names, e.g. `email, phone`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, kind) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(kind.as_str())?;
        }
        Ok(())
    }
}

// ── Compiled patterns ────────────────────────────────────────────────────────

const EMAIL_RE: &str = r"[a-zA-Z0-9_.+\-]+@[a-zA-Z0-9\-]+\.[a-zA-Z0-9\-.]+";
/// The reference's phone pattern without its look-arounds, plus the short
/// international form (`+1-555-1724`, one separator used twice). The
/// look-behind (`(?<!\d)(?<![./])`) is checked in code; the look-ahead
/// (`(?!\d)(?![./])`, relaxed to let a sentence end with `.`) is consumed
/// as the terminator, capture group 1 (the end, one character, or a `.`
/// with the white-space character after it), which stays in the text.
const PHONE_RE: &str = concat!(
    r"(?:(?:\+\d{1,3}[\s.\-])?(?:\(\d{2,4}\)[\s.\-]?|\d{2,4}[\s.\-])\d{3,4}[\s.\-]?\d{3,5}",
    r"|\+\d{1,3}(?:-\d{3}-|\.\d{3}\.|\s\d{3}\s)\d{4})",
    r"($|[^\d./]|\.(?:$|\s))",
);
/// A UUID (8-4-4-4-12 hex digits). Its digit groups can take the shape of
/// a phone number (`…-a923-6494108e21ac`) or, for the nil UUID, of a card
/// number, but a UUID is an identifier: the digit passes (phone, card, SSN)
/// leave UUIDs whole.
const UUID_RE: &str =
    r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b";
const CARD_RE: &str = r"\b(?:\d[ \-]?){13,19}\b";
const SSN_RE: &str = r"\b\d{3}[\- ]\d{2}[\- ]\d{4}\b";
const BEARER_RE: &str = r"(?i)Bearer\s+[A-Za-z0-9\-._~+/]+=*";
const JWT_RE: &str = r"eyJ[A-Za-z0-9_\-]+\.eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+";
const API_KEY_RE: &str = concat!(
    r"(?i)((?:api[_\-]?key|apikey|api[_\-]?token|access[_\-]?key)(?:\s*[=:]\s*|\s+))[A-Za-z0-9\-._~+/]{8,}",
    r#"|((?:token|secret(?:[_\-]?key)?|private[_\-]?key|passw(?:or)?d|pwd)["']?\s*[=:]\s*["']?)[^\s"',;&]+"#,
);
/// Scheme (group 1) and `user:password@`, up to the last `@` before the
/// first `/` or white space. The host is not consumed: the search goes on
/// right after the `@`, so a second credentialed URL glued to the first
/// one's host (`…@h1,mysql://u:p@h2`) is found in the same pass.
const CONN_STR_RE: &str = r"([a-zA-Z][a-zA-Z0-9+\-.]*://)[^:@/\s]+:[^/\s]+@";

/// The compiled patterns, shared by every redactor in the process.
///
/// A pattern that failed to compile (impossible for these constants; the
/// tests compile each one) is `None`, and its pass then fails closed: a
/// string the pre-scan flags for it is replaced by [`REDACTED`] entirely.
#[derive(Debug)]
pub(crate) struct Patterns {
    email: Option<Regex>,
    phone: Option<Regex>,
    uuid: Option<Regex>,
    card: Option<Regex>,
    ssn: Option<Regex>,
    bearer: Option<Regex>,
    jwt: Option<Regex>,
    api_key: Option<Regex>,
    conn_str: Option<Regex>,
}

pub(crate) static PATTERNS: LazyLock<Patterns> = LazyLock::new(Patterns::compile);

impl Patterns {
    fn compile() -> Self {
        let re = |p: &str| Regex::new(p).ok();
        Self {
            email: re(EMAIL_RE),
            phone: re(PHONE_RE),
            uuid: re(UUID_RE),
            card: re(CARD_RE),
            ssn: re(SSN_RE),
            bearer: re(BEARER_RE),
            jwt: re(JWT_RE),
            api_key: re(API_KEY_RE),
            conn_str: re(CONN_STR_RE),
        }
    }

    /// Whether every pattern compiled.
    #[cfg(test)]
    pub(crate) fn all_compiled(&self) -> bool {
        [
            &self.email,
            &self.phone,
            &self.uuid,
            &self.card,
            &self.ssn,
            &self.bearer,
            &self.jwt,
            &self.api_key,
            &self.conn_str,
        ]
        .iter()
        .all(|r| r.is_some())
    }

    /// Removes every sensitive fragment from `text`; reports which kinds were found.
    pub(crate) fn scrub<'a>(&self, text: &'a str) -> (Cow<'a, str>, PatternSet) {
        let candidates = candidates(text);
        if candidates.is_empty() {
            return (Cow::Borrowed(text), PatternSet::EMPTY);
        }
        self.scrub_with(text, candidates)
    }

    /// Runs the passes in `candidates` (in pass order) over `text`.
    pub(crate) fn scrub_with<'a>(
        &self,
        text: &'a str,
        candidates: PatternSet,
    ) -> (Cow<'a, str>, PatternSet) {
        let mut current = Cow::Borrowed(text);
        let mut found = PatternSet::EMPTY;
        let mut candidates = candidates;
        // A replacement can create a word boundary that an earlier pass
        // needed (a bearer token glued to a card number), so repeat the
        // passes until nothing changes: the result is a fixed point, and
        // redacting it again changes nothing. Bounded, since every round that
        // changes something replaces text with markers no pattern matches.
        for _round in 0..MAX_SCRUB_ROUNDS {
            let mut changed = false;
            for kind in candidates.iter() {
                if let Some(replaced) = self.pass(kind, &current) {
                    current = Cow::Owned(replaced);
                    found.insert(kind);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
            candidates = self::candidates(&current);
            if candidates.is_empty() {
                break;
            }
        }
        (current, found)
    }

    /// One substitution pass; `None` when nothing matched.
    fn pass(&self, kind: PatternKind, text: &str) -> Option<String> {
        let regex = match kind {
            PatternKind::Email => &self.email,
            PatternKind::Phone => &self.phone,
            PatternKind::CardNumber => &self.card,
            PatternKind::Ssn => &self.ssn,
            PatternKind::BearerToken => &self.bearer,
            PatternKind::Jwt => &self.jwt,
            PatternKind::ApiKey => &self.api_key,
            PatternKind::ConnectionString => &self.conn_str,
        };
        let Some(regex) = regex else {
            // Fail closed.
            return (text != REDACTED).then(|| REDACTED.to_owned());
        };
        let uuids = || uuid_spans(self.uuid.as_ref(), text);
        let replaced = match kind {
            PatternKind::Phone => return replace_phones(regex, &uuids(), text),
            PatternKind::CardNumber | PatternKind::Ssn => {
                let uuids = uuids();
                if !uuids.is_empty() {
                    return replace_outside(regex, &uuids, text);
                }
                regex.replace_all(text, NoExpand(REDACTED))
            }
            PatternKind::ApiKey => regex.replace_all(text, |caps: &Captures<'_>| {
                let name = caps.get(1).or_else(|| caps.get(2));
                format!("{}{REDACTED}", name.map_or("", |m| m.as_str()))
            }),
            PatternKind::ConnectionString => regex.replace_all(text, |caps: &Captures<'_>| {
                let scheme = caps.get(1).map_or("", |m| m.as_str());
                format!("{scheme}{REDACTED}@")
            }),
            _ => regex.replace_all(text, NoExpand(REDACTED)),
        };
        match replaced {
            Cow::Owned(s) => Some(s),
            Cow::Borrowed(_) => None,
        }
    }
}

/// The phone pass, with the reference's look-behind checked here: a match may
/// not start right after an ASCII digit, `.` or `/` (if it does, the search
/// resumes one character later, as a backtracking engine would). The end of
/// the previous replacement is a boundary: what precedes the match there is
/// the `]` of [`REDACTED`], not the original text's last digit, so adjacent
/// numbers (`+1-555-123-4567(020) 7946-0958`) all go in one pass. A match
/// that overlaps a UUID is not a phone number (the search resumes one
/// character later, as for the look-behind).
fn replace_phones(regex: &Regex, uuids: &[(usize, usize)], text: &str) -> Option<String> {
    let mut locs = regex.capture_locations();
    let mut out: Option<String> = None;
    let mut copied = 0; // bytes of `text` already handled
    let mut at = 0; // where the next search starts
    while at <= text.len() {
        let Some(m) = regex.captures_read_at(&mut locs, text, at) else {
            break;
        };
        let start = m.start();
        let after_replacement = out.is_some() && start == copied;
        let before = text.get(..start).and_then(|s| s.chars().next_back());
        if overlaps(uuids, start, m.end())
            || !after_replacement
                && before.is_some_and(|c| c.is_ascii_digit() || c == '.' || c == '/')
        {
            // Look-behind failed here; try from the next character.
            let step = text
                .get(start..)
                .and_then(|s| s.chars().next())
                .map_or(1, char::len_utf8);
            at = start + step;
            continue;
        }
        // Group 1 is the consumed look-ahead; it stays in the text. (It
        // always takes part in a match; without it, the whole match goes.)
        let end = locs.get(1).map_or(m.end(), |(s, _)| s);
        let buf = out.get_or_insert_with(|| String::with_capacity(text.len()));
        buf.push_str(text.get(copied..start).unwrap_or_default());
        buf.push_str(REDACTED);
        copied = end;
        at = end;
    }
    let mut buf = out?;
    buf.push_str(text.get(copied..).unwrap_or_default());
    Some(buf)
}

/// The byte spans of the UUIDs in `text` (only texts with the four hyphens of
/// one are searched).
fn uuid_spans(uuid: Option<&Regex>, text: &str) -> Vec<(usize, usize)> {
    match uuid {
        Some(uuid) if text.bytes().filter(|&b| b == b'-').nth(3).is_some() => {
            uuid.find_iter(text).map(|m| (m.start(), m.end())).collect()
        }
        _ => Vec::new(),
    }
}

/// Whether `start..end` overlaps one of `spans`.
fn overlaps(spans: &[(usize, usize)], start: usize, end: usize) -> bool {
    spans.iter().any(|&(s, e)| start < e && end > s)
}

/// `regex`'s matches replaced by [`REDACTED`], except those that overlap
/// one of `keep` (the search resumes one character after such a match's
/// start); `None` when nothing was replaced.
fn replace_outside(regex: &Regex, keep: &[(usize, usize)], text: &str) -> Option<String> {
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut at = 0;
    while at <= text.len() {
        let Some(m) = regex.find_at(text, at) else {
            break;
        };
        let step = text
            .get(m.start()..)
            .and_then(|s| s.chars().next())
            .map_or(1, char::len_utf8);
        if overlaps(keep, m.start(), m.end()) || m.is_empty() {
            at = m.start() + step;
            continue;
        }
        let buf = out.get_or_insert_with(|| String::with_capacity(text.len()));
        buf.push_str(text.get(copied..m.start()).unwrap_or_default());
        buf.push_str(REDACTED);
        copied = m.end();
        at = m.end();
    }
    let mut buf = out?;
    buf.push_str(text.get(copied..).unwrap_or_default());
    Some(buf)
}

// ── Pre-scan ────────────────────────────────────────────────────────────────

const C_DIGIT: u8 = 1;
const C_AT: u8 = 1 << 1;
const C_SPACE: u8 = 1 << 2; // white space or another control character
const C_ASSIGN: u8 = 1 << 3; // '=' or ':'
const C_DOT: u8 = 1 << 4;
const C_NON_ASCII: u8 = 1 << 5;

static CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = if b.is_ascii_digit() {
            C_DIGIT
        } else if b == b'@' {
            C_AT
        } else if b <= b' ' {
            C_SPACE
        } else if b == b'=' || b == b':' {
            C_ASSIGN
        } else if b == b'.' {
            C_DOT
        } else if b >= 0x80 {
            C_NON_ASCII
        } else {
            0
        };
        i += 1;
    }
    table
};

fn is_space_byte(b: u8) -> bool {
    b <= b' '
}

/// The pattern kinds that could possibly match `text`. Conservative: a kind
/// left out provably cannot match (nor can it after earlier passes replaced
/// fragments with [`REDACTED`], which holds no digit, `@`, separator or
/// key word). Any non-ASCII byte makes every kind a candidate (Unicode
/// digits, white space and case folding are then left to the regexes).
#[inline]
pub(crate) fn candidates(text: &str) -> PatternSet {
    let bytes = text.as_bytes();
    let mut classes = 0u8;
    let mut digits = 0usize;
    for &b in bytes {
        let class = CLASS[usize::from(b)];
        classes |= class;
        digits += usize::from(class & C_DIGIT);
    }
    if classes & C_NON_ASCII != 0 {
        return PatternSet::ALL;
    }
    let mut set = PatternSet::EMPTY;
    if classes & C_AT != 0 {
        set.insert(PatternKind::Email);
        if contains(bytes, b"://") {
            set.insert(PatternKind::ConnectionString);
        }
    }
    // A phone number has at least 8 digits, an SSN 9, a card number 13.
    if digits >= 8 && (digits >= 13 || has_long_runs(bytes)) {
        set = set.union(digit_shapes(bytes));
    }
    if classes & (C_SPACE | C_ASSIGN) != 0 {
        set = set.union(keywords(bytes, classes & C_SPACE != 0));
    }
    if classes & C_DOT != 0 && contains(bytes, b"eyJ") {
        set.insert(PatternKind::Jwt);
    }
    set
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn starts_with_ci(s: &[u8], prefix: &[u8]) -> bool {
    s.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// Bearer tokens need `bearer` and white space; credential assignments need
/// one of their key words and a separator.
fn keywords(bytes: &[u8], has_space: bool) -> PatternSet {
    let mut set = PatternSet::EMPTY;
    for (i, &b) in bytes.iter().enumerate() {
        // `b | 0x20` is a lower-case letter only for letters.
        let first = b | 0x20;
        if !matches!(first, b'a' | b'b' | b'p' | b's' | b't') {
            continue;
        }
        let rest = bytes.get(i..).unwrap_or_default();
        let second = rest.get(1).map_or(0, |c| c | 0x20);
        let keywords: &[&[u8]] = match (first, second) {
            (b'a', b'p') => &[b"api"],
            (b'a', b'c') => &[b"access"],
            (b't', b'o') => &[b"token"],
            (b's', b'e') => &[b"secret"],
            (b'p', b'a') => &[b"passw"],
            (b'p', b'w') => &[b"pwd"],
            (b'p', b'r') => &[b"private"],
            (b'b', b'e') if has_space => {
                if starts_with_ci(rest, b"bearer") {
                    set.insert(PatternKind::BearerToken);
                }
                continue;
            }
            _ => continue,
        };
        if keywords.iter().any(|k| starts_with_ci(rest, k)) {
            set.insert(PatternKind::ApiKey);
        }
    }
    set
}

/// Whether `bytes` holds a run of at least 6 digits or two runs of at least
/// 3: phone numbers and SSNs need one or the other.
fn has_long_runs(bytes: &[u8]) -> bool {
    let (mut run, mut long_runs) = (0u32, 0u32);
    for &b in bytes {
        run = if b.is_ascii_digit() { run + 1 } else { 0 };
        long_runs += u32::from(run == 3);
        if run >= 6 {
            return true;
        }
    }
    long_runs >= 2
}

/// Phone, card and SSN candidates from the shape of the ASCII digit runs:
/// - phone: a run of at least 6 digits, or two runs of at least 3 digits
///   joined by one separator (white space, `.` or `-`);
/// - card: at least 13 digits in runs joined by single spaces or dashes;
/// - SSN: runs of 3+, 2 and 4+ digits joined by single spaces or dashes.
fn digit_shapes(bytes: &[u8]) -> PatternSet {
    /// Lengths of the digit runs seen so far and how they are joined.
    #[derive(Default)]
    struct Runs {
        found: PatternSet,
        last: u32,
        before_last: u32,
        last_tight: bool,
        cluster: u32,
    }
    impl Runs {
        #[inline(always)]
        fn end(&mut self, len: u32, loose: bool, tight: bool) {
            if len >= 6 || (loose && self.last >= 3 && len >= 3) {
                self.found.insert(PatternKind::Phone);
            }
            if self.cluster >= 13 {
                self.found.insert(PatternKind::CardNumber);
            }
            if tight && self.last_tight && self.last == 2 && self.before_last >= 3 && len >= 4 {
                self.found.insert(PatternKind::Ssn);
            }
            self.before_last = self.last;
            self.last = len;
            self.last_tight = tight;
        }
    }

    let mut runs = Runs::default();
    let (mut run, mut gap, mut sep) = (0u32, 0u32, 0u8);
    let (mut loose, mut tight) = (false, false);
    for &b in bytes {
        if b.is_ascii_digit() {
            if run == 0 {
                let single = gap == 1 && runs.last > 0;
                loose = single && (is_space_byte(sep) || sep == b'.' || sep == b'-');
                tight = single && (sep == b' ' || sep == b'-');
                if !tight {
                    runs.cluster = 0;
                }
            }
            run += 1;
            runs.cluster += 1;
        } else {
            if run > 0 {
                runs.end(run, loose, tight);
                run = 0;
                gap = 0;
            }
            gap += 1;
            sep = b;
        }
    }
    if run > 0 {
        runs.end(run, loose, tight);
    }
    runs.found
}
