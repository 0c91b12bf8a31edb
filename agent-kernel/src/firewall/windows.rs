//! The one-pass scan in front of the redaction passes: a single walk over a
//! text's bytes finds the *windows* that could hold sensitive text, and
//! proves that everything between them cannot. Only the windows go through
//! the passes of the `patterns` module (the confirmation); the rest is
//! copied, or, when no window changed, the text is borrowed whole.
//!
//! A text is read as *tokens* (runs of bytes that are not ASCII white space)
//! separated by *gaps* (runs of ASCII white space). A token is **hot** when
//! it holds one of:
//! - an ASCII digit, or a non-ASCII numeric character (full-width digits:
//!   the passes' `\d` is Unicode);
//! - `@`, `=`, `:` or `"` (e-mail addresses, credentialed URLs,
//!   assignments, quoted local parts);
//! - a fixed prefix of a well-known secret format, `bearer`, or an
//!   `api key`/`access key` name, found by one Aho-Corasick automaton
//!   (ASCII case folded: it finds more, never less).
//!
//! A window is a hot token with the two tokens on either side of it (and the
//! gaps between them). Every match of every pass either lies inside one
//! token, or crosses a gap whose neighbours within two tokens are hot: the
//! separators of grouped numbers and phone numbers join tokens with digits,
//! `Bearer` and `access_key` precede their value, an assignment's operator
//! is a token of its own or part of a neighbour, and `Authorization: Basic
//! abc` reaches two tokens past its operator. Three shapes reach further and
//! are held whole: a quoted assignment value (`secret = "a b c"`: from the
//! operator to the closing quote), a quoted e-mail local part (`"a b"@x`:
//! every `"` holds the window to the next `"` within 400 bytes, beyond the
//! 64 characters a quoted local part may have) and a private-key block (from
//! `-----BEGIN` to the end of the text). So running the passes
//! on each window alone, with the cold gap around it standing for "the start
//! (or end) of the text", finds what they find on the whole text; the oracle
//! test (`tests/redaction_oracle.rs`) checks it against the pre-windows
//! implementation on every test input.
//!
//! Linear: every byte is looked at once by the forward walk and at most once
//! more when a window's start is found by walking back (never before the end
//! of the previous window), and the quote searches end at the next quote of
//! the same kind.

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

/// ASCII white space: the only bytes that separate tokens (`\s` in the
/// passes also matches non-ASCII white space, which stays inside a token).
const C_SPACE: u8 = 1;
/// A digit, `@`, `=`, `:` or `"`.
const C_HOT: u8 = 1 << 1;
/// A byte of a non-ASCII character (decoded to see whether it is numeric).
const C_NON_ASCII: u8 = 1 << 2;

/// Bytes the fast skip stops at.
const C_TRIGGER: u8 = C_HOT | C_NON_ASCII;

/// Windows closer than this many bytes are confirmed as one: each call of
/// the passes has a fixed cost (a few thousand instructions) that a short
/// cold stretch does not outweigh. Merging is always sound: the stretch
/// between two windows holds no match, whichever way it is cut.
const MERGE_GAP: usize = 64;

/// A window that grows past this many bytes takes the rest of the text: in
/// text that dense (logs, tables of numbers) the walk would only add its
/// cost to the passes'.
const DENSE_RUN: usize = 4096;

/// How many tokens on each side of a hot token a window takes.
const RADIUS: u8 = 2;

/// How far a `"` may be from the next one for the two to enclose a quoted
/// e-mail local part (64 characters of up to 4 bytes, each possibly
/// escaped, and the quotes).
const QUOTED_LOCAL_PART_BYTES: usize = 400;

static CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = if matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0B | 0x0C) {
            C_SPACE
        } else if b.is_ascii_digit() || matches!(b, b'@' | b'=' | b':' | b'"') {
            C_HOT
        } else if b >= 0x80 {
            C_NON_ASCII
        } else {
            0
        };
        i += 1;
    }
    table
};

