//! The digit passes: payment card numbers, SSNs and phone numbers, each
//! redacted whole.
//!
//! Each pass finds candidates with its regular expression and then checks,
//! in code, what the regex crate cannot express (look-arounds, the Luhn
//! checksum, digit counts):
//!
//! - **card**: 13 to 19 digits, bare or in groups joined by one kind of
//!   separator (a space, two spaces, `-`, `.`, `/` or `_`; groups of four
//!   with a shorter last group, or 4-6-4/5 as on Amex and Diners cards),
//!   passing the Luhn check, and not starting with `0` or `1` (no payment
//!   network issues those; epoch timestamps in milliseconds, microseconds and
//!   nanoseconds do). Digits other than ASCII ones skip the checks (fail
//!   closed). A prefix glued to the number (`cc4111…`, `card_4111…`) does
//!   not protect it;
//! - **SSN**: `ddd-dd-dddd`, `ddd dd dddd` or `ddd.dd.dddd`, glued prefixes
//!   (`ssn123-45-6789`, `ssn_123-45-6789`) included;
//! - **phone**: the reference's forms, the short international form
//!   (`+1-555-1724`), international numbers written in groups
//!   (`+33 1 23 45 67 89`) and E.164 (`+15551234567`): 8 or more digits, at
//!   most 15 after a `+`; a number whose only separator is one `.` is a
//!   decimal number (`37.7749295`), and one of two groups whose first has no
//!   trunk `0` is an identifier (`2024-000123`), not a phone number.
//!
//! A card number or an SSN may not touch another digit, nor a `.` that
//! touches one (`0.30000000000000004`, `v1.123.45.6789`); a phone number may
//! not follow a digit, `.` or `/` (unless right after a replacement) and may
//! be followed by a `.` only at the end of a sentence.
//!
//! **Whole redactions.** A replacement grows over every further group of
//! digits joined to it by a separator the number itself uses (`4111 1111
//! 1111 1112`, a Luhn failure, goes whole as a phone-shaped number instead of
//! leaving `1112`; `555-123-4567-89` goes whole), so no group of digits of a
//! redacted number survives beside the marker.
//!
//! **Identifiers are not numbers.** A match that overlaps a UUID
//! (8-4-4-4-12 hex digits) or a run of 32 or more hex digits with a letter
//! among them (a digest: MD5, SHA-1, SHA-256, …) is left alone.

use regex::Regex;

use super::patterns::REDACTED;

