//! The checks behind the kernel's fuzz targets: `token`, `redaction`,
//! `firewall` and `expand`. Each entry point takes the fuzzer's bytes, never
//! panics on its own account, and asserts invariants (a failed assertion is a
//! crash the fuzzer reports).
//!
//! This file depends only on `agent_kernel` and crates `agent-kernel` itself
//! depends on (serde_json, regex, hmac, sha2, hex), so that
//! `agent-kernel/tests/fuzz_regressions.rs` can include it with `#[path]` and
//! replay stored inputs as ordinary tests. Keep it that way.
//!
//! Structure is read from the bytes with the small [`Bytes`] reader below
//! rather than with `arbitrary`, for the same reason: the replaying test
//! must decode an input exactly as the fuzz target did.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::collections::BTreeSet;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use agent_kernel::firewall::{MAX_FACTS, REDACTED, Redactor, is_sensitive_field_name};
use agent_kernel::policy::MAX_ROWS_USER;
use agent_kernel::{
    Budgets, Capability, CapabilityRegistry, CapabilityToken, Constraints, DefaultPolicyEngine,
    ExpandQuery, Firewall, FirewallRequest, HandleOwner, HmacTokenProvider, Kernel, ManualClock,
    Principal, ResponseMode, SafetyClass, Timestamp,
};
use hmac::{Hmac, Mac};
use regex::Regex;
use serde_json::{Map, Number, Value, json};
use sha2::Sha256;

/// The fixed signing secret of the `token` target.
pub const TOKEN_SECRET: &str = "fuzz-fixed-secret-0123456789abcdef";
/// The fixed "now" of every clock in these checks (2023-11-14T22:13:20Z).
pub const NOW_MS: u64 = 1_700_000_000_000;

/// ASCII e-mail addresses with a dotted domain whose last label has a
/// letter (`1.2.3` after an `@` is a version: `lodash@4.17.21`), used as the
/// oracle "no e-mail address leaves the firewall" (the firewall's own rule,
/// `firewall/patterns.rs`, takes more: UTF-8, quoted local parts, single
/// labels).
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"[a-zA-Z0-9_.+\-]+@[a-zA-Z0-9\-]+(?:\.[a-zA-Z0-9\-]+)*\.[a-zA-Z0-9\-]*[a-zA-Z][a-zA-Z0-9\-]*",
    )
    .expect("valid regex")
});

// ── Input reader ────────────────────────────────────────────────────────────

/// Reads structure from fuzzer bytes; reads past the end yield zeros.
#[derive(Debug, Clone)]
pub struct Bytes<'a> {
    data: &'a [u8],
}

/// Fragments that make strings interesting to the redactor and the token parser.
const FRAGMENTS: &[&str] = &[
    "bob@example.com",
    "a.b+c@sub.example.co.uk",
    "+1-555-123-4567",
    "(020) 7946-0958",
    "555 123 4567",
    "4111 1111 1111 1111",
    "4111-1111-1111-1111-123",
    "5500000000000004",
    "123-45-6789",
    "123 45 6789",
    "Bearer abc.DEF-123_~+/==",
    "bearer\tXYZ",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
    "api_key=sk_live_0123456789",
    "apikey: ABCDEFGH12345678",
    "access-key 0123456789abcdef",
    "token: t0k3n",
    "\"password\": \"hunter2\"",
    "client_secret=s3cr3t",
    "pwd=x",
    "private_key='k'",
    "postgres://user:p@ss@db.internal:5432/app",
    "https://u:p@h/x",
    "[REDACTED]",
    "[TRUNCATED]",
    "١٢٣-٤٥-٦٧٨٩",
    "０１２３４５６７８９０１２",
    "é",
    "\u{0}",
    "\\",
    "\"",
    " ",
    "\n",
    "=",
    ":",
    "@",
    ".",
    "-",
    "/",
    "0",
    "12",
    "1234567",
];

/// Object keys: sensitive names (in several cases), ordinary names, and keys
/// that are themselves sensitive text.
const KEYS: &[&str] = &[
    "email",
    "EMAIL",
    "Phone",
    "card_number",
    "ssn",
    "social_security_number",
    "cvv",
    "credit_card",
    "password",
    "secret",
    "id",
    "name",
    "status",
    "amount",
    "customer",
    "note",
    "token",
    "api_key",
    "value",
    "",
    "bob@example.com",
    "123-45-6789",
];

/// The `allowed_fields` lists the checks try (none holds sensitive text: a
/// key named in `allowed_fields` is configuration and is not scrubbed).
const ALLOWED: &[Option<&[&str]>] = &[
    None,
    Some(&[]),
    Some(&["id", "name", "status"]),
    Some(&["email", "name", "amount", "note"]),
];

fn allowed_fields(selector: u8) -> Option<Vec<String>> {
    ALLOWED[usize::from(selector) % ALLOWED.len()]
        .map(|list| list.iter().map(|s| (*s).to_owned()).collect())
}