/// The well-known formats' fixed prefixes, case-sensitive as their patterns
/// are (`A3T` holds a digit and the Slack webhook a `:`, so neither needs an
/// entry), and the start of a private-key block, which is held to the end of
/// the text ([`BEGIN_BLOCK`]). Few enough for the automaton's SIMD prefilter.
const PREFIXES: [&str; 18] = [
    "-----BEGIN",
    "AKIA",
    "ASIA",
    "ABIA",
    "ACCA",
    "AIza",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "xox",
    "xapp-",
    "sk_",
    "rk_",
    "sk-",
    "eyJ",
];

/// The index in [`PREFIXES`] of the private-key block's start.
const BEGIN_BLOCK: usize = 0;

/// The automaton; `None` if it could not be built (then every text is one
/// window: fail closed).
static AUTOMATON: LazyLock<Option<AhoCorasick>> = LazyLock::new(|| {
    AhoCorasickBuilder::new()
        .match_kind(MatchKind::LeftmostFirst)
        .build(PREFIXES)
        .ok()
});

/// The names matched ASCII-case-insensitively (the bearer scheme and the
/// white-space API-key names): each holds a `b` or a `k`, so they are found
/// from those letters (two `memchr2` scans) and checked around them.
/// (offset of the letter, name) pairs, lower case.
const FOLDED: [(usize, &[u8]); 10] = [
    (0, b"bearer"),
    (3, b"apikey"),
    (4, b"api_key"),
    (4, b"api-key"),
    (5, b"apitoken"),
    (6, b"api_token"),
    (6, b"api-token"),
    (6, b"accesskey"),
    (7, b"access_key"),
    (7, b"access-key"),
];

/// Whether a case-folded name of [`FOLDED`] holds its `b` or `k` at `at`.
fn folded_name_at(bytes: &[u8], at: usize) -> bool {
    let letter = bytes.get(at).map(|b| b | 0x20);
    FOLDED.iter().any(|(offset, name)| {
        name.get(*offset).map(|b| b | 0x20) == letter
            && at
                .checked_sub(*offset)
                .and_then(|start| bytes.get(start..start + name.len()))
                .is_some_and(|window| window.eq_ignore_ascii_case(name))
    })
}

/// Keyword hits in order: the automaton's (with whether it is a private-key
/// block) merged with the folded names'.
struct Hits<'t, I: Iterator<Item = aho_corasick::Match>> {
    bytes: &'t [u8],
    prefixes: I,
    next_prefix: Option<(usize, bool)>,
    b_letters: memchr::Memchr2<'t>,
    next_b: Option<usize>,
    k_letters: memchr::Memchr2<'t>,
    next_k: Option<usize>,
}

impl<'t, I: Iterator<Item = aho_corasick::Match>> Hits<'t, I> {
    fn new(bytes: &'t [u8], prefixes: I) -> Self {
        let mut hits = Self {
            bytes,
            prefixes,
            next_prefix: None,
            b_letters: memchr::memchr2_iter(b'b', b'B', bytes),
            next_b: None,
            k_letters: memchr::memchr2_iter(b'k', b'K', bytes),
            next_k: None,
        };
        hits.advance_prefix();
        hits.next_b = Self::folded(bytes, &mut hits.b_letters);
        hits.next_k = Self::folded(bytes, &mut hits.k_letters);
        hits
    }

    fn advance_prefix(&mut self) {
        self.next_prefix = self
            .prefixes
            .next()
            .map(|m| (m.start(), m.pattern().as_usize() == BEGIN_BLOCK));
    }

    fn folded(bytes: &[u8], letters: &mut memchr::Memchr2<'_>) -> Option<usize> {
        letters.find(|&at| folded_name_at(bytes, at))
    }

