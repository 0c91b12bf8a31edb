//! A byte pre-scan that proves most strings cannot match most patterns
//! without running a regex at all.
//!
//! Conservative: a kind left out provably cannot match the text (nor can it
//! after earlier passes replaced fragments with [`REDACTED`](super::REDACTED),
//! which holds no digit, `@`, separator or key word). The well-known secret
//! formats, e-mail addresses, credentialed URLs, JWTs and credential
//! assignments have ASCII-only, case-sensitive (or ASCII-case-insensitive)
//! patterns, so their byte triggers are exact whatever else the text holds;
//! for the digit kinds and bearer tokens (Unicode digits, white space and
//! case folding) any non-ASCII byte makes them candidates.

use super::names::CREDENTIAL_TRIGGERS;
use super::patterns::{PatternKind, PatternSet};

const C_DIGIT: u8 = 1;
const C_AT: u8 = 1 << 1;
const C_SPACE: u8 = 1 << 2; // white space or another control character
const C_ASSIGN: u8 = 1 << 3; // '=' or ':'
const C_DOT: u8 = 1 << 4;
const C_NON_ASCII: u8 = 1 << 5;
const C_PLUS: u8 = 1 << 6;
const C_DASH: u8 = 1 << 7;

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
        } else if b == b'+' {
            C_PLUS
        } else if b == b'-' {
            C_DASH
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

/// The pattern kinds that could possibly match `text`.
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
    let mut set = PatternSet::EMPTY;
    if classes & C_AT != 0 {
        set.insert(PatternKind::Email);
        if contains(bytes, b"://") {
            set.insert(PatternKind::ConnectionString);
        }
    }
    if classes & C_NON_ASCII != 0 {
        // Unicode digits and white space: left to the regexes.
        set.insert(PatternKind::CardNumber);
        set.insert(PatternKind::Ssn);
        set.insert(PatternKind::Phone);
        set.insert(PatternKind::BearerToken);
    } else if digits >= 8 && (digits >= 13 || classes & C_PLUS != 0 || has_long_runs(bytes)) {
        // A phone number has at least 8 digits, an SSN 9, a card number 13.
        set = set.union(digit_shapes(bytes));
    }
    if classes & (C_SPACE | C_ASSIGN) != 0 {
        set = set.union(keywords(
            bytes,
            classes & C_SPACE != 0,
            classes & C_ASSIGN != 0,
        ));
    }
    if classes & C_DOT != 0 && contains(bytes, b"eyJ") {
        set.insert(PatternKind::Jwt);
    }
    set.union(formats(bytes, classes & C_DASH != 0))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn starts_with_ci(s: &[u8], prefix: &[u8]) -> bool {
    s.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// Bearer tokens need `bearer` and white space; credential assignments need
/// `=` or `:` and one of the credential trigger words, or white space and
/// `api`/`access` (`access_key ABCD…`).
fn keywords(bytes: &[u8], has_space: bool, has_assign: bool) -> PatternSet {
    let mut set = PatternSet::EMPTY;
    for (i, &b) in bytes.iter().enumerate() {
        // `b | 0x20` is a lower-case letter only for letters.
        let first = b | 0x20;
        if !matches!(first, b'a' | b'b' | b'c' | b'k' | b'p' | b's' | b't') {
            continue;
        }
        let rest = bytes.get(i..).unwrap_or_default();
        if first == b'b' {
            if has_space && starts_with_ci(rest, b"bearer") {
                set.insert(PatternKind::BearerToken);
            }
            continue;
        }
        if has_assign
            && CREDENTIAL_TRIGGERS
                .iter()
                .any(|word| word.first() == Some(&first) && starts_with_ci(rest, word))
        {
            set.insert(PatternKind::ApiKey);
        }
        if has_space && (starts_with_ci(rest, b"api") || starts_with_ci(rest, b"access")) {
            set.insert(PatternKind::ApiKey);
        }
    }
    set
}

/// The well-known secret formats, by their fixed prefixes (exact: their
/// patterns are ASCII and case-sensitive).
fn formats(bytes: &[u8], has_dash: bool) -> PatternSet {
    let mut set = PatternSet::EMPTY;
    for (i, &b) in bytes.iter().enumerate() {
        let rest = bytes.get(i..).unwrap_or_default();
        let starts = |prefix: &[u8]| rest.starts_with(prefix);
        match b {
            b'-' if starts(b"-----BEGIN") => set.insert(PatternKind::PrivateKey),
            b'A' if starts(b"AKIA")
                || starts(b"ASIA")
                || starts(b"ABIA")
                || starts(b"ACCA")
                || starts(b"A3T") =>
            {
                set.insert(PatternKind::AwsAccessKey);
            }
            b'A' if starts(b"AIza") => set.insert(PatternKind::GoogleApiKey),
            b'g' if starts(b"github_pat_")
                || (starts(b"gh")
                    && matches!(rest.get(2), Some(b'p' | b'o' | b'u' | b's' | b'r'))
                    && rest.get(3) == Some(&b'_')) =>
            {
                set.insert(PatternKind::GithubToken);
            }
            b'x' if starts(b"xox") || starts(b"xapp-") => set.insert(PatternKind::SlackToken),
            b'h' if starts(b"hooks.slack.com/") => set.insert(PatternKind::SlackToken),
            b's' | b'r' if starts(b"sk_") || starts(b"rk_") => {
                set.insert(PatternKind::StripeKey);
            }
            b's' if has_dash && starts(b"sk-") => {
                set.insert(PatternKind::OpenAiKey);
                if starts(b"sk-ant-") {
                    set.insert(PatternKind::AnthropicKey);
                }
            }
            _ => {}
        }
    }
    set
}

/// Whether `bytes` holds a run of at least 6 digits or two runs of at least
/// 3: phone numbers (but for the international forms, which need a `+`) and
/// SSNs need one or the other.
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
/// - phone: a run of at least 6 digits, two runs of at least 3 digits
///   joined by one separator (white space, `.` or `-`), or at least 8 digits
///   in runs joined by such separators after a `+`;
/// - card: at least 13 digits in runs joined by one space, two spaces, `-`,
///   `.`, `/` or `_`;
/// - SSN: runs of 3+, 2 and 4+ digits joined by one space, `-` or `.`.
fn digit_shapes(bytes: &[u8]) -> PatternSet {
    let mut shapes = Shapes::default();
    let (mut gap, mut g0, mut g1, mut last_byte) = (0u32, 0u8, 0u8, 0u8);
    for &b in bytes {
        if b.is_ascii_digit() {
            if shapes.run == 0 {
                shapes.start_run(gap, g0, g1, last_byte);
            }
            shapes.digit();
        } else {
            if shapes.run > 0 {
                shapes.end_run();
                gap = 0;
            }
            match gap {
                0 => g0 = b,
                1 => g1 = b,
                _ => {}
            }
            gap += 1;
        }
        last_byte = b;
    }
    if shapes.run > 0 {
        shapes.end_run();
    }
    shapes.found
}

/// The digit runs seen so far, and how they are joined.
#[derive(Default)]
struct Shapes {
    found: PatternSet,
    /// The previous two runs, and whether the previous one joined its
    /// predecessor as an SSN's groups are joined.
    last: u32,
    before_last: u32,
    last_ssn_join: bool,
    /// The current run, and how it joined the previous one.
    run: u32,
    loose: bool,
    ssn_join: bool,
    /// Digits of the clusters the current run belongs to.
    card_cluster: u32,
    loose_cluster: u32,
    /// Whether the loose cluster began right after a `+`.
    plus_cluster: bool,
}

impl Shapes {
    /// A run begins after a gap of `gap` bytes (the first two `g0`, `g1`;
    /// the last `prev`).
    #[inline(always)]
    fn start_run(&mut self, gap: u32, g0: u8, g1: u8, prev: u8) {
        let joined = self.last > 0;
        self.loose = joined && gap == 1 && (is_space_byte(g0) || g0 == b'.' || g0 == b'-');
        self.ssn_join = joined && gap == 1 && matches!(g0, b' ' | b'-' | b'.');
        let card_join = joined
            && ((gap == 1 && matches!(g0, b' ' | b'-' | b'.' | b'/' | b'_'))
                || (gap == 2 && g0 == b' ' && g1 == b' '));
        if !card_join {
            self.card_cluster = 0;
        }
        if !self.loose {
            self.loose_cluster = 0;
            self.plus_cluster = prev == b'+';
        }
    }

    #[inline(always)]
    fn digit(&mut self) {
        self.run += 1;
        self.card_cluster += 1;
        self.loose_cluster += 1;
    }

    #[inline(always)]
    fn end_run(&mut self) {
        let run = self.run;
        if run >= 6
            || (self.loose && self.last >= 3 && run >= 3)
            || (self.plus_cluster && self.loose_cluster >= 8)
        {
            self.found.insert(PatternKind::Phone);
        }
        if self.card_cluster >= 13 {
            self.found.insert(PatternKind::CardNumber);
        }
        if self.ssn_join
            && self.last_ssn_join
            && self.last == 2
            && self.before_last >= 3
            && run >= 4
        {
            self.found.insert(PatternKind::Ssn);
        }
        self.before_last = self.last;
        self.last = run;
        self.last_ssn_join = self.ssn_join;
        self.run = 0;
    }
}