impl<'a> Bytes<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    pub fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | (u64::from(self.u32()) << 32)
    }

    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        head
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }

    /// A string of up to about `max` bytes: raw bytes (lossily decoded),
    /// fragments from [`FRAGMENTS`], or a mix.
    pub fn text(&mut self, max: usize) -> String {
        let tag = self.u8();
        let mut out = String::new();
        match tag % 4 {
            0 => {
                let n = usize::from(self.u8()) % (max + 1);
                out.push_str(&String::from_utf8_lossy(self.take(n)));
            }
            1 => out.push_str(FRAGMENTS[usize::from(self.u8()) % FRAGMENTS.len()]),
            _ => {
                for _ in 0..(tag >> 2) % 6 + 1 {
                    if self.u8() & 1 == 0 {
                        out.push_str(FRAGMENTS[usize::from(self.u8()) % FRAGMENTS.len()]);
                    } else {
                        let n = usize::from(self.u8() % 8);
                        out.push_str(&String::from_utf8_lossy(self.take(n)));
                    }
                    if out.len() >= max {
                        break;
                    }
                }
            }
        }
        out
    }

    /// An object key.
    pub fn key(&mut self) -> String {
        let b = self.u8();
        if b < 200 {
            KEYS[usize::from(b) % KEYS.len()].to_owned()
        } else {
            self.text(24)
        }
    }

    /// A JSON value at most `depth` levels deep.
    pub fn json(&mut self, depth: u32) -> Value {
        let tag = self.u8();
        match tag % 10 {
            0 => Value::Null,
            1 => Value::Bool(tag & 0x10 != 0),
            2 => json!(self.u64() as i64),
            3 => json!(u64::from(self.u16())),
            4 => {
                let f = f64::from_bits(self.u64());
                Number::from_f64(f).map_or(Value::Null, Value::Number)
            }
            5 | 6 => Value::String(self.text(64)),
            7 | 8 if depth > 0 => {
                let n = usize::from(self.u8() % 8);
                let mut map = Map::new();
                for _ in 0..n {
                    let k = self.key();
                    let v = self.json(depth - 1);
                    map.insert(k, v);
                }
                Value::Object(map)
            }
            9 if depth > 0 => {
                let n = usize::from(self.u8() % 12);
                Value::Array((0..n).map(|_| self.json(depth - 1)).collect())
            }
            _ => Value::String(self.text(16)),
        }
    }

    /// JSON from the remaining bytes: parsed if they are JSON, else a string of them.
    pub fn json_or_string(&mut self) -> Value {
        let rest = self.rest();
        serde_json::from_slice(rest)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(rest).into_owned()))
    }
}

// ── JSON helpers ────────────────────────────────────────────────────────────

/// Calls `f(text, is_key, parent_key)` on every string and object key of `v`.
fn visit_strings<'v>(
    v: &'v Value,
    parent: Option<&'v str>,
    f: &mut impl FnMut(&'v str, bool, Option<&'v str>),
) {
    match v {
        Value::String(s) => f(s, false, parent),
        Value::Array(items) => items.iter().for_each(|i| visit_strings(i, parent, f)),
        Value::Object(map) => {
            for (k, child) in map {
                f(k, true, parent);
                visit_strings(child, Some(k), f);
            }
        }
        _ => {}
    }
}

/// Asserts that no value under a sensitive field name survived (at any depth)
/// and that no string or key (other than one named in `allowed`) holds an e-mail address.
fn assert_clean(v: &Value, allowed: Option<&[String]>, what: &str) {
    let vouched = |k: &str| allowed.is_some_and(|a| a.iter().any(|x| x == k));
    visit_strings(v, None, &mut |s, is_key, _| {
        if !(is_key && vouched(s)) {
            assert!(
                !EMAIL.is_match(s),
                "{what}: an e-mail address survived in {:?}",
                s
            );
        }
    });
    assert_sensitive_redacted(v, what);
}

fn assert_sensitive_redacted(v: &Value, what: &str) {
    match v {
        Value::Array(items) => items
            .iter()
            .for_each(|i| assert_sensitive_redacted(i, what)),
        Value::Object(map) => {
            for (k, child) in map {
                if is_sensitive_field_name(k) {
                    assert_eq!(
                        child,
                        &Value::String(REDACTED.to_owned()),
                        "{what}: the value of sensitive field {k:?} survived"
                    );
                } else {
                    assert_sensitive_redacted(child, what);
                }
            }
        }
        _ => {}
    }
}

/// Nesting depth of containers: 0 for a scalar, 1 for `[]`, ...
fn container_depth(v: &Value) -> usize {
    match v {
        Value::Array(items) => 1 + items.iter().map(container_depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(container_depth).max().unwrap_or(0),
        _ => 0,
    }
}

// ── Target: token ───────────────────────────────────────────────────────────

static TOKENS: LazyLock<HmacTokenProvider> = LazyLock::new(|| {
    HmacTokenProvider::new(TOKEN_SECRET)
        .expect("valid secret")
        .with_clock(Arc::new(ManualClock::new(Timestamp::from_millis(NOW_MS))))
});

/// The signature `HmacTokenProvider` would compute, computed independently
/// from the public canonical form.
pub fn sign(token: &CapabilityToken) -> String {
    let mut payload = Vec::new();
    token.write_signable(&mut payload);
    let mut mac = Hmac::<Sha256>::new_from_slice(TOKEN_SECRET.as_bytes()).expect("any key length");
    mac.update(&payload);
    hex::encode(mac.finalize().into_bytes())
}

/// Canonical JSON written independently: keys sorted at every level, no
/// white space, serde_json's escaping and number forms.
fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k).expect("string"));
                out.push(':');
                canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&serde_json::to_string(scalar).expect("scalar")),
    }
}