    /// The next hit at or after `from`: (position, private-key block).
    fn peek(&mut self, from: usize) -> Option<(usize, bool)> {
        while self.next_prefix.is_some_and(|(at, _)| at < from) {
            self.advance_prefix();
        }
        while self.next_b.is_some_and(|at| at < from) {
            self.next_b = Self::folded(self.bytes, &mut self.b_letters);
        }
        while self.next_k.is_some_and(|at| at < from) {
            self.next_k = Self::folded(self.bytes, &mut self.k_letters);
        }
        let folded = match (self.next_b, self.next_k) {
            (Some(b), Some(k)) => Some(b.min(k)),
            (b, k) => b.or(k),
        };
        match (self.next_prefix, folded) {
            (Some(p), Some(f)) if f < p.0 => Some((f, false)),
            (Some(p), _) => Some(p),
            (None, f) => f.map(|at| (at, false)),
        }
    }
}

/// The first index in `from..to` holding a byte the walk must look at (a
/// digit, `:`, `;`, `<`, `=`, `>`, `?`, `@`, `"` or a non-ASCII byte: the
/// range 0x30..=0x40 is tested as a whole, eight bytes at a time), or `to`.
fn skip_cold(bytes: &[u8], from: usize, to: usize) -> usize {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    const QUOTES: u64 = u64::from_ne_bytes([b'"'; 8]);
    let Some(span) = bytes.get(from..to) else {
        return to;
    };
    let mut chunks = span.chunks_exact(8);
    let mut at = from;
    for chunk in &mut chunks {
        let Ok(word) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        let x = u64::from_ne_bytes(word);
        let low = x & !HIGH; // bytes 0x80 and up are caught by `x & HIGH`
        // Bytes of `low` in 0x30..=0x40 (Bit Twiddling Hacks, `hasbetween`).
        let between =
            (ONES * (127 + 0x41)).wrapping_sub(low) & !low & (low + ONES * (127 - 0x2F)) & HIGH;
        let quote = (x ^ QUOTES).wrapping_sub(ONES) & !(x ^ QUOTES) & HIGH;
        if (x & HIGH) | between | quote != 0 {
            break;
        }
        at += 8;
    }
    bytes
        .get(at..to)
        .and_then(|rest| {
            rest.iter()
                .position(|&b| CLASS[usize::from(b)] & C_TRIGGER != 0)
        })
        .map_or(to, |k| at + k)
}

/// Calls `each(start, end)` for every window of `text`, in order; windows
/// are disjoint, start at a token and end after a gap (or at the end), so
/// both ends are character boundaries. Nothing is called for a text that
/// cannot hold any pattern.
pub(crate) fn each_window(text: &str, mut each: impl FnMut(usize, usize)) {
    let Some(automaton) = AUTOMATON.as_ref() else {
        if !text.is_empty() {
            each(0, text.len());
        }
        return;
    };
    let bytes = text.as_bytes();
    let mut hits = Hits::new(bytes, automaton.find_iter(text));
    let mut scan = Scan {
        bytes,
        held: None,
        reported: 0,
        open: None,
        need: 0,
        hold_until: 0,
        in_gap: false,
    };
    let n = text.len();
    let mut i = 0;
    let mut next_hit = hits.peek(0);
    while i < n {
        // Keyword hits behind the walk are inside a window already.
        if next_hit.is_some_and(|(at, _)| at < i) {
            next_hit = hits.peek(i);
        }
        let hit_at = next_hit.map_or(n, |(at, _)| at);
        if scan.open.is_none() {
            // Outside a window: skip to the next trigger byte or keyword.
            i = skip_cold(bytes, i, hit_at.min(n));
            if i >= n {
                break;
            }
        }
        if scan.open.is_some_and(|start| i - start > DENSE_RUN) {
            // Dense text: the rest is one window (windows may always grow).
            scan.hold_until = n;
            break;
        }
        let Some(&b) = bytes.get(i) else { break };
        let class = CLASS[usize::from(b)];
        let mut step = 1;
        let mut hot = class & C_HOT != 0;
        if class & C_NON_ASCII != 0 {
            // A lead byte (the walk moves by whole characters).
            let c = text.get(i..).and_then(|s| s.chars().next());
            step = c.map_or(1, char::len_utf8);
            hot = c.is_some_and(is_numeric);
        }
        if let Some((_, block)) = next_hit.filter(|(at, _)| *at == i) {
            hot = true;
            if block {
                scan.hold_until = n;
            }
        }
        if hot {
            match b {
                b'"' => {
                    // A quoted e-mail local part may start here: hold the
                    // window to the next `"` when it is close enough.
                    let next = scan.bytes.get(i + 1..).and_then(|rest| {
                        let window = rest.get(..QUOTED_LOCAL_PART_BYTES).unwrap_or(rest);
                        memchr::memchr(b'"', window)
                    });
                    if let Some(k) = next {
                        scan.hold_until = scan.hold_until.max(i + 1 + k);
                    }
                }
                b'=' | b':' => {
                    if let Some(close) = quoted_value_end(scan.bytes, i) {
                        scan.hold_until = scan.hold_until.max(close);
                    }
                }
                _ => {}
            }
            scan.hot_at(i, &mut each);
        } else if scan.open.is_some() {
            scan.walk(i, class & C_SPACE != 0);
        }
        i += step;
    }
    scan.finish(&mut each);
}

