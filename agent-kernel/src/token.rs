//! HMAC-SHA256 capability tokens: issue, verify, revoke, and a strict JSON
//! transport form.
//!
//! The signature covers a canonical serialisation of every field but the
//! signature: a JSON object with keys sorted at every level and no whitespace.
//! The secret is only held as a keyed MAC state; it never appears in `Debug`
//! output, logs or errors.
//!
//! Verification checks the signature first, in constant time, and only then
//! any revocation state, expiry, principal and capability: a forged or
//! tampered token learns nothing but that it is invalid.
//!
//! Revocation: [`HmacTokenProvider::revoke`] by id, and
//! [`HmacTokenProvider::revoke_all`] by principal, which records a per-principal
//! *epoch*: an instant strictly after the `issued_at` of every token the
//! provider has issued so far (under the same lock `issue` stamps `issued_at`
//! in). Every token issued before `revoke_all` returns has `issued_at` before
//! the epoch and is revoked, whatever the tracking index still holds; a token
//! issued afterwards to that principal is stamped `issued_at = max(now, epoch)`
//! and is not. No token-format change: the epoch is an ordinary timestamp.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::error::{KernelError, Result};
use crate::ids::{ID_LEN, id_string, new_id_bytes};
use crate::time::{Clock, SystemClock, Timestamp};
use crate::types::Constraints;

type HmacSha256 = Hmac<Sha256>;

/// Name of the environment variable holding the signing secret.
pub const SECRET_ENV: &str = "AGENT_KERNEL_SECRET";
/// Default token lifetime: one hour.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(3600);
/// Default cap on tokens tracked for `revoke_all` counting.
pub const DEFAULT_MAX_TRACKED_TOKENS: usize = 100_000;

/// A signed, time-bounded, principal-scoped authorisation.
///
/// Tamper-evident (HMAC-SHA256) but not encrypted: put nothing secret in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapabilityToken {
    /// Unique id (UUID v4).
    pub token_id: String,
    /// The capability it authorises.
    pub capability_id: String,
    /// The principal it is bound to.
    pub principal_id: String,
    /// When it was issued.
    pub issued_at: Timestamp,
    /// When it stops being valid.
    pub expires_at: Timestamp,
    /// Constraints the policy imposed (row cap, allowed fields, …).
    pub constraints: Constraints,
    /// The grant's audit id.
    pub audit_id: String,
    /// Lower-case hex HMAC-SHA256 over the canonical form of the other fields.
    pub signature: String,
}

impl CapabilityToken {
    /// The JSON transport form.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string(self).map_err(|e| format_error(&e))
    }

    /// Parses the JSON transport form strictly: every field is required and
    /// unknown fields are refused. Errors are [`KernelError::TokenFormat`];
    /// their message names fields and positions but never quotes a value
    /// from `text` (an unknown field's name is shown redacted and cut to 64
    /// characters).
    ///
    /// ```
    /// use agent_kernel::CapabilityToken;
    /// let err = CapabilityToken::from_json("{\"token_id\": \"t1\"}").unwrap_err();
    /// assert_eq!(err.kind(), "token_format");
    /// let err = CapabilityToken::from_json("{\"token_id\": [\"hunter2\"]}").unwrap_err();
    /// assert!(!err.to_string().contains("hunter2"));
    /// ```
    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| format_error(&e))
    }

    /// Appends the canonical signed payload to `out`.
    pub fn write_signable(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"audit_id\":");
        write_json_str(out, &self.audit_id);
        out.extend_from_slice(b",\"capability_id\":");
        write_json_str(out, &self.capability_id);
        out.extend_from_slice(b",\"constraints\":{");
        if self.constraints.extra.is_empty() {
            // Fast path, already in key order: allowed_fields < max_rows.
            let mut first = true;
            if let Some(fields) = &self.constraints.allowed_fields {
                out.extend_from_slice(b"\"allowed_fields\":");
                write_str_list(out, fields);
                first = false;
            }
            if let Some(n) = self.constraints.max_rows {
                if !first {
                    out.push(b',');
                }
                out.extend_from_slice(b"\"max_rows\":");
                write_u64(out, n);
            }
        } else {
            for (i, (k, v)) in self.constraints.sorted_entries().iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json_str(out, k);
                out.push(b':');
                match v {
                    crate::types::ConstraintValue::Int(n) => write_u64(out, *n),
                    crate::types::ConstraintValue::Fields(f) => write_str_list(out, f),
                    crate::types::ConstraintValue::Json(v) => write_canonical(out, v),
                }
            }
        }
        out.extend_from_slice(b"},\"expires_at\":");
        write_u64(out, self.expires_at.as_millis());
        out.extend_from_slice(b",\"issued_at\":");
        write_u64(out, self.issued_at.as_millis());
        out.extend_from_slice(b",\"principal_id\":");
        write_json_str(out, &self.principal_id);
        out.extend_from_slice(b",\"token_id\":");
        write_json_str(out, &self.token_id);
        out.push(b'}');
    }
}