/// `write_signable` equals the canonical form of the token without its signature.
fn check_canonical(token: &CapabilityToken) {
    let mut signable = Vec::new();
    token.write_signable(&mut signable);
    let mut value = serde_json::to_value(token).expect("a token serialises");
    if let Value::Object(map) = &mut value {
        map.remove("signature");
    }
    let mut expected = String::new();
    canonical(&value, &mut expected);
    assert_eq!(
        String::from_utf8_lossy(&signable),
        expected,
        "write_signable differs from the canonical form"
    );
}

/// to_json → from_json gives the same token, and the same JSON again.
fn check_round_trip(token: &CapabilityToken) -> CapabilityToken {
    let text = token.to_json().expect("a token serialises");
    let back = match CapabilityToken::from_json(&text) {
        Ok(t) => t,
        Err(e) => panic!("a serialised token does not parse back: {e}\n{text}"),
    };
    assert_eq!(&back, token, "token JSON does not round-trip: {text}");
    assert_eq!(back.to_json().expect("serialises"), text);
    back
}

/// Error text never carries the signature or the secret.
fn check_error_text(token: &CapabilityToken, err: &agent_kernel::KernelError, extra: &[&str]) {
    let text = format!("{err} {err:?}");
    assert!(
        !text.contains(TOKEN_SECRET),
        "the secret leaked into an error: {text}"
    );
    let sig = token.signature.as_str();
    let elsewhere = [
        token.token_id.as_str(),
        &token.capability_id,
        &token.principal_id,
        &token.audit_id,
    ]
    .iter()
    .chain(extra)
    .any(|f| f.contains(sig));
    if sig.len() >= 16 && !elsewhere {
        assert!(
            !text.contains(sig),
            "the signature leaked into an error: {text}"
        );
    }
}

fn verify(
    token: &CapabilityToken,
    principal: &str,
    capability: &str,
) -> Result<(), agent_kernel::KernelError> {
    let r = TOKENS.verify(token, principal, capability);
    if let Err(e) = &r {
        check_error_text(token, e, &[principal, capability]);
    }
    r
}

fn kind(r: Result<(), agent_kernel::KernelError>) -> &'static str {
    match r {
        Ok(()) => "ok",
        Err(e) => e.kind(),
    }
}

/// Target `token`. First byte even: the rest is token JSON (arbitrary bytes,
/// lossily decoded), parsed and verified. Odd: a token is built from the bytes,
/// signed with the fixed secret, then verified, transported, and tampered with.
pub fn token(data: &[u8]) {
    let mut b = Bytes::new(data);
    if b.u8() & 1 == 0 {
        token_from_json(b.rest());
    } else {
        token_structured(&mut b);
    }
}

fn token_from_json(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let token = match CapabilityToken::from_json(&text) {
        Ok(t) => t,
        Err(e) => {
            assert_eq!(e.kind(), "token_format");
            return;
        }
    };
    check_canonical(&token);
    let back = check_round_trip(&token);
    let own = verify(&token, &token.principal_id, &token.capability_id);
    let _ = verify(&token, "fuzz-other-principal", &token.capability_id);
    let _ = verify(&token, &token.principal_id, "fuzz.other.capability");
    assert_eq!(
        kind(verify(&back, &back.principal_id, &back.capability_id)),
        kind(own.clone()),
        "a transported token verifies differently"
    );
    if own.is_ok() {
        // Only tokens signed with the fixed secret get here (the seeds hold some).
        assert_eq!(token.signature.to_ascii_lowercase(), sign(&token));
        assert!(token.expires_at.as_millis() > NOW_MS);
        if token.principal_id != "fuzz-other-principal" {
            assert_eq!(
                kind(verify(&token, "fuzz-other-principal", &token.capability_id)),
                "token_principal_mismatch"
            );
        }
    }
}

fn timestamp(b: &mut Bytes<'_>) -> u64 {
    match b.u8() % 6 {
        0 => NOW_MS - u64::from(b.u32()),
        1 | 2 => NOW_MS + u64::from(b.u32()),
        3 => NOW_MS,
        4 => u64::MAX - u64::from(b.u8()),
        _ => b.u64(),
    }
}

