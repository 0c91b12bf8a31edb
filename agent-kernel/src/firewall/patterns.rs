//! The kinds of sensitive text the redactor removes from strings, the
//! compiled regular expressions behind them, and the passes that apply them.
//!
//! The passes run in [`PatternKind::ALL`] order, each on the output of the
//! previous one:
//! 1. private-key blocks (PEM, OpenSSH, PGP), whole, first: their base64
//!    bodies hold anything;
//! 2. the well-known secret formats, recognised by their published shapes
//!    (the rule sets of gitleaks and trufflehog show them; these patterns are
//!    our own): AWS access key ids, Google API keys, GitHub tokens, Slack
//!    tokens and webhooks, Stripe secret keys, Anthropic and OpenAI API keys,
//!    each reported as its own kind, with or without a `key=` before it;
//! 3. credentials in URLs (`scheme://user:password@`, `scheme://:password@`),
//!    before e-mail addresses, so the host stays;
//! 4. e-mail addresses (RFC 5322 local parts, UTF-8 ones too, IDN and
//!    single-label domains; see [`EMAIL_RE`]);
//! 5. card numbers, SSNs and phone numbers, whole (see the `digits` module);
//! 6. bearer tokens, JWTs, and credential assignments (`password=…`,
//!    `"api_key": "…"`, `token: …`; the name is kept, the value goes; see
//!    the `names` module for which names are credentials).
//!
//! Differences from the reference, all in the direction of removing more:
//! card numbers are 13 to 19 digits long and may be separated or glued to a
//! prefix; the password of a connection string may contain `@`, and the user
//! name may be empty; the host is not part of the match, so a credentialed
//! URL right after another one (`a://u:p@h1,b://v:q@h2`) is found in the same
//! pass; a phone number may directly follow another one; a phone number may
//! end a sentence (`call 555-123-4567.`).

use std::borrow::Cow;
use std::fmt;
use std::sync::LazyLock;

use regex::{CaptureLocations, Regex};

use super::digits::{self, DigitKind, Exempt};
use super::names;
pub(crate) use super::prescan::candidates;
use super::windows;

/// The marker that replaces every redacted value or text fragment.
pub const REDACTED: &str = "[REDACTED]";

/// Rounds of all passes [`Patterns::scrub`] runs at most before it stops
/// (one round normally suffices; a second confirms the fixed point).
const MAX_SCRUB_ROUNDS: usize = 4;

/// Texts longer than this are scanned for hot windows first (issue 19);
/// shorter ones, field values mostly, go through the byte pre-scan whole.
pub(crate) const WINDOWED_ABOVE: usize = 256;

/// A kind of sensitive text recognised inside string values (and, for the
/// digit kinds, JSON numbers). New kinds may be added in minor releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum PatternKind {
    /// A private-key block: PEM (`-----BEGIN RSA PRIVATE KEY-----`, `EC`,
    /// `ENCRYPTED`, PKCS#8), OpenSSH or PGP, up to its `-----END …-----` line
    /// (or the end of the text, when it was cut).
    PrivateKey,
    /// An AWS access key id (`AKIA…`, `ASIA…`: 20 characters).
    AwsAccessKey,
    /// A Google API key (`AIza…`, 39 characters), Gemini's included.
    GoogleApiKey,
    /// A GitHub token (`ghp_…`, `gho_…`, `ghu_…`, `ghs_…`, `ghr_…`, `github_pat_…`).
    GithubToken,
    /// A Slack token (`xoxb-…`, `xoxp-…`, `xapp-…`) or webhook URL.
    SlackToken,
    /// A Stripe secret or restricted key (`sk_live_…`, `rk_test_…`).
    StripeKey,
    /// An Anthropic API key (`sk-ant-…`).
    AnthropicKey,
    /// An OpenAI API key (`sk-…`, `sk-proj-…`, `sk-svcacct-…`).
    OpenAiKey,
    /// Credentials embedded in a URL or connection string
    /// (`scheme://user:pass@host`, `scheme://:pass@host`); scheme and host are kept.
    ConnectionString,
    /// An e-mail address (`user@example.com`, `josé@example.com`,
    /// `user@bücher.de`, `alice@localhost`).
    Email,
    /// A payment card number: 13 to 19 digits passing the Luhn check, bare
    /// or grouped with one kind of separator.
    CardNumber,
    /// A US social security number (`123-45-6789`, `123 45 6789`, `123.45.6789`).
    Ssn,
    /// A phone number (`+1-555-123-4567`, `(020) 7946-0958`, `+1-555-1724`, `+15551234567`).
    Phone,
    /// An HTTP bearer token (`Bearer abc…`).
    BearerToken,
    /// A JSON Web Token (`eyJ….eyJ….…`).
    Jwt,
    /// A credential assignment (`api_key=…`, `token: …`, `"password": "…"`);
    /// the name is kept.
    ApiKey,
}