/// How many characters of caller text (an unknown field's name) a token
/// format error shows.
const MAX_QUOTED_CHARS: usize = 64;

/// A [`KernelError::TokenFormat`] for a serde_json error, its message made
/// safe to show: serde quotes the offending value (`invalid type: string
/// "…"`, `` integer `…` ``), which is caller text and may be a secret. Every
/// quoted literal is dropped, except a name in backticks that is one of the
/// token's own field or constraint names, or the name of an unknown field
/// (shown redacted and cut to [`MAX_QUOTED_CHARS`]). The result is also
/// passed through the redactor.
fn format_error(e: &serde_json::Error) -> KernelError {
    let message = unquote_values(&e.to_string());
    KernelError::TokenFormat {
        message: crate::otel::scrub(&message).into_owned(),
    }
}

/// Field and constraint names a token format error may name.
const KNOWN_NAMES: [&str; 10] = [
    "token_id",
    "capability_id",
    "principal_id",
    "issued_at",
    "expires_at",
    "constraints",
    "audit_id",
    "signature",
    Constraints::MAX_ROWS,
    Constraints::ALLOWED_FIELDS,
];

/// `message` with every quoted literal removed (see [`format_error`]).
/// serde quotes in two ways: `` `x` `` (names, numbers, booleans, characters)
/// and a Rust debug string `"x"` (strings, with `\"` and `\\` escapes).
pub(crate) fn unquote_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find(['`', '"']) {
        // `start` and the quote's end are ASCII positions: char boundaries.
        let before = rest.get(..start).unwrap_or_default();
        let quote = rest.get(start..).and_then(|f| f.chars().next());
        let body = rest.get(start + 1..).unwrap_or_default();
        let end = if quote == Some('`') {
            body.find('`')
        } else {
            debug_string_end(body)
        };
        let (Some(end), Some(quote)) = (end, quote) else {
            // Unterminated: drop the rest.
            out.push_str(before.trim_end());
            out.push_str(" (value not shown)");
            return out;
        };
        let literal = body.get(..end).unwrap_or_default();
        rest = body.get(end + 1..).unwrap_or_default();
        if quote == '`' && KNOWN_NAMES.contains(&literal) {
            out.push_str(before);
            out.push('`');
            out.push_str(literal);
            out.push('`');
        } else if quote == '`' && before.ends_with("unknown field ") {
            out.push_str(before);
            out.push('`');
            out.extend(crate::otel::scrub(literal).chars().take(MAX_QUOTED_CHARS));
            out.push('`');
        } else {
            // A value: dropped, with the space before it.
            out.push_str(before.strip_suffix(' ').unwrap_or(before));
        }
    }
    out.push_str(rest);
    out
}

/// Where the debug-quoted string starting at `body` (just after its opening
/// `"`) ends: the byte index of its closing `"`, skipping `\x` escapes.
fn debug_string_end(body: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, b) in body.bytes().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'"' => return Some(i),
            _ => {}
        }
    }
    None
}