fn token_structured(b: &mut Bytes<'_>) {
    let token_id = b.text(40);
    let capability_id = b.text(40);
    let principal_id = b.text(40);
    let audit_id = b.text(24);
    let issued_at = timestamp(b);
    let expires_at = timestamp(b);
    let mut map = Map::new();
    let flags = b.u8();
    if flags & 1 != 0 {
        let n = if flags & 2 != 0 {
            b.u64()
        } else {
            u64::from(b.u8())
        };
        map.insert("max_rows".into(), json!(n));
    }
    if flags & 4 != 0 {
        let n = b.u8() % 5;
        let fields: Vec<Value> = (0..n).map(|_| Value::String(b.key())).collect();
        map.insert("allowed_fields".into(), Value::Array(fields));
    }
    for _ in 0..(flags >> 4) % 4 {
        let k = b.key();
        let v = b.json(3);
        if k != "max_rows" && k != "allowed_fields" {
            map.insert(k, v);
        }
    }
    let constraints = match Constraints::from_map(map) {
        Ok(c) => c,
        Err(e) => panic!("well-formed constraints refused: {e}"),
    };
    let mut token = CapabilityToken {
        token_id,
        capability_id,
        principal_id,
        issued_at: Timestamp::from_millis(issued_at),
        expires_at: Timestamp::from_millis(expires_at),
        constraints,
        audit_id,
        signature: String::new(),
    };
    token.signature = sign(&token);
    check_canonical(&token);

    let principal = token.principal_id.clone();
    let capability = token.capability_id.clone();
    let verdict = kind(verify(&token, &principal, &capability));
    let expected = if expires_at > NOW_MS {
        "ok"
    } else {
        "token_expired"
    };
    assert_eq!(verdict, expected, "a correctly signed token");

    // Transport keeps the verdict.
    let back = check_round_trip(&token);
    assert_eq!(kind(verify(&back, &principal, &capability)), verdict);
    if verdict != "ok" {
        return;
    }

    // Principal and capability binding.
    let other = format!("{principal}\u{0}x");
    assert_eq!(
        kind(verify(&token, &other, &capability)),
        "token_principal_mismatch"
    );
    let other = format!("{capability}.x");
    assert_eq!(
        kind(verify(&token, &principal, &other)),
        "token_capability_mismatch"
    );

    // Any change to a signed field (or to the signature) is detected.
    let mut t = token.clone();
    match b.u8() % 8 {
        0 => t.token_id.push('x'),
        1 => t.capability_id.push('x'),
        2 => t.principal_id.push('x'),
        3 => t.audit_id.push('x'),
        4 => t.issued_at = Timestamp::from_millis(issued_at ^ 1),
        5 => {
            let e = if expires_at == u64::MAX {
                expires_at - 1
            } else {
                expires_at + 1
            };
            if e <= NOW_MS {
                return;
            }
            t.expires_at = Timestamp::from_millis(e);
        }
        6 => {
            t.constraints.max_rows = Some(t.constraints.max_rows.map_or(0, |n| n.wrapping_add(1)));
        }
        _ => {
            let i = usize::from(b.u8()) % t.signature.len();
            let mut bytes = t.signature.clone().into_bytes();
            bytes[i] = if bytes[i] == b'0' { b'1' } else { b'0' };
            t.signature = String::from_utf8(bytes).expect("hex");
        }
    }
    let (p, c) = (t.principal_id.clone(), t.capability_id.clone());
    assert_eq!(
        kind(verify(&t, &p, &c)),
        "token_invalid",
        "tampering went unnoticed"
    );
}

// ── Target: redaction ───────────────────────────────────────────────────────

/// Target `redaction`. First byte: depth limit, `allowed_fields` choice and
/// input shape (structured JSON, parsed JSON, or a plain string).
pub fn redaction(data: &[u8]) {
    let mut b = Bytes::new(data);
    let cfg = b.u8();
    let max_depth = usize::from(cfg & 7) + if cfg & 0x80 != 0 { 60 } else { 0 };
    let redactor = Redactor::new().with_max_depth(max_depth);
    let allowed = allowed_fields((cfg >> 3) & 3);
    if cfg & 0x40 != 0 {
        let value = b.json(6);
        check_redact_value(&redactor, &value, allowed.as_deref());
        return;
    }
    let rest = b.rest();
    match serde_json::from_slice::<Value>(rest) {
        Ok(value) => check_redact_value(&redactor, &value, allowed.as_deref()),
        Err(_) => check_redact_str(&redactor, &String::from_utf8_lossy(rest)),
    }
}

fn check_redact_str(redactor: &Redactor, text: &str) {
    let (out, kinds) = redactor.redact_str_with_kinds(text);
    if kinds.is_empty() {
        assert_eq!(out, text, "text changed although no pattern was found");
    }
    assert!(!EMAIL.is_match(&out), "an e-mail address survived: {out:?}");
    let again = redactor.redact_str(&out);
    assert_eq!(again, out, "redact_str is not idempotent on {text:?}");
}

fn check_redact_value(redactor: &Redactor, value: &Value, allowed: Option<&[String]>) {
    let (out, warnings, total) = redactor.redact_value(value, allowed);
    let what = "redact_value";
    assert_clean(&out, allowed, what);
    visit_strings(&out, None, &mut |s, is_key, _| {
        if !is_key {
            assert_eq!(
                redactor.redact_str(s),
                s,
                "a redacted string still holds a pattern"
            );
        }
    });
    // Depth: nothing deeper than max_depth containers.
    let depth = redactor.max_depth();
    assert!(
        container_depth(&out) <= depth,
        "output nests deeper than max_depth={depth}"
    );
    // allowed_fields filters the top-level object and objects in top-level arrays.
    if let Some(list) = allowed.filter(|l| !l.is_empty()) {
        fn top_keys(v: &Value, list: &[String]) {
            match v {
                Value::Object(map) => {
                    for k in map.keys() {
                        assert!(list.contains(k), "key {k:?} is not in allowed_fields");
                    }
                }
                Value::Array(items) => items.iter().for_each(|i| top_keys(i, list)),
                _ => {}
            }
        }
        top_keys(&out, list);
    }
    // The other ways to the same result agree.
    let view = redactor.redact(value, allowed);
    assert_eq!(view.warnings, warnings);
    assert_eq!(view.counts.total(), total);
    assert_eq!(
        serde_json::to_value(&view.value).expect("view serialises"),
        out
    );
    assert_eq!(view.value.to_value(), out);
    let (audit_warnings, audit_counts) = redactor.audit(value, allowed);
    assert_eq!(audit_warnings, warnings, "audit and redact disagree");
    assert_eq!(audit_counts.total(), total);
    if total == 0 {
        assert_eq!(
            &out, value,
            "the value changed but no redaction was counted"
        );
        assert!(warnings.is_empty());
    }
    for w in &warnings {
        assert!(!EMAIL.is_match(w), "a warning holds an e-mail address: {w}");
    }
    // Idempotence: redacting the output again changes nothing.
    let (again, _, _) = redactor.redact_value(&out, allowed);
    assert_eq!(again, out, "redact_value is not idempotent");
}