#[cfg(test)]
thread_local! {
    /// Candidates the digit passes rejected on this thread: tests count the
    /// work a text costs with it.
    pub(crate) static REJECTED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Which digit pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DigitKind {
    Card,
    Ssn,
    Phone,
}

/// Separators that may join the groups of a card number (regex syntax; two
/// spaces count as one separator).
const CARD_SEPARATORS: [&str; 6] = [" ", "  ", "-", r"\.", "/", "_"];

/// The card pattern: bare digits, then for each separator the 4-4-4-…
/// grouping (the last group 1 to 4 digits) and the 4-6-4/5 grouping. The
/// digit count (13 to 19), the Luhn check and the boundaries are checked in
/// code.
pub(crate) fn card_pattern() -> String {
    let mut pattern = String::from(r"\d{13,19}");
    for sep in CARD_SEPARATORS {
        pattern.push_str(&format!(
            r"|\d{{4}}(?:{sep}\d{{4}}){{2,3}}(?:{sep}\d{{1,4}})?|\d{{4}}{sep}\d{{6}}{sep}\d{{4,5}}"
        ));
    }
    pattern
}

/// SSNs: `-` and space (mixed, as in the reference) or dots.
pub(crate) const SSN_RE: &str = r"\d{3}[\- ]\d{2}[\- ]\d{4}|\d{3}\.\d{2}\.\d{4}";

/// The reference's phone pattern without its look-arounds, the short
/// international form (`+1-555-1724`, one separator used twice),
/// international numbers in groups joined by one kind of separator
/// (`+33 1 23 45 67 89`) and E.164
/// (`+15551234567`). The look-behind (`(?<!\d)(?<![./])`) is checked in code;
/// the look-ahead (`(?!\d)(?![./])`, relaxed to let a sentence end with `.`)
/// is consumed as the terminator, capture group 1 (the end, one character,
/// or a `.` with the white-space character after it), which stays in the text.
pub(crate) const PHONE_RE: &str = concat!(
    r"(?:(?:\+\d{1,3}[\s.\-])?(?:\(\d{2,4}\)[\s.\-]?|\d{2,4}[\s.\-])\d{3,4}[\s.\-]?\d{3,5}",
    r"|\+\d{1,3}(?:-\d{3}-|\.\d{3}\.|\s\d{3}\s)\d{4}",
    r"|\+\d{1,3}(?:(?:\s\d{1,4}){2,6}|(?:-\d{1,4}){2,6}|(?:\.\d{1,4}){2,6})",
    r"|\+[1-9]\d{7,14})",
    r"($|[^\d./]|\.(?:$|\s))",
);

/// A UUID (8-4-4-4-12 hex digits).
pub(crate) const UUID_RE: &str =
    r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b";

/// Hex runs at least this long (with a letter in them) are digests, not numbers.
const MIN_DIGEST_HEX: usize = 32;

/// Characters that can join the groups of a number (what a replacement grows over).
fn is_separator(c: char) -> bool {
    matches!(c, '-' | '.' | '/' | '_') || c.is_whitespace()
}

/// A decimal digit: ASCII, or any other numeric character (the regexes'
/// `\d` is Unicode; growing over a few more characters is harmless).
fn is_digit(c: char) -> bool {
    c.is_ascii_digit() || (!c.is_ascii() && c.is_numeric())
}

/// Spans (start, end) of text a digit pass leaves alone, sorted and disjoint.
pub(crate) struct Exempt {
    spans: Vec<(usize, usize)>,
}

impl Exempt {
    /// The UUIDs and digests of `text`.
    pub(crate) fn of(uuid: Option<&Regex>, text: &str) -> Self {
        let mut spans = Vec::new();
        // Only texts with the four hyphens of one can hold a UUID.
        if let Some(uuid) = uuid
            && text.bytes().filter(|&b| b == b'-').nth(3).is_some()
        {
            spans.extend(uuid.find_iter(text).map(|m| (m.start(), m.end())));
        }
        let digests = digest_spans(text);
        if !digests.is_empty() {
            spans.extend(digests);
            spans.sort_unstable();
        }
        Self { spans }
    }

    /// Whether `start..end` overlaps an exempt span (binary search).
    fn overlaps(&self, start: usize, end: usize) -> bool {
        // Disjoint and sorted: the ends are sorted too.
        let i = self.spans.partition_point(|&(_, e)| e <= start);
        self.spans.get(i).is_some_and(|&(s, _)| s < end)
    }

    /// Where a search resumed at `at` should start: past the exempt span
    /// holding `at`, if any (a match starting inside one overlaps it, so
    /// none can be accepted there). Searching on from there instead of one
    /// character further keeps a text full of identifiers, each holding
    /// several rejected candidates, to one search per identifier.
    fn resume(&self, at: usize) -> usize {
        let i = self.spans.partition_point(|&(_, e)| e <= at);
        match self.spans.get(i) {
            Some(&(s, e)) if s <= at => e,
            _ => at,
        }
    }
}

/// Runs of at least [`MIN_DIGEST_HEX`] hex digits holding a letter.
fn digest_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    if text.len() < MIN_DIGEST_HEX {
        return spans;
    }
    let (mut start, mut letter) = (0usize, false);
    let close = |start: usize, end: usize, letter: bool, spans: &mut Vec<(usize, usize)>| {
        if letter && end - start >= MIN_DIGEST_HEX {
            spans.push((start, end));
        }
    };
    for (i, b) in text.bytes().enumerate() {
        if b.is_ascii_hexdigit() {
            letter |= b.is_ascii_alphabetic();
        } else {
            close(start, i, letter, &mut spans);
            start = i + 1;
            letter = false;
        }
    }
    close(start, text.len(), letter, &mut spans);
    spans
}