/// Appends `s` as a JSON string literal (the same bytes `serde_json` writes).
fn write_json_str(out: &mut Vec<u8>, s: &str) {
    if needs_escape(s.as_bytes()) {
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    } else {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

/// Whether a JSON string literal of `bytes` needs escapes: a control byte
/// (below 0x20), `"` or `\`. Eight bytes at a time (SWAR); exact.
fn needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    // Nonzero iff some byte of `x` is below `n` (n <= 0x80).
    let below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGH;
    let has = |x: u64, b: u8| below(x ^ (ONES * u64::from(b)), 1);
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_ne_bytes(word);
        if below(x, 0x20) | has(x, b'"') | has(x, b'\\') != 0 {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

/// Appends a JSON array of strings.
fn write_str_list(out: &mut Vec<u8>, items: &[String]) {
    out.push(b'[');
    for (j, item) in items.iter().enumerate() {
        if j > 0 {
            out.push(b',');
        }
        write_json_str(out, item);
    }
    out.push(b']');
}

/// Appends the decimal form of `n`.
fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        if let Some(d) = digits.get_mut(i) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(i..).unwrap_or_default());
}

/// Lower-case hex of a MAC.
fn to_hex(bytes: &[u8; 32]) -> String {
    let mut text = [0u8; 64];
    // Both lengths are fixed (64 = 2 × 32): encoding cannot fail.
    let _ = hex::encode_to_slice(bytes, &mut text);
    std::str::from_utf8(&text)
        .map(str::to_owned)
        .unwrap_or_default()
}

/// Canonical JSON: object keys sorted at every level, no whitespace.
fn write_canonical(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<(&String, &Value)> = map.iter().collect();
            keys.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, v)) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json_str(out, k);
                out.push(b':');
                write_canonical(out, v);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(out, item);
            }
            out.push(b']');
        }
        scalar => {
            let _ = serde_json::to_writer(&mut *out, scalar);
        }
    }
}

#[derive(Debug)]
struct Tracked {
    expires_at: Timestamp,
    /// The text of the token's id (always an [`ID_LEN`]-byte UUID: `issue` makes it).
    token_id: [u8; ID_LEN],
    principal_id: Arc<str>,
}

/// Revocation state; every index drops entries once the tokens they concern expire.
#[derive(Debug, Default)]
struct Revocations {
    /// Revoked token ids → when the entry can be forgotten (the token's expiry).
    revoked: HashMap<String, Timestamp>,
    /// Min-heap over `revoked` by forget time.
    revoked_expiry: BinaryHeap<Reverse<(Timestamp, String)>>,
    /// Tokens issued and not yet expired, in issue order (bounded by
    /// `max_tracked`), for `revoke_all` counts. No per-issue hashing.
    tracked: VecDeque<Tracked>,
    /// principal → tokens issued strictly before this instant are revoked;
    /// tokens issued to the principal afterwards are stamped no earlier.
    epochs: HashMap<String, Timestamp>,
    /// The latest `issued_at` stamped so far (any principal): `revoke_all`'s
    /// epoch lies strictly after it, even if the clock went back.
    last_issued: Timestamp,
    /// Longest TTL issued so far (bounds how long an unknown id or an epoch matters).
    max_ttl: Duration,
    /// The principal of the last issue, shared by the `tracked` entries of a
    /// run of issues to the same principal (one allocation, not one per token).
    last_principal: Option<Arc<str>>,
}

impl Revocations {
    fn prune(&mut self, now: Timestamp) {
        while let Some(Reverse((at, _))) = self.revoked_expiry.peek() {
            if *at > now {
                break;
            }
            if let Some(Reverse((at, id))) = self.revoked_expiry.pop() {
                // Only forget if the entry was not refreshed with a later time.
                if self.revoked.get(&id).is_some_and(|t| *t <= at) {
                    self.revoked.remove(&id);
                }
            }
        }
        while self.tracked.front().is_some_and(|t| t.expires_at <= now) {
            self.tracked.pop_front();
        }
    }