/// [`char::is_numeric`] for the Basic Multilingual Plane, one bit per
/// character (8 KiB, built once): text in scripts without spaces (CJK) is
/// walked character by character, and the standard library's look-up of
/// the numeric categories is a search through its tables.
static BMP_NUMERIC: LazyLock<Vec<u64>> = LazyLock::new(|| {
    let mut bits = vec![0u64; 0x10000 / 64];
    for (word, slot) in bits.iter_mut().enumerate() {
        for bit in 0..64 {
            let code = (word * 64 + bit) as u32;
            if char::from_u32(code).is_some_and(char::is_numeric) {
                *slot |= 1 << bit;
            }
        }
    }
    bits
});

/// Whether `c` is numeric (any of the categories Nd, Nl, No: the passes'
/// `\d` is Nd, and a redaction grows over the others too).
fn is_numeric(c: char) -> bool {
    let code = c as usize;
    match BMP_NUMERIC.get(code / 64) {
        Some(word) => word & (1 << (code % 64)) != 0,
        None => c.is_numeric(),
    }
}

/// Where a quoted value after the assignment operator at `op` ends (the
/// closing quote's index, or the end of the text when it has none); `None`
/// when no quote follows. Mirrors the assignment pattern's tail:
/// `(?::=|=>|[=:])[ \t]*\\*(["']?)`, then the value runs to the same quote.
fn quoted_value_end(bytes: &[u8], op: usize) -> Option<usize> {
    let mut j = op + 1;
    if matches!(bytes.get(j), Some(b'>' | b'=')) {
        j += 1;
    }
    while matches!(bytes.get(j), Some(b' ' | b'\t')) {
        j += 1;
    }
    while bytes.get(j) == Some(&b'\\') {
        j += 1;
    }
    let quote = *bytes.get(j).filter(|q| matches!(q, b'"' | b'\''))?;
    let rest = bytes.get(j + 1..)?;
    Some(memchr::memchr(quote, rest).map_or(bytes.len(), |k| j + 1 + k))
}

/// The walk's state.
struct Scan<'t> {
    bytes: &'t [u8],
    /// The last window found, not yet reported (the next may merge with it).
    held: Option<(usize, usize)>,
    /// The end of the last window reported: no window starts before it.
    reported: usize,
    /// The start of the window being built.
    open: Option<usize>,
    /// Token ends still to take into the open window.
    need: u8,
    /// Token ends before this index do not count (a held region).
    hold_until: usize,
    /// Whether the walk is in a gap (inside the open window).
    in_gap: bool,
}