// ── Target: firewall (summary and table modes) ─────────────────────────────

const MODES: [ResponseMode; 4] = [
    ResponseMode::Summary,
    ResponseMode::Table,
    ResponseMode::HandleOnly,
    ResponseMode::Raw,
];
const MAX_CHARS: [usize; 8] = [0, 1, 10, 80, 500, 4000, 20_000, usize::MAX];

/// Target `firewall`: `Firewall::apply` on arbitrary JSON with arbitrary
/// budgets; the first four bytes choose the mode and the budgets.
pub fn firewall(data: &[u8]) {
    let mut b = Bytes::new(data);
    let (c1, c2, c3, c4) = (b.u8(), b.u8(), b.u8(), b.u8());
    // Summary and table (what the brief asks for) three times as often as the others.
    let mode = match c1 & 7 {
        0..=2 => ResponseMode::Summary,
        3..=5 => ResponseMode::Table,
        m => MODES[usize::from(m - 4)],
    };
    let is_admin = c1 & 8 != 0;
    let allowed = allowed_fields((c1 >> 4) & 3);
    let req_max_rows = (c1 & 0x40 != 0).then_some(usize::from(c2 % 64));
    let budgets = Budgets {
        max_rows: usize::from(c2 >> 2) % 60,
        max_fields: usize::from(c3 & 31),
        max_chars: MAX_CHARS[usize::from(c4 & 7)],
        max_depth: usize::from((c3 >> 5) & 7) + if c4 & 0x80 != 0 { 60 } else { 0 },
    };
    let value = if c1 & 0x80 != 0 {
        b.json(5)
    } else {
        b.json_or_string()
    };
    let fw = Firewall::new(Budgets::default());
    let out = fw.apply(&FirewallRequest {
        data: &value,
        requested_mode: mode,
        allowed_fields: allowed.as_deref(),
        max_rows: req_max_rows,
        is_admin,
        budgets: &budgets,
    });

    let rows_in = match &value {
        Value::Array(items) => items.len(),
        _ => 1,
    };
    assert_eq!(out.stats.rows_in, rows_in);
    let fallback = mode == ResponseMode::Raw && !is_admin;
    let effective = if fallback {
        ResponseMode::Summary
    } else {
        mode
    };
    assert_eq!(out.effective_mode, effective);
    if fallback {
        assert!(out.warnings.iter().any(|w| w.contains("requires admin")));
    }
    for w in &out.warnings {
        assert!(!EMAIL.is_match(w), "a warning holds an e-mail address: {w}");
    }
    match effective {
        ResponseMode::Summary => {
            assert!(out.table_preview.is_empty() && out.raw_data.is_none());
            assert!(out.facts.len() <= MAX_FACTS, "{} facts", out.facts.len());
            let chars: usize = out.facts.iter().map(|f| f.chars().count()).sum();
            assert!(
                chars <= budgets.max_chars,
                "{chars} chars > {}",
                budgets.max_chars
            );
            assert_eq!(out.stats.chars, chars);
            assert_eq!(out.stats.rows_out, 0);
            for fact in &out.facts {
                assert!(
                    !EMAIL.is_match(fact),
                    "a fact holds an e-mail address: {fact}"
                );
            }
        }
        ResponseMode::Table => {
            assert!(out.facts.is_empty() && out.raw_data.is_none());
            let cap = req_max_rows.unwrap_or(budgets.max_rows);
            assert_eq!(out.table_preview.len(), cap.min(rows_in), "table row count");
            assert_eq!(out.stats.rows_out, out.table_preview.len());
            for row in &out.table_preview {
                assert!(row.len() <= budgets.max_fields, "row wider than max_fields");
                assert_clean(&Value::Object(row.clone()), allowed.as_deref(), "table");
            }
            let chars = serde_json::to_string(&out.table_preview)
                .expect("json")
                .chars()
                .count();
            assert_eq!(out.stats.chars, chars, "table chars");
        }
        ResponseMode::HandleOnly => {
            assert!(out.facts.is_empty() && out.table_preview.is_empty() && out.raw_data.is_none());
            assert_eq!(out.stats.rows_out, 0);
        }
        ResponseMode::Raw => {
            assert!(is_admin);
            let raw = out.raw_data.as_ref().expect("raw data for an admin");
            let redactor = Redactor::new().with_max_depth(budgets.max_depth);
            let (expected, _, total) = redactor.redact_value(&value, allowed.as_deref());
            assert_eq!(raw, &expected, "raw output differs from redact_value");
            assert_eq!(out.stats.redactions, total);
            assert_clean(raw, allowed.as_deref(), "raw");
        }
    }
}

// ── Target: expand (handle queries) ─────────────────────────────────────────

/// The kernels the `expand` target uses (built once): default budgets, tight ones, loose ones.
static KERNELS: LazyLock<Vec<Kernel>> = LazyLock::new(|| {
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(NOW_MS)));
    [
        Budgets::default(),
        Budgets {
            max_rows: 3,
            max_fields: 2,
            max_chars: 100,
            max_depth: 1,
        },
        Budgets {
            max_rows: 500,
            max_fields: 64,
            max_chars: 100_000,
            max_depth: 8,
        },
    ]
    .into_iter()
    .map(|budgets| {
        let mut registry = CapabilityRegistry::new();
        registry
            .register(Capability::new(
                EXPAND_CAPABILITY,
                "Fuzz",
                "The capability every expand-target handle belongs to",
                SafetyClass::Read,
            ))
            .expect("capability registers");
        // An expansion is rate-limited like an invocation: no limit in reach.
        let policy = DefaultPolicyEngine::builder()
            .clock(clock.clone())
            .rate_limit(SafetyClass::Read, u64::MAX / 2, Duration::from_secs(60))
            .build()
            .expect("policy builds");
        Kernel::builder(registry)
            .secret(TOKEN_SECRET)
            .clock(clock.clone())
            .policy(policy)
            .budgets(budgets)
            .build()
            .expect("kernel builds")
    })
    .collect()
});