    fn mark_revoked(&mut self, token_id: &str, forget_at: Timestamp) -> bool {
        match self.revoked.get_mut(token_id) {
            Some(at) => {
                if *at < forget_at {
                    *at = forget_at;
                    self.revoked_expiry
                        .push(Reverse((forget_at, token_id.to_owned())));
                }
                false
            }
            None => {
                self.revoked.insert(token_id.to_owned(), forget_at);
                self.revoked_expiry
                    .push(Reverse((forget_at, token_id.to_owned())));
                true
            }
        }
    }
}

/// One revocation to make durable (see
/// [`RevocationStore`](crate::store::RevocationStore)): what
/// [`HmacTokenProvider::revoke`] and [`HmacTokenProvider::revoke_all_recorded`]
/// put in force, and [`HmacTokenProvider::restore`] puts back after a restart.
/// Each entry can be forgotten at `forget_at`, when every token it covers has
/// expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// One token, by id.
    Token {
        /// The revoked token's id.
        token_id: String,
        /// When the token has expired (or, for an id this process never
        /// issued, when every token it could have issued has).
        forget_at: Timestamp,
    },
    /// Every token issued to a principal before `epoch`.
    Principal {
        /// The principal.
        principal_id: String,
        /// Tokens of the principal issued strictly before this are revoked.
        epoch: Timestamp,
        /// When every token the epoch covers has expired.
        forget_at: Timestamp,
    },
}

impl Revocation {
    /// When the entry can be forgotten.
    pub fn forget_at(&self) -> Timestamp {
        match self {
            Self::Token { forget_at, .. } | Self::Principal { forget_at, .. } => *forget_at,
        }
    }
}

/// Issues and verifies HMAC-SHA256 capability tokens and tracks revocations.
///
/// ```
/// use agent_kernel::{Constraints, HmacTokenProvider};
/// let tokens = HmacTokenProvider::new(b"a-test-secret-of-decent-length")?;
/// let t = tokens.issue("billing.list_invoices", "u1", Constraints::default(), None, "audit-1");
/// tokens.verify(&t, "u1", "billing.list_invoices")?;
/// assert_eq!(tokens.verify(&t, "u2", "billing.list_invoices").unwrap_err().kind(), "token_principal_mismatch");
/// tokens.revoke(&t.token_id);
/// assert_eq!(tokens.verify(&t, "u1", "billing.list_invoices").unwrap_err().kind(), "token_revoked");
/// # Ok::<(), agent_kernel::KernelError>(())
/// ```
pub struct HmacTokenProvider {
    mac: HmacSha256,
    clock: Arc<dyn Clock>,
    default_ttl: Duration,
    max_tracked: usize,
    state: Mutex<Revocations>,
}

impl fmt::Debug for HmacTokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HmacTokenProvider")
            .field("secret", &"<redacted>")
            .field("default_ttl", &self.default_ttl)
            .field("max_tracked", &self.max_tracked)
            .finish_non_exhaustive()
    }
}

fn dev_secret() -> &'static [u8; 32] {
    static DEV: OnceLock<[u8; 32]> = OnceLock::new();
    DEV.get_or_init(|| {
        log::warn!(
            "{SECRET_ENV} is not set; using a random per-process development secret. \
             Tokens will not survive restarts. Set {SECRET_ENV} in production."
        );
        rand::random()
    })
}

impl HmacTokenProvider {
    /// A provider signing with `secret` (must not be empty).
    pub fn new(secret: impl AsRef<[u8]>) -> Result<Self> {
        let secret = secret.as_ref();
        if secret.is_empty() {
            return Err(KernelError::invalid_config(
                "the token secret must not be empty",
            ));
        }
        let mac = HmacSha256::new_from_slice(secret)
            .map_err(|_| KernelError::invalid_config("the token secret cannot key HMAC-SHA256"))?;
        Ok(Self {
            mac,
            clock: Arc::new(SystemClock),
            default_ttl: DEFAULT_TOKEN_TTL,
            max_tracked: DEFAULT_MAX_TRACKED_TOKENS,
            state: Mutex::new(Revocations::default()),
        })
    }