/// One digit pass over `text`; `None` when nothing was replaced.
pub(crate) fn replace(
    kind: DigitKind,
    regex: &Regex,
    exempt: &Exempt,
    text: &str,
) -> Option<String> {
    let mut locs = regex.capture_locations();
    let mut out: Option<String> = None;
    let mut copied = 0; // bytes of `text` already handled
    let mut at = 0; // where the next search starts
    while at <= text.len() {
        let Some(m) = regex.captures_read_at(&mut locs, text, at) else {
            break;
        };
        let start = m.start();
        // The phone pattern's group 1 is the consumed look-ahead; it stays.
        let end = match kind {
            DigitKind::Phone => locs.get(1).map_or(m.end(), |(s, _)| s),
            DigitKind::Card | DigitKind::Ssn => m.end(),
        };
        let after_replacement = out.is_some() && start == copied;
        if start == end
            || !accept(kind, text, start, end, after_replacement)
            || exempt.overlaps(start, end)
        {
            // Rejected here; try from the next character, as a backtracking
            // engine would.
            at = exempt.resume(start + char_len_at(text, start));
            #[cfg(test)]
            REJECTED.with(|n| n.set(n.get() + 1));
            continue;
        }
        let (start, end) = grow(text, start, end, copied);
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

fn char_len_at(text: &str, at: usize) -> usize {
    text.get(at..)
        .and_then(|s| s.chars().next())
        .map_or(1, char::len_utf8)
}

/// The checks the regex cannot make.
fn accept(kind: DigitKind, text: &str, start: usize, end: usize, after_replacement: bool) -> bool {
    let Some(number) = text.get(start..end) else {
        return false;
    };
    let before = text.get(..start).unwrap_or_default();
    let after = text.get(end..).unwrap_or_default();
    let mut back = before.chars().rev();
    let (b1, b2) = (back.next(), back.next());
    let mut ahead = after.chars();
    let (a1, a2) = (ahead.next(), ahead.next());
    let digits = number.chars().filter(|&c| is_digit(c)).count();
    match kind {
        DigitKind::Card | DigitKind::Ssn => {
            // Not part of a longer number, nor of a decimal or dotted one.
            let touches = |near: Option<char>, far: Option<char>| {
                near.is_some_and(is_digit) || (near == Some('.') && far.is_some_and(is_digit))
            };
            if touches(b1, b2) || touches(a1, a2) {
                return false;
            }
            kind == DigitKind::Ssn || ((13..=19).contains(&digits) && card_checks(number))
        }
        DigitKind::Phone => {
            let behind_ok = after_replacement
                || !b1.is_some_and(|c| c.is_ascii_digit() || c == '.' || c == '/');
            let international = number.starts_with('+');
            behind_ok
                && digits >= 8
                && (!international || digits <= 15)
                && !is_decimal_shaped(number)
                && !is_id_shaped(number)
        }
    }
}

/// Luhn and the leading digit; a number with non-ASCII digits passes (fail closed).
fn card_checks(number: &str) -> bool {
    let digits = number.chars().filter(|&c| is_digit(c));
    if digits.clone().any(|c| !c.is_ascii_digit()) {
        return true;
    }
    let mut values = digits.filter_map(|c| c.to_digit(10));
    if !matches!(values.clone().next(), Some(2..=9)) {
        return false;
    }
    luhn(&mut values)
}

/// The Luhn checksum over `digits` (most significant first).
pub(crate) fn luhn(digits: &mut dyn DoubleEndedIterator<Item = u32>) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.rev().enumerate() {
        sum += if i % 2 == 1 {
            let twice = d * 2;
            if twice > 9 { twice - 9 } else { twice }
        } else {
            d
        };
    }
    sum % 10 == 0
}

/// A phone match whose only separator is a single `.` (`37.7749295`).
fn is_decimal_shaped(number: &str) -> bool {
    let mut separators = number
        .trim_start_matches('+')
        .chars()
        .filter(|&c| !is_digit(c));
    separators.next() == Some('.') && separators.next().is_none()
}

/// A phone match of two groups whose first has no trunk `0`
/// (`2024-000123`, a year and a sequence number) is an identifier; two
/// groups with a trunk prefix (`030-12345678`), parentheses or a `+` stay
/// phone numbers.
fn is_id_shaped(number: &str) -> bool {
    if number.starts_with(['+', '(']) {
        return false;
    }
    let mut groups = number
        .split(|c: char| !is_digit(c))
        .filter(|g| !g.is_empty());
    let first = groups.next();
    groups.next().is_some() && groups.next().is_none() && first.is_some_and(|g| !g.starts_with('0'))
}

/// `start..end` grown over the groups of digits joined to it by a separator
/// the number itself uses (never before `floor`, the end of the last
/// replacement).
fn grow(text: &str, start: usize, end: usize, floor: usize) -> (usize, usize) {
    let number = text.get(start..end).unwrap_or_default();
    let mut used = ['\0'; 4];
    let mut n = 0;
    for c in number.chars().filter(|&c| is_separator(c)) {
        if !used.contains(&c)
            && let Some(slot) = used.get_mut(n)
        {
            *slot = c;
            n += 1;
        }
    }
    let used = used.get(..n).unwrap_or_default();
    if used.is_empty() {
        return (start, end);
    }
    let joins = |c: char| used.contains(&c);
    // Forwards: a separator (two spaces count as one), then digits; repeatedly.
    let mut end = end;
    loop {
        let rest = text.get(end..).unwrap_or_default();
        let Some(sep) = rest.chars().next().filter(|&c| joins(c)) else {
            break;
        };
        let mut tail = rest.strip_prefix(sep).unwrap_or_default();
        if sep == ' ' {
            tail = tail.strip_prefix(' ').unwrap_or(tail);
        }
        let left = tail.trim_start_matches(is_digit);
        if left.len() == tail.len() {
            break;
        }
        end = text.len() - left.len();
    }
    // Backwards, the same.
    let mut start = start;
    loop {
        let head = text.get(floor..start).unwrap_or_default();
        let Some(sep) = head.chars().next_back().filter(|&c| joins(c)) else {
            break;
        };
        let mut rest = head.strip_suffix(sep).unwrap_or_default();
        if sep == ' ' {
            rest = rest.strip_suffix(' ').unwrap_or(rest);
        }
        let kept = rest.trim_end_matches(is_digit);
        if kept.len() == rest.len() {
            break;
        }
        start = floor + kept.len();
    }
    (start, end)
}