/// The capability of every handle the `expand` target stores.
const EXPAND_CAPABILITY: &str = "fuzz.capability";

/// What the `expand` target stores when the input brings no data of its own.
fn default_rows() -> Value {
    json!([
        {"id": 1, "name": "Ada", "status": "paid", "email": "ada@example.com", "amount": 10.5,
         "note": "call +1-555-123-4567", "nested": {"email": "x@y.io", "deep": [1, [2, [3]]]}},
        {"id": 2, "name": "Bob", "status": "open", "email": "bob@example.com", "amount": 3,
         "card_number": "4111 1111 1111 1111"},
        {"id": 3, "name": "Cy", "status": "paid", "amount": -1, "ssn": "123-45-6789",
         "bob@example.com": "key is an address"},
        {"id": 4, "status": null, "note": "api_key=sk_live_0123456789"},
        "a bare string row with dan@example.org",
        7,
        [1, 2, 3]
    ])
}

const QUERY_KEYS: &[&str] = &[
    "id",
    "name",
    "status",
    "email",
    "amount",
    "note",
    "ssn",
    "missing",
    "bob@example.com",
];
const QUERY_VALUES: &[&str] = &["paid", "open", "Ada", "bob@example.com", "123-45-6789"];

/// A query built from bytes, shaped like a real one so filters match.
fn structured_query(b: &mut Bytes<'_>) -> Value {
    let flags = b.u8();
    let mut q = Map::new();
    if flags & 1 != 0 {
        let mut filter = Map::new();
        for _ in 0..(b.u8() % 3) {
            let k = QUERY_KEYS[usize::from(b.u8()) % QUERY_KEYS.len()].to_owned();
            let v = match b.u8() % 4 {
                0 => json!(b.u8() % 5),
                1 => Value::Null,
                2 => b.json(2),
                _ => json!(QUERY_VALUES[usize::from(b.u8()) % QUERY_VALUES.len()]),
            };
            filter.insert(k, v);
        }
        q.insert("filter".into(), Value::Object(filter));
    }
    if flags & 2 != 0 {
        q.insert("offset".into(), json!(b.u8() % 10));
    }
    if flags & 4 != 0 {
        let limit = if flags & 0x40 != 0 {
            u64::MAX
        } else {
            u64::from(b.u8() % 10)
        };
        q.insert("limit".into(), json!(limit));
    }
    if flags & 8 != 0 {
        let n = b.u8() % 4;
        let fields: Vec<Value> = (0..n)
            .map(|_| json!(QUERY_KEYS[usize::from(b.u8()) % QUERY_KEYS.len()]))
            .collect();
        q.insert("fields".into(), Value::Array(fields));
    }
    if flags & 0x80 != 0 {
        // Something that should be refused.
        let k = b.key();
        q.insert(k, b.json(1));
    }
    Value::Object(q)
}