impl Scan<'_> {
    /// A hot byte at `at` (inside a token): opens a window reaching
    /// [`RADIUS`] tokens back, or keeps the open one going.
    fn hot_at(&mut self, at: usize, each: &mut impl FnMut(usize, usize)) {
        self.need = RADIUS + 1;
        self.in_gap = false;
        if self.open.is_some() {
            // The walk only moves forward: the open window already reaches
            // back far enough.
            return;
        }
        let floor = self.held.map_or(self.reported, |(_, end)| end);
        let start = self.back(at, floor);
        let start = match self.held.take() {
            // Close to the last window: one window.
            Some((held_start, held_end)) if start <= held_end + MERGE_GAP => held_start,
            Some((held_start, held_end)) => {
                each(held_start, held_end);
                self.reported = held_end;
                start
            }
            None => start,
        };
        self.open = Some(start);
    }

    /// The start of the token [`RADIUS`] tokens before the one holding
    /// `at`, never before `floor`.
    fn back(&self, at: usize, floor: usize) -> usize {
        let is_space = |i: usize| {
            self.bytes
                .get(i)
                .is_some_and(|&b| CLASS[usize::from(b)] & C_SPACE != 0)
        };
        let mut i = at;
        let mut tokens = 0;
        loop {
            // Back over the token, to its first byte.
            while i > floor && !is_space(i - 1) {
                i -= 1;
            }
            if tokens == RADIUS || i <= floor {
                return i.max(floor);
            }
            // Back over the gap.
            while i > floor && is_space(i - 1) {
                i -= 1;
            }
            if i <= floor {
                return floor;
            }
            tokens += 1;
        }
    }

    /// A byte that is not hot inside the open window: counts token ends,
    /// and closes the window at the start of the first token beyond it.
    fn walk(&mut self, i: usize, space: bool) {
        if space {
            if !self.in_gap {
                self.in_gap = true;
                if i >= self.hold_until {
                    self.need = self.need.saturating_sub(1);
                }
            }
        } else if self.in_gap {
            self.in_gap = false;
            if self.need == 0
                && let Some(start) = self.open.take()
            {
                self.held = Some((start, i));
            }
        }
    }

    /// Reports what is left at the end of the text.
    fn finish(&mut self, each: &mut impl FnMut(usize, usize)) {
        if let Some(start) = self.open.take() {
            match self.held.take() {
                Some((held_start, held_end)) if start <= held_end => {
                    each(held_start, self.bytes.len());
                }
                Some(held) => {
                    each(held.0, held.1);
                    each(start, self.bytes.len());
                }
                None => each(start, self.bytes.len()),
            }
        } else if let Some(held) = self.held.take() {
            each(held.0, held.1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        each_window(text, |s, e| out.push(&text[s..e]));
        out
    }

    #[test]
    fn the_word_skip_stops_where_the_byte_walk_does() {
        let bytes: Vec<u8> = (0..=255u8).collect();
        for b in 0..=255u8 {
            for pad in 0..17 {
                let mut text = vec![b'a'; pad];
                text.push(b);
                text.extend_from_slice(b"bbbbbbbbbbbbbbbb");
                let want = text
                    .iter()
                    .position(|&c| CLASS[usize::from(c)] & C_TRIGGER != 0)
                    .unwrap_or(text.len());
                assert_eq!(
                    skip_cold(&text, 0, text.len()),
                    want,
                    "byte {b} after {pad}"
                );
            }
        }
        assert_eq!(skip_cold(&bytes, 10, 20), 20);
    }

    #[test]
    fn the_numeric_table_agrees_with_the_standard_library() {
        for code in (0..0x11_0000u32).step_by(7).chain(0xFF10..0xFF1A) {
            if let Some(c) = char::from_u32(code) {
                assert_eq!(is_numeric(c), c.is_numeric(), "U+{code:04X}");
            }
        }
        assert!(is_numeric('５') && is_numeric('〇') && !is_numeric('日'));
    }

    #[test]
    fn folded_names_are_found_at_their_letter() {
        let text = b"x BeArEr y ACCESS_KEY z api-token";
        assert!(folded_name_at(text, 2));
        assert!(folded_name_at(text, 11 + 7));
        assert!(folded_name_at(text, 24 + 6));
        assert!(!folded_name_at(text, 0));
        assert!(!folded_name_at(b"beare", 0));
    }

    #[test]
    fn a_long_text_is_copied_only_when_something_is_redacted() {
        use std::borrow::Cow;

        use super::super::patterns::{PATTERNS, PatternKind};
        let text = "order 12 shipped: see \"notes\" = fine, ＃３ too. ".repeat(40);
        let (out, kinds) = PATTERNS.scrub(&text);
        assert!(matches!(out, Cow::Borrowed(_)), "{out}");
        assert!(kinds.is_empty());
        let mixed = format!("{text}mail bob@example.com now {text}");
        let (out, kinds) = PATTERNS.scrub(&mixed);
        assert!(matches!(out, Cow::Owned(_)));
        assert_eq!(out, format!("{text}mail [REDACTED] now {text}"));
        assert!(kinds.contains(PatternKind::Email) && kinds.len() == 1);
    }

    #[test]
    fn prose_without_triggers_has_no_window() {
        assert!(windows("The quick brown fox jumps over the lazy dog.").is_empty());
        assert!(windows("").is_empty());
    }

    #[test]
    fn a_window_takes_two_tokens_either_side() {
        let text = "one two three four bob@example.com five six seven eight";
        assert_eq!(windows(text), ["three four bob@example.com five six "]);
    }

    #[test]
    fn close_windows_merge() {
        let text = "a b c 1 d e f 2 g h i j k l m n 3 o p q";
        assert_eq!(windows(text), ["b c 1 d e f 2 g h i j k l m n 3 o p "]);
        let far = format!("a b c 1 d e {} m n 3 o p q", "w ".repeat(MERGE_GAP));
        let w = windows(&far);
        assert_eq!(w.len(), 2);
        assert_eq!(w[0], "b c 1 d e ");
        assert_eq!(w[1], "m n 3 o p ");
    }

    #[test]
    fn dense_text_is_one_window_to_the_end() {
        let text = format!("a b c d {} e f g h", "1 x ".repeat(DENSE_RUN));
        assert_eq!(windows(&text), [&text[4..]]);
    }

    #[test]
    fn quoted_values_and_private_keys_are_held() {
        let text = "x y z secret = \"a b c d e f g h\" i j k l m";
        assert_eq!(windows(text), ["z secret = \"a b c d e f g h\" i j "]);
        let text = "w x y z -----BEGIN RSA PRIVATE KEY----- a b c d e f";
        assert_eq!(
            windows(text),
            ["y z -----BEGIN RSA PRIVATE KEY----- a b c d e f"]
        );
    }

    #[test]
    fn a_quoted_local_part_is_held_whole() {
        let text = "k l m \"a b c d e f g h\"@example.com n o p q";
        assert_eq!(windows(text), ["l m \"a b c d e f g h\"@example.com n o "]);
    }

    #[test]
    fn full_width_digits_are_hot() {
        let text = "甲 乙 丙 丁 電話 ０９０１２３４５６７８ 戊 己 庚 辛";
        assert_eq!(windows(text), ["丁 電話 ０９０１２３４５６７８ 戊 己 "]);
    }

    #[test]
    fn keywords_are_found_case_folded() {
        let text = "p q r s Authorization Bearer abcdefgh t u v w";
        assert_eq!(windows(text), ["s Authorization Bearer abcdefgh t "]);
        assert_eq!(windows("AKIAIOSFODNNXEXAMPLE"), ["AKIAIOSFODNNXEXAMPLE"]);
    }
}