    /// A provider signing with `AGENT_KERNEL_SECRET`, or, when it is unset or
    /// empty, with a random per-process development secret (logged once, as a warning).
    pub fn from_env() -> Result<Self> {
        match std::env::var(SECRET_ENV) {
            Ok(secret) if !secret.is_empty() => Self::new(secret.as_bytes()),
            _ => Self::new(dev_secret()),
        }
    }

    /// Uses `clock` for issue times and expiry checks.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sets the lifetime of tokens issued without an explicit TTL (default 1 h).
    #[must_use]
    pub fn with_default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = ttl;
        self
    }

    /// Caps how many live tokens are tracked for `revoke_all` counting (default
    /// 100 000). Past the cap the oldest are forgotten by the index;
    /// `revoke_all` still revokes them (by issue time) but no longer counts them.
    #[must_use]
    pub fn with_max_tracked_tokens(mut self, n: usize) -> Self {
        self.max_tracked = n.max(1);
        self
    }

    /// The default TTL.
    pub fn default_ttl(&self) -> Duration {
        self.default_ttl
    }

    /// Whether `key` is this provider's signing secret (see
    /// [`PseudonymKey`](crate::PseudonymKey): a pseudonym key must not be).
    pub(crate) fn signs_with(&self, key: &crate::PseudonymKey) -> bool {
        key.same_key_as(&self.mac)
    }

    /// Whether `key` is this provider's signing secret (an audit chain key must not be).
    pub(crate) fn signs_with_audit_key(&self, key: &crate::store::AuditKey) -> bool {
        key.same_key_as(&self.mac)
    }

    /// HMAC-SHA256 of the token's canonical payload. The key schedule is done
    /// once (`self.mac` is keyed); the payload is written into a reused
    /// per-thread buffer.
    fn sign(&self, token: &CapabilityToken) -> [u8; 32] {
        thread_local! {
            static PAYLOAD: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(512));
        }
        let mut mac = self.mac.clone();
        PAYLOAD.with(|cell| match cell.try_borrow_mut() {
            Ok(mut buf) => {
                buf.clear();
                token.write_signable(&mut buf);
                mac.update(&buf);
            }
            // Not reachable (no re-entrancy), but never panic: use a fresh buffer.
            Err(_) => {
                let mut buf = Vec::with_capacity(512);
                token.write_signable(&mut buf);
                mac.update(&buf);
            }
        });
        mac.finalize().into_bytes().into()
    }

    /// Issues a signed token (TTL `ttl`, or the default when `None`).
    ///
    /// `issued_at` is the clock's time, or, for a principal
    /// [`revoke_all`](Self::revoke_all) was called for, that call's epoch if
    /// it is later (at most a millisecond later than the clock, unless the
    /// clock went back); `expires_at` is `issued_at + ttl`.
    pub fn issue(
        &self,
        capability_id: &str,
        principal_id: &str,
        constraints: Constraints,
        ttl: Option<Duration>,
        audit_id: &str,
    ) -> CapabilityToken {
        let ttl = ttl.unwrap_or(self.default_ttl);
        let now = self.clock.now();
        let token_key = new_id_bytes();
        // Stamp issue time under the lock revoke_all takes: either revoke_all
        // sees this issue_at (and its epoch lies after it), or this issue sees
        // the epoch (and stamps no earlier).
        let issued_at = {
            let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            st.prune(now);
            let mut issued_at = now;
            if !st.epochs.is_empty() {
                if let Some(epoch) = st.epochs.get(principal_id) {
                    issued_at = issued_at.max(*epoch);
                }
            }
            st.last_issued = st.last_issued.max(issued_at);
            if ttl > st.max_ttl {
                st.max_ttl = ttl;
            }
            if st.tracked.len() >= self.max_tracked {
                st.tracked.pop_front();
            }
            let principal = match &st.last_principal {
                Some(p) if **p == *principal_id => Arc::clone(p),
                _ => {
                    let p: Arc<str> = Arc::from(principal_id);
                    st.last_principal = Some(Arc::clone(&p));
                    p
                }
            };
            st.tracked.push_back(Tracked {
                expires_at: issued_at.saturating_add(ttl),
                token_id: token_key,
                principal_id: principal,
            });
            issued_at
        };
        let mut token = CapabilityToken {
            token_id: id_string(&token_key),
            capability_id: capability_id.to_owned(),
            principal_id: principal_id.to_owned(),
            issued_at,
            expires_at: issued_at.saturating_add(ttl),
            constraints,
            audit_id: audit_id.to_owned(),
            signature: String::new(),
        };
        token.signature = to_hex(&self.sign(&token));
        token
    }

    /// Verifies, in this order: signature (constant time) → revoked →
    /// expired → principal → capability; each failure is its own error kind.
    ///
    /// The signature comes first, so a forged or tampered token is
    /// [`KernelError::TokenInvalid`] whatever the revocation state, expiry,
    /// principal or capability: it cannot probe whether a token id was
    /// revoked or [`revoke_all`](Self::revoke_all) was called for a principal.
    /// Its error names its token id redacted and cut to 64 characters (the
    /// id of a forgery is caller text); every later check runs on signed fields.
    pub fn verify(
        &self,
        token: &CapabilityToken,
        expected_principal_id: &str,
        expected_capability_id: &str,
    ) -> Result<()> {
        let expected = self.sign(token);
        let mut presented = [0u8; 32];
        let decoded = hex::decode_to_slice(token.signature.as_bytes(), &mut presented).is_ok();
        if !(decoded && bool::from(expected.ct_eq(&presented))) {
            log::warn!(
                "token_verify_failed token_id={} reason=invalid_signature",
                crate::ids::for_telemetry(&token.token_id)
            );
            return Err(KernelError::TokenInvalid {
                token_id: crate::otel::scrub(&token.token_id)
                    .chars()
                    .take(MAX_QUOTED_CHARS)
                    .collect(),
            });
        }
        let now = self.clock.now();
        let revoked = {
            let st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            st.revoked.contains_key(&token.token_id)
                || st
                    .epochs
                    .get(&token.principal_id)
                    .is_some_and(|epoch| token.issued_at < *epoch)
        };
        if revoked {
            log::warn!(
                "token_verify_failed token_id={} reason=revoked",
                crate::ids::for_telemetry(&token.token_id)
            );
            return Err(KernelError::TokenRevoked {
                token_id: token.token_id.clone(),
            });
        }
        if token.expires_at <= now {
            log::warn!(
                "token_verify_failed token_id={} reason=expired",
                crate::ids::for_telemetry(&token.token_id)
            );
            return Err(KernelError::TokenExpired {
                token_id: token.token_id.clone(),
                expires_at: token.expires_at,
            });
        }
        if token.principal_id != expected_principal_id {
            log::warn!(
                "token_verify_failed token_id={} reason=principal_mismatch",
                crate::ids::for_telemetry(&token.token_id)
            );
            return Err(KernelError::TokenPrincipalMismatch {
                token_id: token.token_id.clone(),
                token_principal: token.principal_id.clone(),
                presented_by: expected_principal_id.to_owned(),
            });
        }
        if token.capability_id != expected_capability_id {
            log::warn!(
                "token_verify_failed token_id={} reason=capability_mismatch",
                crate::ids::for_telemetry(&token.token_id)
            );
            return Err(KernelError::TokenCapabilityMismatch {
                token_id: token.token_id.clone(),
                token_capability: token.capability_id.clone(),
                expected: expected_capability_id.to_owned(),
            });
        }
        Ok(())
    }

    /// Revokes one token by id. Idempotent; an unknown id is remembered for the
    /// longest TTL issued so far (so a token from before a restart of the index
    /// stays revoked). Returns the entry to make durable (a
    /// [`RevocationStore`](crate::store::RevocationStore) keeps it across restarts).
    pub fn revoke(&self, token_id: &str) -> Revocation {
        let now = self.clock.now();
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.prune(now);
        // Rare operation: a reverse scan (recent tokens first) finds the expiry.
        let forget_at = match st
            .tracked
            .iter()
            .rev()
            .find(|t| t.token_id.as_slice() == token_id.as_bytes())
        {
            Some(t) => t.expires_at,
            // Every token issued so far expires by then (`issued_at` may be
            // an epoch a little after `now`).
            None => now
                .max(st.last_issued)
                .saturating_add(st.max_ttl.max(self.default_ttl)),
        };
        st.mark_revoked(token_id, forget_at);
        Revocation::Token {
            token_id: token_id.to_owned(),
            forget_at: st.revoked.get(token_id).copied().unwrap_or(forget_at),
        }
    }

    /// Revokes every token issued to `principal_id` before this call returns,
    /// tracked or not; returns how many live, tracked tokens were newly
    /// revoked (already revoked ones, and those the bounded index no longer
    /// holds, are not counted).
    ///
    /// It records the principal's epoch strictly after every `issued_at`
    /// stamped so far (`max(now, latest issue) + 1 ms`, under the lock
    /// [`issue`](Self::issue) stamps in), so no earlier token, even one from
    /// the same millisecond, escapes it; tokens issued to the principal
    /// afterwards are stamped at the epoch or later and stay valid. The epoch
    /// is forgotten once every token it can cover has expired.
    pub fn revoke_all(&self, principal_id: &str) -> usize {
        self.revoke_all_recorded(principal_id).0
    }

    /// [`revoke_all`](Self::revoke_all), also returning the principal's epoch
    /// as the entry to make durable (it covers every token the call revoked).
    pub fn revoke_all_recorded(&self, principal_id: &str) -> (usize, Revocation) {
        let now = self.clock.now();
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.prune(now);
        let mine: Vec<(String, Timestamp)> = st
            .tracked
            .iter()
            .filter(|t| &*t.principal_id == principal_id && t.expires_at > now)
            .map(|t| (id_string(&t.token_id), t.expires_at))
            .collect();
        let mut newly = 0;
        for (id, expires_at) in &mine {
            if st.mark_revoked(id, *expires_at) {
                newly += 1;
            }
        }
        // Epochs older than the longest TTL cover only expired tokens: forget them.
        let horizon = st.max_ttl.max(self.default_ttl);
        st.epochs.retain(|_, at| at.saturating_add(horizon) > now);
        // Strictly after every token issued so far, tracked or not.
        let epoch = now
            .max(st.last_issued)
            .saturating_add(Duration::from_millis(1));
        let entry = st.epochs.entry(principal_id.to_owned()).or_insert(epoch);
        if *entry < epoch {
            *entry = epoch;
        }
        let epoch = *entry;
        let revocation = Revocation::Principal {
            principal_id: principal_id.to_owned(),
            epoch,
            forget_at: epoch.saturating_add(horizon),
        };
        (newly, revocation)
    }

    /// Puts revocations made durable earlier (by this process or one before
    /// it) back in force: each token id stays revoked until its `forget_at`,
    /// each principal's epoch applies as if `revoke_all` had just been called.
    /// Entries already forgotten (`forget_at` passed) are skipped.
    pub fn restore(&self, revocations: &[Revocation]) {
        let now = self.clock.now();
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        for revocation in revocations {
            match revocation {
                Revocation::Token {
                    token_id,
                    forget_at,
                } => {
                    if *forget_at > now {
                        st.mark_revoked(token_id, *forget_at);
                    }
                }
                Revocation::Principal {
                    principal_id,
                    epoch,
                    forget_at,
                } => {
                    if *forget_at <= now {
                        continue;
                    }
                    // The epoch is forgotten after the longest TTL: keep the
                    // horizon it was recorded with.
                    let horizon = forget_at.saturating_duration_since(*epoch);
                    if horizon > st.max_ttl {
                        st.max_ttl = horizon;
                    }
                    st.last_issued = st.last_issued.max(*epoch);
                    let entry = st.epochs.entry(principal_id.clone()).or_insert(*epoch);
                    if *entry < *epoch {
                        *entry = *epoch;
                    }
                }
            }
        }
    }

    /// How many tokens the revocation index currently tracks (for tests and metrics).
    pub fn tracked_tokens(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .tracked
            .len()
    }

    /// How many revoked ids are currently remembered.
    pub fn revoked_entries(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .revoked
            .len()
    }
}