/// Whether the stored field `key: have`, as an expansion would show it,
/// equals the filter value `want`: a sensitive field shows as the string
/// [`REDACTED`] whatever it holds; a string shows redacted; an array or an
/// object never equals a filter value (redaction may change it at depth);
/// numbers, booleans and null show as they are.
fn shown_as(redactor: &Redactor, key: &str, have: &Value, want: &Value) -> bool {
    if is_sensitive_field_name(key) {
        return *want == Value::String(REDACTED.to_owned());
    }
    match have {
        Value::String(s) => want.as_str() == Some(redactor.redact_str(s).as_ref()),
        Value::Array(_) | Value::Object(_) => false,
        Value::Number(n) if !redactor.number_kinds(n).is_empty() => {
            *want == Value::String(REDACTED.to_owned())
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => have == want,
    }
}

/// Target `expand`: the expand query parser and filter. Bytes 0–1 choose the
/// kernel and the handle's constraints; then either a structured query, or
/// `query JSON` NUL `data JSON` (no NUL: the default rows).
pub fn expand(data: &[u8]) {
    let mut b = Bytes::new(data);
    let (c1, c2) = (b.u8(), b.u8());
    let kernel = &KERNELS[usize::from(c1 % 3)];
    let allowed = allowed_fields((c1 >> 2) & 3);
    let constraints = Constraints {
        max_rows: (c1 & 0x10 != 0).then_some(u64::from(c2 % 40)),
        allowed_fields: allowed.clone().map(Into::into),
        ..Constraints::default()
    };
    let budgets = *kernel.firewall_budgets();
    // The rows an expansion may show: the token's max_rows, else the
    // principal's cap (a plain reader's).
    let cap = usize::try_from(constraints.max_rows.unwrap_or(MAX_ROWS_USER)).unwrap_or(usize::MAX);
    let (query_json, stored) = if c1 & 0x80 != 0 {
        let q = structured_query(&mut b);
        let stored = if c1 & 0x40 != 0 {
            b.json(4)
        } else {
            default_rows()
        };
        (q, stored)
    } else {
        let rest = b.rest();
        let (q, d) = match rest.iter().position(|&x| x == 0) {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        let Ok(q) = serde_json::from_slice::<Value>(q) else {
            return;
        };
        let stored = d
            .and_then(|d| serde_json::from_slice::<Value>(d).ok())
            .unwrap_or_else(default_rows);
        (q, stored)
    };
    let query = match ExpandQuery::from_json(&query_json) {
        Ok(q) => q,
        Err(e) => {
            assert_eq!(e.kind(), "invalid_argument");
            return;
        }
    };
    let token =
        kernel
            .token_provider()
            .issue(EXPAND_CAPABILITY, "alice", constraints, None, "fuzz-audit");
    let owner = HandleOwner {
        principal_id: "alice".into(),
        token,
        action_id: "fuzz-action".into(),
        session_id: None,
    };
    let handle = kernel
        .handles()
        .store(EXPAND_CAPABILITY, Arc::new(stored.clone()), owner);

    // Only the owner may expand.
    let mallory = kernel.expand(&handle, &query, &Principal::new("mallory"));
    assert_eq!(
        mallory.map(|_| ()).map_err(|e| e.kind()),
        Err("handle_access_denied")
    );

    let alice = Principal::new("alice").with_roles(["reader"]);
    // Refused: a token whose allowed_fields is empty (the policy never grants
    // one), a filter or projection key outside allowed_fields, or one that
    // redaction would hide (the caller sees no such key).
    let hider = kernel.firewall().redactor();
    let outside = if allowed.as_deref().is_some_and(<[String]>::is_empty) {
        Some("an empty allowed_fields".to_owned())
    } else {
        query
            .filter
            .keys()
            .chain(query.fields.iter().flatten())
            .find(|k| {
                hider.redact_str(k) != k.as_str()
                    || allowed.as_deref().is_some_and(|a| !a.contains(k))
            })
            .cloned()
    };
    let frame = match kernel.expand(&handle, &query, &alice) {
        Ok(frame) => frame,
        Err(e) => {
            assert_eq!(e.kind(), "policy_denied", "unexpected expand error: {e}");
            assert!(
                outside.is_some(),
                "denied although every field is allowed: {e}"
            );
            return;
        }
    };
    assert!(
        outside.is_none(),
        "a field outside allowed_fields was accepted: {outside:?}"
    );

    // Oracle: the row count, computed independently. A filter compares
    // against what the caller would see, never the raw value.
    let redactor = kernel.firewall().redactor();
    let rows: Vec<&Value> = match &stored {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    let matched = rows
        .iter()
        .filter(|row| {
            query.filter.is_empty()
                || row.as_object().is_some_and(|o| {
                    query.filter.iter().all(|(k, want)| {
                        o.get(k)
                            .is_some_and(|have| shown_as(redactor, k, have, want))
                    })
                })
        })
        .count()
        .saturating_sub(query.offset);
    let expected = matched.min(query.limit.unwrap_or(usize::MAX)).min(cap);
    assert_eq!(frame.table_preview.len(), expected, "expanded row count");
    for row in &frame.table_preview {
        assert!(row.len() <= budgets.max_fields, "row wider than max_fields");
        if let Some(fields) = &query.fields {
            // Projection: object rows keep only named fields (keys may be scrubbed).
            let names: BTreeSet<&String> = fields.iter().collect();
            assert!(
                row.len() <= names.len().max(1),
                "projection not applied: {row:?}"
            );
        }
        assert_clean(&Value::Object(row.clone()), allowed.as_deref(), "expand");
    }
    for w in &frame.warnings {
        assert!(!EMAIL.is_match(w), "a warning holds an e-mail address: {w}");
    }
    // The expansion is audited under its own action id; the provenance names
    // the invocation that produced the data.
    assert_ne!(frame.action_id, "fuzz-action");
    assert_eq!(frame.provenance.action_id, "fuzz-action");
    assert_eq!(
        kernel
            .explain(&frame.action_id)
            .ok()
            .and_then(|t| t.handle_id.clone()),
        Some(handle.handle_id.clone())
    );
    assert!(frame.raw_data.is_none() && frame.facts.is_empty());
}

/// Seeds for `token`: valid tokens signed with the fixed secret (JSON mode).
pub fn token_seed_tokens() -> Vec<CapabilityToken> {
    let mut constraints = Constraints {
        max_rows: Some(50),
        allowed_fields: Some(vec!["id".to_owned(), "name".to_owned()].into()),
        ..Constraints::default()
    };
    let plain = TOKENS.issue(
        "billing.list_invoices",
        "alice",
        Constraints::default(),
        None,
        "audit-1",
    );
    let constrained = TOKENS.issue(
        "crm.get_customer",
        "bob",
        constraints.clone(),
        None,
        "audit-2",
    );
    constraints
        .extra
        .insert("region".into(), json!({"b": [1, 2.5, "x"], "a": null}));
    let extra = TOKENS.issue(
        "ops.delete",
        "carol\"\\\u{1}é",
        constraints,
        None,
        "audit-3",
    );
    vec![plain, constrained, extra]
}

// ── shapes ──────────────────────────────────────────────────────────────────

/// Fragments an adversarial output repeats: each is a candidate for a
/// pattern, and most are (or hold) something the firewall redacts.
const SHAPE_UNITS: &[&str] = &[
    "12345678-1234-1234-1234-123456789012",
    "555-123-4567",
    "+1 555 123 4567",
    "4111 1111 1111 1111",
    "123-45-6789",
    "user@example.com",
    "a@",
    "password=hunter2",
    "Bearer abcdef123456",
    "eyJhbGciOi.eyJzdWIiOi.c2ln",
    "postgres://u:p@db",
    "2024-000123",
    "-",
    "0",
];

/// Key templates (`{}` takes the key's number): the first ones all scrub to
/// the same `[REDACTED]`, so their keys collide; `[REDACTED]#{}` takes the
/// names the renaming would give.
const SHAPE_KEYS: &[&str] = &[
    "user{}@example.com",
    "call +1-555-{}-0000",
    "[REDACTED]#{}",
    "field{}",
    "password{}",
    "k",
];

fn shape_key(template: u8, i: usize) -> String {
    SHAPE_KEYS[usize::from(template) % SHAPE_KEYS.len()].replace("{}", &i.to_string())
}

/// A tool output of an adversarial shape, from the fuzzer's bytes: many
/// keys (colliding once redacted, or all distinct across rows), long strings
/// dense with pattern candidates, deep nesting, or a mix of them.
pub fn shape(b: &mut Bytes<'_>) -> Value {
    let kind = b.u8();
    let n = usize::from(b.u16() % 4096) + 1;
    let (t1, t2, density) = (b.u8(), b.u8(), b.u8());
    match kind % 5 {
        // One object of n keys from two templates.
        0 => Value::Object(
            (0..n)
                .map(|i| {
                    let template = if (i * 7 + usize::from(density)) % 3 == 0 {
                        t2
                    } else {
                        t1
                    };
                    (shape_key(template, i), json!(i))
                })
                .collect(),
        ),
        // Rows of distinct keys (every row its own keys).
        1 => {
            let rows = usize::from(t2 % 12) + 1;
            let per_row = n / rows + 1;
            Value::Array(
                (0..rows)
                    .map(|r| {
                        Value::Object(
                            (0..per_row)
                                .map(|i| (shape_key(t1, r * per_row + i), json!(i)))
                                .collect(),
                        )
                    })
                    .collect(),
            )
        }
        // One long string dense with candidates.
        2 => {
            let sep = [" ", "", "-", ".", "\n"][usize::from(density) % 5];
            let units: Vec<&str> = (0..n)
                .map(|i| {
                    SHAPE_UNITS[(usize::from(t1) + i * usize::from(t2 | 1)) % SHAPE_UNITS.len()]
                })
                .collect();
            Value::String(units.join(sep))
        }
        // Deep nesting: objects and arrays alternating, a secret at the bottom.
        3 => {
            let depth = n % 200 + 1;
            let mut value = json!({ "password": "hunter2", "email": "user@example.com" });
            for d in 0..depth {
                value = if (d + usize::from(density)) % 2 == 0 {
                    json!([value])
                } else {
                    json!({ shape_key(t1, d): value })
                };
            }
            value
        }
        // Many rows sharing sensitive and colliding keys, candidates in the values.
        _ => {
            let keys = usize::from(t2 % 16) + 1;
            Value::Array(
                (0..n / keys + 1)
                    .map(|r| {
                        Value::Object(
                            (0..keys)
                                .map(|i| {
                                    let unit = SHAPE_UNITS[(r + i) % SHAPE_UNITS.len()];
                                    (shape_key(t1.wrapping_add(i as u8), i), json!(unit))
                                })
                                .collect(),
                        )
                    })
                    .collect(),
            )
        }
    }
}

/// The `shapes` target: an adversarial output through every mode of the
/// firewall and through redaction. What it checks here is the result (every
/// key kept under a distinct name, the budgets held, no e-mail address
/// out); what it checks by running is the time: `scripts/fuzz.sh` gives
/// this target a per-input budget (libFuzzer's `-timeout`), which the
/// super-linear stages of issue 16 overran at these sizes.
pub fn shapes(data: &[u8]) {
    let mut b = Bytes::new(data);
    let c = b.u8();
    let value = shape(&mut b);
    let budgets = Budgets {
        max_depth: usize::from(c % 8) + if c & 0x80 != 0 { 60 } else { 0 },
        ..Budgets::default()
    };
    let fw = Firewall::new(budgets);
    for (mode, is_admin) in [
        (ResponseMode::Table, false),
        (ResponseMode::Summary, false),
        (ResponseMode::Raw, true),
        (ResponseMode::HandleOnly, false),
    ] {
        let out = fw.apply(&FirewallRequest {
            data: &value,
            requested_mode: mode,
            allowed_fields: None,
            max_rows: None,
            is_admin,
            budgets: &budgets,
        });
        assert!(out.table_preview.len() <= budgets.max_rows);
        for row in &out.table_preview {
            assert!(row.len() <= budgets.max_fields);
        }
        assert!(out.facts.len() <= MAX_FACTS);
        let shown = serde_json::to_string(&(&out.facts, &out.table_preview, &out.raw_data))
            .unwrap_or_default();
        assert!(
            !EMAIL.is_match(&shown),
            "an e-mail address left the firewall"
        );
    }
    // Redaction keeps every key of an object it descends into, each under
    // its own name.
    if let Value::Object(map) = &value
        && budgets.max_depth > 0
    {
        let redacted = Redactor::new()
            .with_max_depth(budgets.max_depth)
            .redact_value(&value, None)
            .0;
        assert_eq!(redacted.as_object().map(Map::len), Some(map.len()));
    }
}