impl PatternKind {
    /// Every kind, in the order the passes run.
    pub const ALL: [Self; 16] = [
        Self::PrivateKey,
        Self::AwsAccessKey,
        Self::GoogleApiKey,
        Self::GithubToken,
        Self::SlackToken,
        Self::StripeKey,
        Self::AnthropicKey,
        Self::OpenAiKey,
        Self::ConnectionString,
        Self::Email,
        Self::CardNumber,
        Self::Ssn,
        Self::Phone,
        Self::BearerToken,
        Self::Jwt,
        Self::ApiKey,
    ];

    /// A stable lower-case name, suitable for warnings and telemetry labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::PrivateKey => "private_key",
            Self::AwsAccessKey => "aws_access_key_id",
            Self::GoogleApiKey => "google_api_key",
            Self::GithubToken => "github_token",
            Self::SlackToken => "slack_token",
            Self::StripeKey => "stripe_key",
            Self::AnthropicKey => "anthropic_api_key",
            Self::OpenAiKey => "openai_api_key",
            Self::ConnectionString => "connection_string",
            Self::Email => "email",
            Self::CardNumber => "card_number",
            Self::Ssn => "ssn",
            Self::Phone => "phone",
            Self::BearerToken => "bearer_token",
            Self::Jwt => "jwt",
            Self::ApiKey => "api_key",
        }
    }

    const fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl fmt::Display for PatternKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of [`PatternKind`]s (a bit set with room for 32 kinds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PatternSet(u32);

impl PatternSet {
    /// The empty set.
    pub const EMPTY: Self = Self(0);
    /// Every kind.
    pub const ALL: Self = {
        let mut bits = 0;
        let mut i = 0;
        while i < PatternKind::ALL.len() {
            bits |= PatternKind::ALL[i].bit();
            i += 1;
        }
        Self(bits)
    };

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

    /// How many kinds the set holds.
    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
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
    /// Comma-separated kind names, in pass order, e.g. `email, phone`.
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

/// A private-key block, to its END line or, cut short, to the end of the text.
const PRIVATE_KEY_RE: &str = concat!(
    r"-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----",
    r"(?s:.*?)(?:-----END[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----|\z)",
);
const AWS_RE: &str = r"\b(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b";
const GOOGLE_RE: &str = r"\bAIza[0-9A-Za-z_\-]{35}";
const GITHUB_RE: &str = r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})";
const SLACK_RE: &str = concat!(
    r"\bxox[abposrce]-[A-Za-z0-9\-]{10,}|\bxapp-\d-[A-Za-z0-9\-]{10,}",
    r"|https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_+\-]+",
);
const STRIPE_RE: &str = r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}";
const ANTHROPIC_RE: &str = r"\bsk-ant-[A-Za-z0-9_\-]{20,}";
/// `sk-` and at least 20 key characters, one of them a digit (checked in
/// code: a hyphenated word list is not a key).
const OPENAI_RE: &str = r"\bsk-[A-Za-z0-9_\-]{20,}";

/// Scheme (group 1) and `user:password@` (the user may be empty), up to the
/// last `@` before the first `/` or white space. The host is not consumed:
/// the search goes on right after the `@`, so a second credentialed URL glued
/// to the first one's host (`…@h1,mysql://u:p@h2`) is found in the same pass.
const CONN_STR_RE: &str = r"([a-zA-Z][a-zA-Z0-9+\-.]*://)[^:@/\s]*:[^/\s]+@";

