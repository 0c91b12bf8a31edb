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

/// Literals that make a token hot: the well-known formats' fixed prefixes
/// (`A3T` holds a digit, so it needs no entry), the bearer scheme, the
/// white-space API-key names, and the start of a private-key block (which
/// is held to the end of the text: [`BEGIN_BLOCK`]).
const KEYWORDS: [&str; 29] = [
    "-----begin",
    "akia",
    "asia",
    "abia",
    "acca",
    "aiza",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "xox",
    "xapp-",
    "hooks.slack.com",
    "sk_",
    "rk_",
    "sk-",
    "eyj",
    "bearer",
    "apikey",
    "api_key",
    "api-key",
    "apitoken",
    "api_token",
    "api-token",
    "accesskey",
    "access_key",
    "access-key",
];

/// The index in [`KEYWORDS`] of the private-key block's start.
const BEGIN_BLOCK: usize = 0;

/// The automaton; `None` if it could not be built (then every text is one
/// window: fail closed).
static AUTOMATON: LazyLock<Option<AhoCorasick>> = LazyLock::new(|| {
    AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::LeftmostFirst)
        .build(KEYWORDS)
        .ok()
});

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
    let mut hits = automaton.find_iter(text);
    let mut scan = Scan {
        bytes: text.as_bytes(),
        held: None,
        reported: 0,
        open: None,
        need: 0,
        hold_until: 0,
        in_gap: false,
    };
    let n = text.len();
    let mut next_hit = hits.next();
    let mut i = 0;
    while i < n {
        // Keyword hits behind the walk are inside a window already.
        while next_hit.is_some_and(|m| m.start() < i) {
            next_hit = hits.next();
        }
        let hit_at = next_hit.map_or(n, |m| m.start());
        if scan.open.is_none() {
            // Outside a window: skip to the next trigger byte or keyword.
            let limit = hit_at.min(n);
            let skipped = scan
                .bytes
                .get(i..limit)
                .and_then(|rest| {
                    rest.iter()
                        .position(|&b| CLASS[usize::from(b)] & C_TRIGGER != 0)
                })
                .unwrap_or(limit.saturating_sub(i));
            i += skipped;
            if i >= n {
                break;
            }
        }
        let Some(&b) = scan.bytes.get(i) else { break };
        let class = CLASS[usize::from(b)];
        let mut step = 1;
        let mut hot = class & C_HOT != 0;
        if class & C_NON_ASCII != 0 {
            // A lead byte (the walk moves by whole characters).
            let c = text.get(i..).and_then(|s| s.chars().next());
            step = c.map_or(1, char::len_utf8);
            hot = c.is_some_and(char::is_numeric);
        }
        if let Some(m) = next_hit.filter(|m| m.start() == i) {
            hot = true;
            if m.pattern().as_usize() == BEGIN_BLOCK {
                scan.hold_until = n;
            }
            next_hit = hits.next();
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
        let floor = self.held.map_or(self.reported, |(_, end)| end);
        let start = self.back(at, floor);
        match self.open {
            Some(open) if open <= start => {}
            _ => {
                // A new window, or one reaching further back (a quoted
                // local part): merge with the held one if they touch.
                let start = match self.held {
                    Some((held_start, held_end)) if start <= held_end => {
                        self.held = None;
                        held_start
                    }
                    Some(held) => {
                        self.held = None;
                        each(held.0, held.1);
                        self.reported = held.1;
                        start
                    }
                    None => start,
                };
                self.open = Some(self.open.map_or(start, |open| open.min(start)));
            }
        }
        self.need = RADIUS + 1;
        self.in_gap = false;
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
        assert_eq!(windows(text), ["b c 1 d e f 2 g h ", "m n 3 o p "]);
    }

    #[test]
    fn quoted_values_and_private_keys_are_held() {
        let text = "x y z secret = \"a b c d e f g h\" i j k l m";
        assert_eq!(windows(text), ["z secret = \"a b c d e f g h\" i j "]);
        let text = "w x y z -----BEGIN RSA PRIVATE KEY----- a b c d e f";
        assert_eq!(windows(text), ["y z -----BEGIN RSA PRIVATE KEY----- a b c d e f"]);
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