/// An e-mail address: a quoted local part, or a dot-atom one of RFC 5322's
/// `atext` (but `=` and `/`, which in tool output delimit an assignment or a
/// path: `email=bob@…` keeps `email=`) plus any UTF-8 letter, digit or mark
/// (RFC 6531); `@`; a bracketed address literal, or labels of letters,
/// digits, marks and hyphens (IDN, single-label `localhost` too) separated by
/// dots (ASCII or ideographic). Checked in code: leading punctuation of the
/// local part stays visible (`'bob@…'`); trailing numeric labels are not part
/// of the domain, and a domain with none other (`lodash@4.17.21`) is no
/// address, but for an IPv4 address (`root@10.0.0.5`); `image@sha256:…` is
/// a digest reference.
pub(crate) const EMAIL_RE: &str = concat!(
    r#"(?:"(?:[^"\\\r\n]|\\.){1,64}"|[A-Za-z0-9!#$%&'*+\-?^_`{|}~.\p{L}\p{N}\p{M}]+)"#,
    r"@(?:\[[0-9A-Fa-f:.]+\]",
    r"|[\p{L}\p{N}\p{M}\-]+(?:[.\x{3002}\x{FF0E}\x{FF61}][\p{L}\p{N}\p{M}\-]+)*)",
);

const BEARER_RE: &str = r"(?i)Bearer\s+[A-Za-z0-9\-._~+/]+=*";
const JWT_RE: &str = r"eyJ[A-Za-z0-9_\-]+\.eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+";
/// A name and an assignment operator, optionally quoted, JSON or YAML style:
/// `password=`, `"api_key": "`, `token: `, `X-Api-Key: `, `secret := '`,
/// `key => "`. Group 1: the name; group 2: an opening quote of the value.
/// Whether the name is a credential, and where the value ends, is decided
/// in code.
const ASSIGN_RE: &str =
    r#"([A-Za-z_][A-Za-z0-9_.\-]*)\\*["']?[ \t]*(?::=|=>|[=:])[ \t]*\\*(["']?)"#;

/// The reference's white-space form for API keys (`access_key ABCD1234EFGH5678`).
const API_KEY_WS_RE: &str =
    r"(?i-u:((?:api[_\-]?key|apikey|api[_\-]?token|access[_\-]?key)[ \t]+))[A-Za-z0-9\-._~+/]{8,}";

/// The compiled patterns, shared by every redactor in the process.
///
/// A pattern that failed to compile (impossible for these constants; the
/// tests compile each one) is `None`, and its pass then fails closed: a
/// string the pre-scan flags for it is replaced by [`REDACTED`] entirely.
#[derive(Debug)]
pub(crate) struct Patterns {
    private_key: Option<Regex>,
    aws: Option<Regex>,
    google: Option<Regex>,
    github: Option<Regex>,
    slack: Option<Regex>,
    stripe: Option<Regex>,
    anthropic: Option<Regex>,
    openai: Option<Regex>,
    conn_str: Option<Regex>,
    email: Option<Regex>,
    card: Option<Regex>,
    ssn: Option<Regex>,
    phone: Option<Regex>,
    uuid: Option<Regex>,
    bearer: Option<Regex>,
    jwt: Option<Regex>,
    assign: Option<Regex>,
    api_key_ws: Option<Regex>,
}

pub(crate) static PATTERNS: LazyLock<Patterns> = LazyLock::new(Patterns::compile);

impl Patterns {
    fn compile() -> Self {
        let re = |p: &str| Regex::new(p).ok();
        Self {
            private_key: re(PRIVATE_KEY_RE),
            aws: re(AWS_RE),
            google: re(GOOGLE_RE),
            github: re(GITHUB_RE),
            slack: re(SLACK_RE),
            stripe: re(STRIPE_RE),
            anthropic: re(ANTHROPIC_RE),
            openai: re(OPENAI_RE),
            conn_str: re(CONN_STR_RE),
            email: re(EMAIL_RE),
            card: re(&digits::card_pattern()),
            ssn: re(digits::SSN_RE),
            phone: re(digits::PHONE_RE),
            uuid: re(digits::UUID_RE),
            bearer: re(BEARER_RE),
            jwt: re(JWT_RE),
            assign: re(ASSIGN_RE),
            api_key_ws: re(API_KEY_WS_RE),
        }
    }

    /// Whether every pattern compiled.
    #[cfg(test)]
    pub(crate) fn all_compiled(&self) -> bool {
        [
            &self.private_key,
            &self.aws,
            &self.google,
            &self.github,
            &self.slack,
            &self.stripe,
            &self.anthropic,
            &self.openai,
            &self.conn_str,
            &self.email,
            &self.card,
            &self.ssn,
            &self.phone,
            &self.uuid,
            &self.bearer,
            &self.jwt,
            &self.assign,
            &self.api_key_ws,
        ]
        .iter()
        .all(|r| r.is_some())
    }

    /// Removes every sensitive fragment from `text`; reports which kinds
    /// were found. A short text goes through the passes whole (after the
    /// byte pre-scan); a longer one is walked once for its hot windows (see
    /// the `windows` module), and only those go through the passes. Borrows
    /// when nothing was found.
    pub(crate) fn scrub<'a>(&self, text: &'a str) -> (Cow<'a, str>, PatternSet) {
        if text.len() <= WINDOWED_ABOVE {
            return self.scrub_whole(text);
        }
        let mut out: Option<String> = None;
        let mut copied = 0;
        let mut found = PatternSet::EMPTY;
        windows::each_window(text, |start, end| {
            let Some(window) = text.get(start..end) else {
                return;
            };
            let (scrubbed, kinds) = self.scrub_whole(window);
            if let Cow::Owned(scrubbed) = scrubbed {
                let buf = out.get_or_insert_with(|| String::with_capacity(text.len()));
                buf.push_str(text.get(copied..start).unwrap_or_default());
                buf.push_str(&scrubbed);
                copied = end;
                found = found.union(kinds);
            }
        });
        match out {
            Some(mut buf) => {
                buf.push_str(text.get(copied..).unwrap_or_default());
                (Cow::Owned(buf), found)
            }
            None => (Cow::Borrowed(text), PatternSet::EMPTY),
        }
    }

    /// Every pass that the byte pre-scan cannot rule out, over all of `text`.
    fn scrub_whole<'a>(&self, text: &'a str) -> (Cow<'a, str>, PatternSet) {
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
            // The identifiers the digit passes leave alone, found once per
            // version of the text (three digit passes share them).
            let mut exempt = None;
            for kind in candidates.iter() {
                if let Some(replaced) = self.pass(kind, &current, &mut exempt) {
                    exempt = None;
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

    /// One substitution pass; `None` when nothing changed. `exempt` caches
    /// the exempt spans of `text` (`None`: not computed yet).
    fn pass(&self, kind: PatternKind, text: &str, exempt: &mut Option<Exempt>) -> Option<String> {
        let regex = match kind {
            PatternKind::PrivateKey => &self.private_key,
            PatternKind::AwsAccessKey => &self.aws,
            PatternKind::GoogleApiKey => &self.google,
            PatternKind::GithubToken => &self.github,
            PatternKind::SlackToken => &self.slack,
            PatternKind::StripeKey => &self.stripe,
            PatternKind::AnthropicKey => &self.anthropic,
            PatternKind::OpenAiKey => &self.openai,
            PatternKind::ConnectionString => &self.conn_str,
            PatternKind::Email => &self.email,
            PatternKind::CardNumber => &self.card,
            PatternKind::Ssn => &self.ssn,
            PatternKind::Phone => &self.phone,
            PatternKind::BearerToken => &self.bearer,
            PatternKind::Jwt => &self.jwt,
            PatternKind::ApiKey => &self.assign,
        };
        let Some(regex) = regex else {
            // Fail closed.
            return (text != REDACTED).then(|| REDACTED.to_owned());
        };
        let digit_kind = match kind {
            PatternKind::CardNumber => Some(DigitKind::Card),
            PatternKind::Ssn => Some(DigitKind::Ssn),
            PatternKind::Phone => Some(DigitKind::Phone),
            _ => None,
        };
        if let Some(digit_kind) = digit_kind {
            let exempt = exempt.get_or_insert_with(|| Exempt::of(self.uuid.as_ref(), text));
            return digits::replace(digit_kind, regex, exempt, text);
        }
        match kind {
            PatternKind::Email => replace_emails(regex, text),
            PatternKind::ConnectionString => replace_matches(regex, text, |caps, text| {
                let scheme = caps.get(1).and_then(|(s, e)| text.get(s..e));
                Some((
                    0,
                    Cow::Owned(format!("{}{REDACTED}@", scheme.unwrap_or(""))),
                ))
            }),
            PatternKind::OpenAiKey => replace_matches(regex, text, |caps, text| {
                let key = caps.get(0).and_then(|(s, e)| text.get(s..e))?;
                key.bytes()
                    .any(|b| b.is_ascii_digit())
                    .then_some((0, Cow::Borrowed(REDACTED)))
            }),
            PatternKind::ApiKey => {
                let assigned = replace_assignments(regex, text);
                let spaced = self.api_key_ws.as_ref().and_then(|ws| {
                    replace_matches(ws, assigned.as_deref().unwrap_or(text), |caps, _| {
                        let (start, name_end) = (caps.get(0)?.0, caps.get(1)?.1);
                        Some((name_end - start, Cow::Borrowed(REDACTED)))
                    })
                });
                spaced.or(assigned)
            }
            _ => replace_matches(regex, text, |_, _| Some((0, Cow::Borrowed(REDACTED)))),
        }
    }
}

/// Replaces the matches of `regex` in `text`: `decide` sees each match's
/// capture locations and returns how many leading bytes of the match stay
/// and what replaces the rest (or `None` to leave the match alone). `None`
/// when the text did not change.
fn replace_matches(
    regex: &Regex,
    text: &str,
    mut decide: impl FnMut(&CaptureLocations, &str) -> Option<(usize, Cow<'static, str>)>,
) -> Option<String> {
    let mut locs = regex.capture_locations();
    let mut out: Option<String> = None;
    let (mut copied, mut at) = (0usize, 0usize);
    while at <= text.len() {
        let Some(m) = regex.captures_read_at(&mut locs, text, at) else {
            break;
        };
        let (start, end) = (m.start(), m.end());
        match decide(&locs, text) {
            Some((keep, replacement))
                if text.get(start + keep..end) != Some(replacement.as_ref()) =>
            {
                let buf = out.get_or_insert_with(|| String::with_capacity(text.len()));
                buf.push_str(text.get(copied..start + keep).unwrap_or_default());
                buf.push_str(&replacement);
                copied = end;
            }
            _ => {}
        }
        at = if end > start {
            end
        } else {
            end + text
                .get(end..)
                .and_then(|s| s.chars().next())
                .map_or(1, char::len_utf8)
        };
    }
    let mut buf = out?;
    buf.push_str(text.get(copied..).unwrap_or_default());
    Some(buf)
}

/// The e-mail pass (see [`EMAIL_RE`] for the checks made here). A rejected
/// match resumes the search after its `@`: every other match starting before
/// it shares its domain, so the work stays linear.
fn replace_emails(regex: &Regex, text: &str) -> Option<String> {
    let mut out: Option<String> = None;
    let (mut copied, mut at) = (0usize, 0usize);
    while at <= text.len() {
        let Some(m) = regex.find_at(text, at) else {
            break;
        };
        let matched = m.as_str();
        // The `@` that separates: the last one (a quoted local part may hold
        // others; a domain holds none).
        let Some(at_sign) = matched.rfind('@') else {
            break;
        };
        let local = matched.get(..at_sign).unwrap_or_default();
        let domain = matched.get(at_sign + 1..).unwrap_or_default();
        let after = text.get(m.end()..).unwrap_or_default();
        let kept_local = if local.starts_with('"') {
            local
        } else {
            local.trim_start_matches(|c: char| "!#$%&'*?^`{|}~".contains(c))
        };
        match (kept_local.is_empty(), email_domain(domain, after)) {
            (false, Some(domain_len)) => {
                let start = m.start() + (local.len() - kept_local.len());
                let end = m.start() + at_sign + 1 + domain_len;
                let buf = out.get_or_insert_with(|| String::with_capacity(text.len()));
                buf.push_str(text.get(copied..start).unwrap_or_default());
                buf.push_str(REDACTED);
                copied = end;
                at = end;
            }
            _ => at = m.start() + at_sign + 1,
        }
    }
    let mut buf = out?;
    buf.push_str(text.get(copied..).unwrap_or_default());
    Some(buf)
}

/// How many bytes of `domain` belong to the address, if it is one.
fn email_domain(domain: &str, after: &str) -> Option<usize> {
    if domain.starts_with('[') {
        return Some(domain.len());
    }
    let is_dot = |c: char| matches!(c, '.' | '\u{3002}' | '\u{FF0E}' | '\u{FF61}');
    let numeric = |label: &str| label.bytes().all(|b| b.is_ascii_digit());
    let labels = domain.split(is_dot).count();
    if labels == 4 && domain.split(is_dot).all(|l| numeric(l) && l.len() <= 3) {
        return Some(domain.len()); // an IPv4 address
    }
    // Trailing numeric labels (`lodash@4.17.21`, `bob@example.com.2`) are not the domain's.
    let mut end = domain.len();
    let mut kept = domain;
    while let Some(cut) = kept.rfind(is_dot) {
        let last = kept.get(cut..).unwrap_or_default();
        let label = last.get(last.chars().next().map_or(1, char::len_utf8)..);
        if !label.is_some_and(numeric) {
            break;
        }
        end = cut;
        kept = kept.get(..cut).unwrap_or_default();
    }
    if kept.is_empty() || numeric(kept) {
        return None;
    }
    let single = !kept.contains(is_dot);
    let digest = ["sha1", "sha224", "sha256", "sha384", "sha512", "md5"]
        .iter()
        .any(|d| d.eq_ignore_ascii_case(kept));
    if single && digest && end == domain.len() && after.starts_with(':') {
        return None; // `image@sha256:…`
    }
    Some(end)
}

/// Whether an assigned value is only a marker an earlier pass left (with
/// an authorization scheme before it, or punctuation after it:
/// `ssn: [REDACTED].`, `Authorization: Bearer [REDACTED]`).
fn already_redacted(value: &str) -> bool {
    let value = value.split_once(' ').map_or(value, |(_, second)| second);
    value
        .strip_prefix(REDACTED)
        .is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_punctuation()))
}

/// Credential assignments: a credential name (see the `names` module), an
/// assignment operator, and the value, which is removed: up to the closing
/// quote when quoted (a backslash escaping that quote stays), else up to
/// white space or one of `"',;&`. After an `authorization` name, an
/// unquoted scheme word (`Basic`, `Digest`) takes the next word with it.
fn replace_assignments(regex: &Regex, text: &str) -> Option<String> {
    let mut out: Option<String> = None;
    let (mut copied, mut at) = (0usize, 0usize);
    while at < text.len() {
        // The match's bounds only (no capture groups: most names in logs are
        // not credentials, and captures cost a second, slower search).
        let Some(m) = regex.find_at(text, at) else {
            break;
        };
        at = m.end().max(m.start() + 1);
        // Group 1, the name: the longest run of name characters at the
        // start (what follows it, `\\`, a quote, a blank or the operator,
        // is never a name character, so the regex never takes less).
        let matched = m.as_str();
        let name_len = matched
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
            .unwrap_or(matched.len());
        let name = matched.get(..name_len).unwrap_or("");
        if !names::is_credential_name(name) {
            continue;
        }
        // Group 2, an opening quote: the match's last character when it is
        // one (nothing else in the match after the name can be a quote).
        let quote = matched
            .chars()
            .next_back()
            .filter(|c| matches!(c, '"' | '\''));
        let value_start = m.end();
        let rest = text.get(value_start..).unwrap_or_default();
        let value_len = match quote {
            Some(q) => {
                let close = rest.find(q).unwrap_or(rest.len());
                let value = rest.get(..close).unwrap_or_default();
                value.trim_end_matches('\\').len()
            }
            None => {
                let word = |s: &str| s.find(|c: char| c.is_whitespace() || "\"',;&".contains(c));
                let first = word(rest).unwrap_or(rest.len());
                let scheme = rest.get(..first).unwrap_or_default();
                let authorization = name
                    .len()
                    .checked_sub("authorization".len())
                    .and_then(|cut| name.get(cut..))
                    .is_some_and(|end| end.eq_ignore_ascii_case("authorization"));
                match rest.get(first..).and_then(|r| r.strip_prefix(' ')) {
                    Some(next)
                        if authorization
                            && !scheme.is_empty()
                            && scheme.len() <= 16
                            && scheme
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                            && next.chars().next().is_some_and(|c| !c.is_whitespace()) =>
                    {
                        first + 1 + word(next).unwrap_or(next.len())
                    }
                    _ => first,
                }
            }
        };
        let value = rest.get(..value_len).unwrap_or_default();
        if value.is_empty() || already_redacted(value) {
            continue;
        }
        let buf = out.get_or_insert_with(|| String::with_capacity(text.len()));
        buf.push_str(text.get(copied..value_start).unwrap_or_default());
        buf.push_str(REDACTED);
        copied = value_start + value_len;
        at = copied;
    }
    let mut buf = out?;
    buf.push_str(text.get(copied..).unwrap_or_default());
    Some(buf)
}
