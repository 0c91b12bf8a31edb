//! Tests for the context firewall: every rule, pattern, mode and budget,
//! the reference's firewall and redaction cases, and property tests.

use std::borrow::Cow;

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::patterns::{PATTERNS, candidates};
use super::*;
use crate::types::ResponseMode;

// ── helpers ─────────────────────────────────────────────────────────────────

fn fields(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

fn run(data: &Value, mode: ResponseMode) -> FirewallOutput {
    run_with(data, mode, None, None, false, &Budgets::default())
}

fn run_with(
    data: &Value,
    mode: ResponseMode,
    allowed: Option<&[String]>,
    max_rows: Option<usize>,
    is_admin: bool,
    budgets: &Budgets,
) -> FirewallOutput {
    Firewall::new(*budgets).apply(&FirewallRequest {
        data,
        requested_mode: mode,
        allowed_fields: allowed,
        max_rows,
        is_admin,
        budgets,
    })
}

fn kinds(text: &str) -> PatternSet {
    Redactor::new().redact_str_with_kinds(text).1
}

fn scrub(text: &str) -> String {
    Redactor::new().redact_str(text).into_owned()
}

/// The 200 invoices of the workspace's `data/billing_invoices.json`.
fn billing() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/billing_invoices.json");
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("the billing data must be in the repository: {path}: {e}"));
    let data: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(data.as_array().map(Vec::len), Some(200), "{path}");
    data
}

const ALLOWED: [&str; 6] = [
    "id",
    "customer_name",
    "amount",
    "currency",
    "status",
    "date",
];

// ── compiled patterns ───────────────────────────────────────────────────────

#[test]
fn every_pattern_compiles() {
    assert!(PATTERNS.all_compiled());
}

#[test]
fn firewall_is_send_sync_and_cheap_to_share() {
    fn assert_traits<T: Send + Sync + Clone + 'static>() {}
    assert_traits::<Firewall>();
    assert_traits::<Redactor>();
    assert!(std::mem::size_of::<Redactor>() <= 16);
}

// ── e-mail ──────────────────────────────────────────────────────────────────

#[test]
fn email_true_positives() {
    for text in [
        "user@example.com",
        "first.last@company.co.uk",
        "name+tag@domain.org",
        "user_name@sub.domain.com",
        "user-name@example.io",
    ] {
        assert!(kinds(text).contains(PatternKind::Email), "{text}");
        assert_eq!(scrub(text), REDACTED, "{text}");
    }
}

#[test]
fn email_true_negatives() {
    for text in ["plaintext", "user@", "@domain.com", "user@@domain.com"] {
        assert!(!kinds(text).contains(PatternKind::Email), "{text}");
    }
}

// ── phone ───────────────────────────────────────────────────────────────────

#[test]
fn phone_true_positives() {
    for text in [
        "+1-555-123-4567",
        "(555) 123-4567",
        "555-123-4567",
        "555.123.4567",
        "+44 20 7946 0958",
        "(020) 7946-0958",
        "123 456 7890",
        "+1 800 555 0199",
    ] {
        assert!(kinds(text).contains(PatternKind::Phone), "{text}");
        assert!(
            !scrub(text).contains("4567") || text.contains("4567 "),
            "{text}"
        );
    }
}

#[test]
fn phone_true_negatives() {
    for text in [
        "2026-03-04",
        "100.00 - 200.00",
        "v1.2.3.456",
        "192.168.1.100",
        "order-12345",
        "1234567",
        "(100)",
        "3.14159",
        "2026/03/04",
        "ID: 9876543",
    ] {
        assert_eq!(scrub(text), text, "{text}");
        assert!(kinds(text).is_empty(), "{text}");
    }
}

#[test]
fn phone_look_behind_and_look_ahead() {
    // Preceded by '.', '/' or a digit: not a phone number (as in the reference).
    assert_eq!(scrub("v.555-123-4567"), "v.555-123-4567");
    assert_eq!(scrub("a/555-123-4567"), "a/555-123-4567");
    // Followed by '.': no match either.
    assert_eq!(scrub("555-123-4567.txt"), "555-123-4567.txt");
    // The character after the number stays.
    assert_eq!(
        scrub("call 555-123-4567, thanks"),
        "call [REDACTED], thanks"
    );
    assert_eq!(
        scrub("(555) 123-4567 and 555.987.6543!"),
        "[REDACTED] and [REDACTED]!"
    );
    assert_eq!(
        scrub("Call me at (555) 123-4567 please"),
        "Call me at [REDACTED] please"
    );
}

#[test]
fn adjacent_phone_numbers_go_in_one_pass() {
    // The end of a replacement is a boundary: the first number's last digit
    // no longer hides the second one.
    for (text, want) in [
        ("+1-555-123-4567(020) 7946-0958", "[REDACTED][REDACTED]"),
        ("555-123-4567,555.987.6543", "[REDACTED],[REDACTED]"),
        ("(555) 123-4567(555) 987-6543 x", "[REDACTED][REDACTED] x"),
        ("+1-555-1724 +1-555-1725", "[REDACTED] [REDACTED]"),
    ] {
        let out = scrub(text);
        assert_eq!(out, want, "{text}");
        assert_eq!(scrub(&out), out, "not idempotent: {text}");
    }
    // The look-behind still holds where nothing was replaced.
    for text in [
        "v1.(020) 7946-0958",
        "1(020) 7946-0958",
        "a/(020) 7946-0958",
    ] {
        assert_eq!(scrub(text), text);
    }
}

#[test]
fn short_international_phone_numbers() {
    // `+<country code>-<3>-<4>`, as in the benchmark's invoices.
    for (text, want) in [
        ("+1-555-1724", "[REDACTED]"),
        ("call +1-555-1724", "call [REDACTED]"),
        (
            "call +1-555-1724 before Friday",
            "call [REDACTED] before Friday",
        ),
        ("call +1-555-1724, thanks", "call [REDACTED], thanks"),
        ("(+44-555-1724)", "([REDACTED])"),
        ("+353 555 1724", "[REDACTED]"),
        ("+49.555.1724", "[REDACTED]"),
        ("reminder: call +1-555-1724.", "reminder: call [REDACTED]."),
        ("tel:+1-555-1724;ext", "tel:[REDACTED];ext"),
    ] {
        assert_eq!(scrub(text), want, "{text}");
        assert_eq!(
            kinds(text),
            PatternSet::from_iter([PatternKind::Phone]),
            "{text}"
        );
    }
    // Every phone of the benchmark rows, in free text beside the row's id,
    // date and amount: the phone goes, the rest stays.
    for row in billing().as_array().unwrap() {
        let text = |key: &str| row[key].as_str().unwrap().to_owned();
        let (phone, id, date) = (text("phone"), text("id"), text("date"));
        let amount = &row["amount"];
        let note = format!("Reminder: call {phone} about {id} ({date}, {amount} due).");
        assert_eq!(
            scrub(&note),
            format!("Reminder: call [REDACTED] about {id} ({date}, {amount} due)."),
        );
    }
}

#[test]
fn short_phone_form_has_no_false_positives() {
    for text in [
        "2024-01-05",
        "date 2024-01-05, due 2024-02-05",
        "INV-0001",
        "INV-0001-0002",
        "1232.01",
        "+1232.01",
        "-1232.01 USD",
        "+1,232.01",
        "amount +1 232",
        "v1.2.3",
        "1.12.1724",
        "2023-11-24T10:15:30+01:00",
        "2023-11-24T10:15:30.123+0100",
        "2023-11-24 10:15:30 +05:30",
        "2023-11-24T10:15:30Z",
        "1.0.0+build.5",
        "+1-555-17245",
        "1-555-1724",
        "+1-55-1724",
        "+1-555-1724.5",
        "+1-555-1724/2",
        "x1+1-555-1724",
    ] {
        assert_eq!(scrub(text), text, "{text}");
    }
    // The benchmark rows: only the phone field (a sensitive name) changes.
    let data = billing();
    let (out, _, _) = Redactor::new().redact_value(&data, None);
    for (row, before) in out.as_array().unwrap().iter().zip(data.as_array().unwrap()) {
        for key in [
            "id",
            "date",
            "amount",
            "currency",
            "status",
            "customer_name",
        ] {
            assert_eq!(row.get(key), before.get(key), "{key}");
        }
    }
}

#[test]
fn phone_number_may_end_a_sentence() {
    assert_eq!(
        scrub("Call me at 555-123-4567. Thanks"),
        "Call me at [REDACTED]. Thanks"
    );
    assert_eq!(scrub("call (020) 7946-0958."), "call [REDACTED].");
    // A '.' followed by more than white space still prevents a match.
    for text in ["555-123-4567.txt", "555-123-4567.89", "555-123-4567./x"] {
        assert_eq!(scrub(text), text);
    }
}

// ── card ────────────────────────────────────────────────────────────────────

#[test]
fn card_true_positives() {
    for text in [
        "4111111111111111",
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "5500000000000004",
        "6011000990139424009", // 19 digits (the reference stopped at 16)
    ] {
        let out = scrub(text);
        assert!(!out.contains(text), "{text} -> {out}");
        assert!(out.contains(REDACTED), "{text}");
    }
    assert!(kinds("pan 5500000000000004 ok").contains(PatternKind::CardNumber));
}

#[test]
fn card_true_negatives() {
    for text in ["12345", "abcdefghijklmnop", "123-45-6789"] {
        assert!(!kinds(text).contains(PatternKind::CardNumber), "{text}");
    }
}

// ── SSN ─────────────────────────────────────────────────────────────────────

#[test]
fn ssn_patterns() {
    for text in ["123-45-6789", "123 45 6789"] {
        assert!(kinds(text).contains(PatternKind::Ssn), "{text}");
    }
    for text in ["123456789", "12-345-6789", "1234-56-789", "abc-de-fghi"] {
        assert!(!kinds(text).contains(PatternKind::Ssn), "{text}");
    }
    assert_eq!(scrub("SSN: 123-45-6789"), "SSN: [REDACTED]");
}

// ── bearer, JWT ─────────────────────────────────────────────────────────────

#[test]
fn bearer_patterns() {
    for text in [
        "Bearer abc123XYZ",
        "bearer eyJhbGciOiJIUzI1NiJ9",
        "Authorization: Bearer my-token+value/here==",
    ] {
        assert!(kinds(text).contains(PatternKind::BearerToken), "{text}");
    }
    for text in ["Basic dXNlcjpwYXNz", "no token here"] {
        assert!(!kinds(text).contains(PatternKind::BearerToken), "{text}");
    }
    let out = scrub("Authorization: Bearer supersecrettoken123");
    assert_eq!(out, "Authorization: [REDACTED]");
}

#[test]
fn jwt_patterns() {
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyMSJ9.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV";
    assert!(kinds(jwt).contains(PatternKind::Jwt));
    assert_eq!(scrub(jwt), REDACTED);
    for text in [
        "eyJhbGciOiJIUzI1NiJ9",
        "notajwt.notajwt.notajwt",
        "aaa.bbb.ccc",
    ] {
        assert!(!kinds(text).contains(PatternKind::Jwt), "{text}");
    }
}

// ── API keys and credential assignments ─────────────────────────────────────

#[test]
fn api_key_patterns() {
    for text in [
        "api_key=ABCDEFGH12345678",
        "apikey: sk-proj-abc123defgh456",
        "API_KEY = MySecretKeyValue1",
        "access_key ABCD1234EFGH5678",
        "api-token=someRandomToken99",
    ] {
        assert!(kinds(text).contains(PatternKind::ApiKey), "{text}");
    }
    for text in ["no key here", "the api key is short", "key: value"] {
        assert!(!kinds(text).contains(PatternKind::ApiKey), "{text}");
    }
    // A short value is still a value (the reference wanted 8 characters).
    assert_eq!(scrub("api_key=short"), "api_key=[REDACTED]");
    assert_eq!(
        scrub("Set api_key=ABCDEFGH12345678 in config"),
        "Set api_key=[REDACTED] in config"
    );
}

#[test]
fn credential_assignments_beyond_the_reference() {
    assert_eq!(scrub("token: abc123def"), "token: [REDACTED]");
    assert_eq!(scrub("password=hunter2"), "password=[REDACTED]");
    assert_eq!(
        scrub("client_secret=s3cr3tvalue"),
        "client_secret=[REDACTED]"
    );
    assert_eq!(scrub("access_token=xyz.abc"), "access_token=[REDACTED]");
    assert_eq!(
        scrub(r#"{"token": "abcdef123", "user": "bob"}"#),
        r#"{"token": "[REDACTED]", "user": "bob"}"#
    );
    // Prose without an assignment is left alone.
    assert_eq!(scrub("the token expired"), "the token expired");
}

// ── connection strings ──────────────────────────────────────────────────────

#[test]
fn connection_string_patterns() {
    for text in [
        "postgresql://admin:s3cret@db.example.com/mydb",
        "mysql://user:password@localhost:3306/schema",
        "redis://default:hunter2@cache.example.com:6379",
        "amqp://guest:guest@rabbitmq.internal/vhost",
    ] {
        let out = scrub(text);
        assert!(!kinds(text).is_empty(), "{text}");
        let password = text
            .split(':')
            .nth(2)
            .and_then(|p| p.split('@').next())
            .unwrap();
        assert!(!out.contains(&format!(":{password}@")), "{text} -> {out}");
    }
    for text in ["https://example.com/path", "ftp://files.example.com/pub"] {
        assert_eq!(scrub(text), text);
    }
    let out = scrub("DB_URL=redis://u:p@ss@host:6379");
    assert!(!out.contains("p@ss"), "{out}");
    assert_eq!(
        scrub("Visit https://example.com/page for more info."),
        "Visit https://example.com/page for more info."
    );
}

#[test]
fn a_credentialed_url_right_after_another_one_loses_its_password() {
    for (text, want) in [
        (
            "postgres://app:pw1@db1/x,mysql://root:hunter2@db2/y",
            "postgres://[REDACTED]@db1/x,mysql://[REDACTED]@db2/y",
        ),
        (
            "https://u:p@host/cb?next=https://admin:s3cret@internal/",
            "https://[REDACTED]@host/cb?next=https://[REDACTED]@internal/",
        ),
        // No path after the first host: its host part must not eat the next scheme.
        (
            "postgres://app:pw1@db1,mysql://root:hunter2@db2/y",
            "postgres://[REDACTED]@db1,mysql://[REDACTED]@db2/y",
        ),
        (
            "a://u:p@h?x=b://r:s3@t#c://v:w@z",
            "a://[REDACTED]@h?x=b://[REDACTED]@t#c://[REDACTED]@z",
        ),
        (
            // The credentials pass runs before the e-mail pass: the hosts stay.
            "postgres://admiphon:p@ss@db.internal:5432/app?nes://admiphon:p@ss@db.internal:",
            "postgres://[REDACTED]@db.internal:5432/app?nes://[REDACTED]@db.internal:",
        ),
        // The host and port stay (a dotted host would make `password@host`
        // an e-mail address to the first pass).
        (
            "redis://default:hunter2@cache:6379/0",
            "redis://[REDACTED]@cache:6379/0",
        ),
    ] {
        let out = scrub(text);
        assert_eq!(out, want, "{text}");
        assert_eq!(scrub(&out), out, "not idempotent: {text}");
    }
}

/// One example of each kind: the text and the part that must go. The match
/// is exhaustive: a new kind does not compile without an example.
fn example(kind: PatternKind) -> (&'static str, &'static str) {
    match kind {
        PatternKind::PrivateKey => (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7vQ2sLnT8yR3cD6h\n-----END RSA PRIVATE KEY-----",
            "MIIEowIBAAKCAQEA7vQ2sLnT8yR3cD6h",
        ),
        PatternKind::AwsAccessKey => ("AKIAQWT63ZRQ5ZLSN52Y", "AKIAQWT63ZRQ5ZLSN52Y"),
        PatternKind::GoogleApiKey => (
            "AIzanFIGLj5M7YYpHCOTHUtuJvbipRdkJAWZ4mo",
            "AIzanFIGLj5M7YYpHCOTHUtuJvbipRdkJAWZ4mo",
        ),
        PatternKind::GithubToken => (
            "ghp_LLOOxl3gV3FGRmrCNnFZsGqgh0frrhbkVAhR",
            "ghp_LLOOxl3gV3FGRmrCNnFZsGqgh0frrhbkVAhR",
        ),
        PatternKind::SlackToken => (
            "xoxb-1051323747766-0693141899387-88Z848ATZDvxy3KETVqyrxlb",
            "88Z848ATZDvxy3KETVqyrxlb",
        ),
        PatternKind::StripeKey => (
            "sk_live_J20AOGr8FCXpVdF4jDnTUPq9",
            "J20AOGr8FCXpVdF4jDnTUPq9",
        ),
        PatternKind::AnthropicKey => (
            "sk-ant-api03-eF28RlHnqzgsBH-5qWgnGV21q4ClswscCTf07I8PjUhmi2AA",
            "eF28RlHnqzgsBH-5qWgnGV21q4ClswscCTf07I8PjUhmi2AA",
        ),
        PatternKind::OpenAiKey => (
            "sk-proj-1zdW8FXpCEyGjFl6gdyK26CijxV6zXnU8BSQ",
            "1zdW8FXpCEyGjFl6gdyK26CijxV6zXnU8BSQ",
        ),
        PatternKind::ConnectionString => ("redis://:hunter2@cache:6379", "hunter2"),
        PatternKind::Email => ("josé@example.com", "josé@example.com"),
        PatternKind::CardNumber => ("4111 1111 1111 1111", "4111 1111 1111 1111"),
        PatternKind::Ssn => ("123.45.6789", "123.45.6789"),
        PatternKind::Phone => ("+15551234567", "+15551234567"),
        PatternKind::BearerToken => ("Bearer abcdefghij123", "abcdefghij123"),
        PatternKind::Jwt => (
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyMSJ9.SflKxwRJSMeKKF2QT4fw",
            "SflKxwRJSMeKKF2QT4fw",
        ),
        PatternKind::ApiKey => (r#"{"api_key": "Zx81kPq0LmN2vB7c"}"#, "Zx81kPq0LmN2vB7c"),
    }
}

/// Fragments of `secret` that must not survive: every run of 4 of its
/// digits when it is mostly digits, else every 8 consecutive characters
/// (the whole secret when shorter).
fn fragments(secret: &str) -> Vec<String> {
    let digits: Vec<char> = secret.chars().filter(char::is_ascii_digit).collect();
    let chars: Vec<char> = secret.chars().collect();
    let (source, width) = if digits.len() * 5 >= chars.len() * 3 {
        (digits, 4)
    } else {
        (chars, 8)
    };
    if source.len() <= width {
        return vec![source.iter().collect()];
    }
    source.windows(width).map(|w| w.iter().collect()).collect()
}

/// The first fragment of `secret` found in `out` (digit fragments inside
/// the runs of digits of `out`).
fn surviving_fragment(out: &str, secret: &str) -> Option<String> {
    fragments(secret).into_iter().find(|f| {
        if f.chars().all(|c| c.is_ascii_digit()) {
            out.split(|c: char| !c.is_ascii_digit())
                .any(|run| run.contains(f.as_str()))
        } else {
            out.contains(f.as_str())
        }
    })
}

#[track_caller]
fn assert_no_fragment(out: &str, secret: &str) {
    if let Some(f) = surviving_fragment(out, secret) {
        panic!("{f:?} of {secret:?} survived in {out:?}");
    }
}

#[test]
fn redact_str_removes_every_kind_from_one_message() {
    let mut message = String::from("failed for");
    for kind in PatternKind::ALL {
        message.push_str(&format!(" {} ;", example(kind).0));
    }
    let (out, found) = Redactor::new().redact_str_with_kinds(&message);
    for kind in PatternKind::ALL {
        let (_, secret) = example(kind);
        assert_no_fragment(&out, secret);
        assert!(found.contains(kind), "{kind} not reported: {found}");
    }
    assert_eq!(found, PatternSet::ALL);
}

#[test]
fn every_kind_alone_is_removed_and_named() {
    for kind in PatternKind::ALL {
        let (text, secret) = example(kind);
        let (out, found) = Redactor::new().redact_str_with_kinds(text);
        assert_no_fragment(&out, secret);
        assert_eq!(found, PatternSet::from_iter([kind]), "{text}");
        // In a value: the warning names the kind, and only it.
        let (value, warnings, count) = Redactor::new().redact_value(&json!({ "note": text }), None);
        assert_no_fragment(&value.to_string(), secret);
        assert_eq!(count, 1);
        assert_eq!(
            warnings,
            vec![format!(
                "String value contained sensitive patterns ({}) and was redacted.",
                kind.as_str()
            )],
        );
    }
}

// ── whole digit redactions ──────────────────────────────────────────────────

#[test]
fn cards_with_one_kind_of_separator_go_whole() {
    for sep in [" ", "-", ".", "/", "_", "  "] {
        let card = ["4111", "1111", "1111", "1111"].join(sep);
        let text = format!("card {card} on file");
        assert_eq!(scrub(&text), "card [REDACTED] on file", "{text:?}");
        assert_eq!(
            kinds(&text),
            PatternSet::from_iter([PatternKind::CardNumber])
        );
    }
    // Amex (4-6-5) and Diners (4-6-4) groupings, 13 and 19 digits.
    for card in [
        "3782 822463 10005",
        "3056-930902-5904",
        "4222222222222",
        "6011000990139424009",
        "2223 0031 2200 3222",
    ] {
        assert_eq!(scrub(&format!("pan {card}.")), "pan [REDACTED].", "{card}");
    }
    // The issue's example: the phone pass used to eat the first groups.
    assert_eq!(scrub("4111 1111 1111 1111"), REDACTED);
}

#[test]
fn cards_glued_to_a_prefix_go() {
    for (text, want) in [
        ("cc4111111111111111", "cc[REDACTED]"),
        ("card_4111111111111111", "card_[REDACTED]"),
        ("paid:5500000000000004;", "paid:[REDACTED];"),
        ("CARD#4111-1111-1111-1111", "CARD#[REDACTED]"),
    ] {
        assert_eq!(scrub(text), want, "{text}");
        assert!(kinds(text).contains(PatternKind::CardNumber), "{text}");
    }
}

#[test]
fn card_numbers_are_luhn_checked() {
    // Not cards: a failed checksum, a leading 0 or 1 (epoch timestamps), a
    // longer number, a decimal's digits, a number inside a digest.
    for text in [
        "4111111111111112",
        "1700000000000",
        "1790000000000000000",
        "0000000000000000",
        "41111111111111111111",
        "0.30000000000000004",
        "sha256:4111111111111111abcdef0123456789abcdef0123456789",
    ] {
        assert_eq!(scrub(text), text, "{text}");
    }
}

#[test]
fn no_fragment_of_a_redacted_number_survives() {
    for (text, secret) in [
        // A mistyped card (Luhn fails) is still redacted whole, as a number.
        ("card 4111 1111 1111 1112 ok", "4111 1111 1111 1112"),
        ("amex 3782 822463 10005", "3782 822463 10005"),
        ("call 555-123-4567-89 now", "555-123-4567-89"),
        ("ssn 123-45-6789-0000", "123-45-6789-0000"),
        (
            "4111 1111 1111 1111 1111 1111",
            "4111 1111 1111 1111 1111 1111",
        ),
        ("tel 12 555 123 4567", "12 555 123 4567"),
        ("+33 1 23 45 67 89", "+33 1 23 45 67 89"),
    ] {
        let out = scrub(text);
        assert_no_fragment(&out, secret);
        assert_eq!(scrub(&out), out, "not idempotent: {text}");
    }
}

#[test]
fn ssn_shapes() {
    for (text, want) in [
        ("ssn 123.45.6789", "ssn [REDACTED]"),
        ("id ssn_123-45-6789", "id ssn_[REDACTED]"),
        ("id ssn123-45-6789", "id ssn[REDACTED]"),
        ("SSN: 219 09 9999.", "SSN: [REDACTED]."),
    ] {
        assert_eq!(scrub(text), want, "{text}");
        assert_eq!(
            kinds(text),
            PatternSet::from_iter([PatternKind::Ssn]),
            "{text}"
        );
    }
    for text in ["v1.123.45.6789", "123.45.6789.1", "1123-45-6789"] {
        assert!(!kinds(text).contains(PatternKind::Ssn), "{text}");
    }
}

#[test]
fn e164_and_grouped_international_phone_numbers() {
    for (text, want) in [
        ("call +15551234567 today", "call [REDACTED] today"),
        ("mobile +447911123456.", "mobile [REDACTED]."),
        ("tel:+14155552671", "tel:[REDACTED]"),
        ("Paris +33 1 23 45 67 89", "Paris [REDACTED]"),
        ("Berlin 030-12345678", "Berlin [REDACTED]"),
    ] {
        assert_eq!(scrub(text), want, "{text}");
        assert_eq!(
            kinds(text),
            PatternSet::from_iter([PatternKind::Phone]),
            "{text}"
        );
    }
    // Too short or too long for E.164, decimals, year-and-sequence ids.
    for text in [
        "+1234567",
        "+1234567890123456",
        "37.7749295,-122.4194155",
        "INV-2024-000123",
        "ref 2024-000123",
        "+1-555-1724.5",
    ] {
        assert_eq!(scrub(text), text, "{text}");
    }
}

// ── JSON numbers ────────────────────────────────────────────────────────────

#[test]
fn json_numbers_pass_the_digit_rules_in_every_mode() {
    let data = json!([
        {"id": 1, "cc": 4111111111111111_u64, "amount": 10.5},
        {"id": 2, "cc": 5500000000000004_u64, "amount": 20.5},
        {"id": 3, "cc": 4111111111111111.0, "amount": 30.5}
    ]);
    for mode in [
        ResponseMode::Raw,
        ResponseMode::Table,
        ResponseMode::Summary,
        ResponseMode::HandleOnly,
    ] {
        let out = run_with(&data, mode, None, None, true, &Budgets::default());
        let mut text = serde_json::to_string(&out.table_preview).unwrap();
        text.push_str(&out.facts.join("\n"));
        if let Some(raw) = &out.raw_data {
            text.push_str(&raw.to_string());
        }
        for secret in ["4111111111111111", "5500000000000004"] {
            assert_no_fragment(&text, secret);
        }
        assert!(
            out.warnings.iter().any(|w| w
                == "3 number values matched sensitive patterns (card_number) and were redacted."),
            "{mode:?}: {:?}",
            out.warnings
        );
        assert_eq!(out.stats.redactions, 3, "{mode:?}");
        if mode == ResponseMode::Summary {
            // No statistics over the redacted column; the others stay.
            assert!(
                out.facts.iter().all(|f| !f.starts_with("cc:")),
                "{:?}",
                out.facts
            );
            assert!(
                out.facts
                    .contains(&"amount: min=10.50, max=30.50, avg=20.50".to_owned())
            );
        }
    }
    // Summary facts of an object and a list, too.
    let facts = run(
        &json!({"cc": 4111111111111111_u64, "n": 42}),
        ResponseMode::Summary,
    )
    .facts;
    assert!(
        facts.contains(&"cc: \"[REDACTED]\"".to_owned())
            || facts.contains(&"cc: [REDACTED]".to_owned()),
        "{facts:?}"
    );
    assert!(facts.contains(&"n: 42".to_owned()));
    let facts = run(&json!([4111111111111111_u64]), ResponseMode::Summary).facts;
    assert_eq!(facts, vec!["List of 1 items", "\"[REDACTED]\""]);
    // Ordinary numbers, timestamps and Luhn failures are numbers.
    let r = Redactor::new();
    for n in [
        json!(42),
        json!(1232.01),
        json!(1_700_000_000_000_u64),
        json!(4111111111111112_u64),
        json!(-1.5e300),
        json!(u64::MAX),
    ] {
        let Value::Number(number) = &n else {
            unreachable!()
        };
        assert!(r.number_kinds(number).is_empty(), "{n}");
        assert_eq!(r.redact_value(&json!({"n": n}), None).0, json!({"n": n}));
    }
    let Value::Number(card) = json!(-4111111111111111_i64) else {
        unreachable!()
    };
    assert_eq!(
        r.number_kinds(&card),
        PatternSet::from_iter([PatternKind::CardNumber])
    );
}

// ── e-mail ──────────────────────────────────────────────────────────────────

#[test]
fn email_local_parts_idn_and_single_label_domains() {
    for (text, want) in [
        ("mail josé@example.com now", "mail [REDACTED] now"),
        ("mail user@bücher.de now", "mail [REDACTED] now"),
        ("mail 用户@例子.广告 now", "mail [REDACTED] now"),
        ("ping alice@localhost", "ping [REDACTED]"),
        ("email=bob@example.com", "email=[REDACTED]"),
        ("?to=bob@example.com&x=1", "?to=[REDACTED]&x=1"),
        ("o'brien@example.ie", "[REDACTED]"),
        ("'bob@example.com'", "'[REDACTED]'"),
        ("user%shop!x@example.com", "[REDACTED]"),
        (r#"to "john doe"@example.org."#, "to [REDACTED]."),
        ("root@10.0.0.5 logged in", "[REDACTED] logged in"),
        ("bob@[192.168.0.1]", "[REDACTED]"),
        ("ΕΛΕΝΗ@παράδειγμα.ελ", "[REDACTED]"),
        ("bob@example.com.", "[REDACTED]."),
    ] {
        assert_eq!(scrub(text), want, "{text}");
        assert_eq!(
            kinds(text),
            PatternSet::from_iter([PatternKind::Email]),
            "{text}"
        );
    }
    // Versions and digests are not addresses.
    for text in [
        "lodash@4.17.21",
        "python@3.11",
        "nginx@sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31",
        "@channel",
        "user@",
    ] {
        assert_eq!(scrub(text), text, "{text}");
    }
}

// ── credentials in URLs and assignments ─────────────────────────────────────

#[test]
fn credentialed_urls_with_or_without_a_user_name() {
    for (text, want) in [
        (
            "redis://:hunter2@cache:6379",
            "redis://[REDACTED]@cache:6379",
        ),
        (
            "redis://:hunter2@cache.example.com:6379/0",
            "redis://[REDACTED]@cache.example.com:6379/0",
        ),
        (
            "amqp://guest:gu3st@rabbit/vhost",
            "amqp://[REDACTED]@rabbit/vhost",
        ),
    ] {
        assert_eq!(scrub(text), want, "{text}");
        assert_eq!(
            kinds(text),
            PatternSet::from_iter([PatternKind::ConnectionString])
        );
    }
}

#[test]
fn assignments_inside_strings_lose_their_values() {
    for (text, want) in [
        (
            r#"{"api_key": "Zx81kPq0LmN2vB7c"}"#,
            r#"{"api_key": "[REDACTED]"}"#,
        ),
        (
            r#"{\"token\": \"tok_9f8e7d6c\"}"#,
            r#"{\"token\": \"[REDACTED]\"}"#,
        ),
        (
            "{'password': 'correct horse'}",
            "{'password': '[REDACTED]'}",
        ),
        (
            r#"{"client_secret":"Qm9vdHN0cmFw1234","user":"bob"}"#,
            r#"{"client_secret":"[REDACTED]","user":"bob"}"#,
        ),
        (
            "Authorization: Basic dXNlcjpwYXNz",
            "Authorization: [REDACTED]",
        ),
        ("X-Api-Key: 7c4a8d09ca3762af61e5", "X-Api-Key: [REDACTED]"),
        ("dbPassword := 'Tr0ub4dor3'", "dbPassword := '[REDACTED]'"),
        ("pin=4821&cvv2=123", "pin=[REDACTED]&cvv2=[REDACTED]"),
        ("passwd: hunter2", "passwd: [REDACTED]"),
        (
            "x?access_token=ya29A0AfH6SMB&page=2",
            "x?access_token=[REDACTED]&page=2",
        ),
        (
            "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG",
            "AWS_SECRET_ACCESS_KEY=[REDACTED]",
        ),
    ] {
        assert_eq!(scrub(text), want, "{text}");
        assert_eq!(
            kinds(text),
            PatternSet::from_iter([PatternKind::ApiKey]),
            "{text}"
        );
    }
    // Names that are not credentials keep their values.
    for text in [
        "token_count=1234",
        "max_tokens: 4096",
        "passwordless=true",
        "keyboard: us",
        "public_key: ssh-ed25519 AAAA",
        "next_page_token=abc",
        "status: paid",
    ] {
        assert_eq!(scrub(text), text, "{text}");
    }
}

// ── well-known secret formats ───────────────────────────────────────────────

#[test]
fn well_known_formats_without_a_name_each_under_their_own_kind() {
    for (text, kind) in [
        ("key AKIAQWT63ZRQ5ZLSN52Y in use", PatternKind::AwsAccessKey),
        ("session ASIA4RLC6SIGOCBKHJHP.", PatternKind::AwsAccessKey),
        (
            "maps AIzanFIGLj5M7YYpHCOTHUtuJvbipRdkJAWZ4mo ok",
            PatternKind::GoogleApiKey,
        ),
        (
            "ghp_LLOOxl3gV3FGRmrCNnFZsGqgh0frrhbkVAhR",
            PatternKind::GithubToken,
        ),
        (
            "gho_HLfBERkIyDtFDBAM0gqEzpC3N8FeKjFTrKCb",
            PatternKind::GithubToken,
        ),
        (
            "github_pat_11Z1BWX4QWT7MC94QGYGCM_tbaLGsH7Zwqhc9jXmaoq3GqlpnMR6vsUW5xcJ6MV8YWkGP1mxFyp9",
            PatternKind::GithubToken,
        ),
        (
            "xoxp-241770370026-293260342055-1830118038620-aadd0f0103d6",
            PatternKind::SlackToken,
        ),
        (
            "xapp-1-5OR4KCFYV5L-2986546850050-7001a25afcc4ac63",
            PatternKind::SlackToken,
        ),
        (
            "https://hooks.slack.com/services/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",
            PatternKind::SlackToken,
        ),
        ("rk_test_77mGL6Pt7hFOzbEIuBusIu1I", PatternKind::StripeKey),
        (
            "sk-ant-admin01-eF28RlHnqzgsBH-5qWgnGV21q4ClswscCTf07I8Pj",
            PatternKind::AnthropicKey,
        ),
        (
            "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",
            PatternKind::OpenAiKey,
        ),
        (
            "sk-svcacct-1zdW8FXpCEyGjFl6gdyK26CijxV6zXnU8BSQ",
            PatternKind::OpenAiKey,
        ),
    ] {
        let secret = text.split_whitespace().find(|w| w.len() >= 20).unwrap();
        let (out, found) = Redactor::new().redact_str_with_kinds(text);
        assert_no_fragment(&out, secret);
        assert_eq!(found, PatternSet::from_iter([kind]), "{text}");
    }
    // The specific kind wins over the generic ones.
    assert_eq!(
        kinds("Authorization: Bearer ghp_LLOOxl3gV3FGRmrCNnFZsGqgh0frrhbkVAhR"),
        PatternSet::from_iter([PatternKind::GithubToken])
    );
    // Look-alikes stay.
    for text in [
        "sk-learn-cross-validation-tools",
        "task-1234567890abcdefghij",
        "AKIA is a prefix",
        "xoxo hugs",
    ] {
        assert_eq!(scrub(text), text, "{text}");
    }
}

#[test]
fn private_key_blocks_go_whole() {
    let body = "MIIEowIBAAKCAQEA7vQ2sLnT8yR3cD6h\nb3BlbnNzaC1rZXktdjEAk/5FdyVCHyar";
    for (begin, end) in [
        (
            "-----BEGIN RSA PRIVATE KEY-----",
            "-----END RSA PRIVATE KEY-----",
        ),
        ("-----BEGIN PRIVATE KEY-----", "-----END PRIVATE KEY-----"),
        (
            "-----BEGIN ENCRYPTED PRIVATE KEY-----",
            "-----END ENCRYPTED PRIVATE KEY-----",
        ),
        (
            "-----BEGIN OPENSSH PRIVATE KEY-----",
            "-----END OPENSSH PRIVATE KEY-----",
        ),
        (
            "-----BEGIN PGP PRIVATE KEY BLOCK-----",
            "-----END PGP PRIVATE KEY BLOCK-----",
        ),
    ] {
        let text = format!("key:\n{begin}\n{body}\n{end}\nnext line");
        assert_eq!(scrub(&text), "key:\n[REDACTED]\nnext line", "{begin}");
        assert_eq!(
            kinds(&text),
            PatternSet::from_iter([PatternKind::PrivateKey])
        );
    }
    // Cut short (no END line): the rest of the text goes.
    let cut = format!(
        "-----BEGIN EC PRIVATE KEY-----\\n{}",
        body.replace('\n', "\\n")
    );
    assert_eq!(scrub(&format!("log: {cut}")), "log: [REDACTED]");
    // A public key or a certificate is not a secret.
    let public =
        "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A\n-----END PUBLIC KEY-----";
    assert_eq!(scrub(public), public);
}

// ── sensitive field names ───────────────────────────────────────────────────

#[test]
fn sensitive_field_names_are_matched_on_tokens() {
    for name in [
        "passwd",
        "api_key",
        "token",
        "access_token",
        "client_secret",
        "private_key",
        "pin",
        "cvv2",
        "phone_number",
        "email_address",
        "apiKey",
        "APIKey",
        "X-Api-Key",
        "AWS_SECRET_ACCESS_KEY",
        "refreshToken",
        "dbpassword",
        "password_hash",
        "ssn_last4",
        "user.email",
        "e-mail",
        "mobile_number",
        "pin_code",
        "credentials",
        "Authorization",
        "session_cookie",
    ] {
        assert!(is_sensitive_field_name(name), "{name}");
        let (out, warnings, count) =
            Redactor::new().redact_value(&json!({ name: "v4lue", "id": 1 }), None);
        assert_eq!(out, json!({ name: REDACTED, "id": 1 }), "{name}");
        assert_eq!(count, 1);
        assert!(warnings[0].contains("sensitive field name"), "{warnings:?}");
    }
    for name in [
        "token_count",
        "max_tokens",
        "prompt_tokens",
        "token_type",
        "public_key",
        "key",
        "sort_key",
        "email_verified",
        "phone_verified",
        "emails",
        "card_type",
        "gift_card",
        "next_page_token",
        "nextToken",
        "passwordless",
        "tokenizer",
        "secretary",
        "keyboard",
        "spin",
        "id",
    ] {
        assert!(!is_sensitive_field_name(name), "{name}");
    }
}

#[test]
fn a_sensitive_key_holding_a_secret_loses_both() {
    let (out, _, _) = Redactor::new().redact_value(&json!({"password=hunter2": "x"}), None);
    assert_eq!(out, json!({"password=[REDACTED]": REDACTED}));
}

#[test]
fn redact_str_borrows_when_clean() {
    let r = Redactor::new();
    assert!(matches!(r.redact_str("Date: 2026-03-04"), Cow::Borrowed(_)));
    assert!(matches!(
        r.redact_str("Price: 100.00 - 200.00"),
        Cow::Borrowed(_)
    ));
    assert!(matches!(
        r.redact_str("Server: 192.168.1.100"),
        Cow::Borrowed(_)
    ));
    assert!(matches!(r.redact_str(""), Cow::Borrowed(_)));
}

#[test]
fn pattern_set_display_and_iteration() {
    let set: PatternSet = [PatternKind::Phone, PatternKind::Email]
        .into_iter()
        .collect();
    assert_eq!(set.to_string(), "email, phone");
    assert_eq!(set.iter().count(), 2);
    assert!(PatternSet::EMPTY.is_empty());
    assert_eq!(PatternSet::ALL.iter().count(), PatternKind::ALL.len());
    assert_eq!(PatternSet::ALL.len(), 16);
    assert_eq!(PatternKind::CardNumber.to_string(), "card_number");
}

// ── field rules ─────────────────────────────────────────────────────────────

#[test]
fn sensitive_field_names_are_redacted_case_insensitively() {
    let data = json!({
        "email": "user@example.com", "Phone": "1", "CARD_NUMBER": "x", "ssn": "x",
        "social_security_number": "x", "cvv": 123, "credit_card": {"n": 1},
        "Password": "p", "secret": ["a"], "name": "Alice"
    });
    let (out, warnings, count) = Redactor::new().redact_value(&data, None);
    let out = out.as_object().unwrap();
    for key in [
        "email",
        "Phone",
        "CARD_NUMBER",
        "ssn",
        "social_security_number",
        "cvv",
        "credit_card",
        "Password",
        "secret",
    ] {
        assert_eq!(out[key], json!(REDACTED), "{key}");
        assert!(
            warnings.iter().any(|w| w.contains(&format!("'{key}'"))),
            "{key}"
        );
    }
    assert_eq!(out["name"], json!("Alice"));
    assert_eq!(count, 9);
    assert!(is_sensitive_field_name("EMAIL"));
    assert!(!is_sensitive_field_name("emails"));
}

#[test]
fn allowed_fields_filter_top_level_and_rows_only() {
    let allowed = fields(&["id", "meta", "rows"]);
    let data = json!({"id": 1, "email": "a@b.co", "meta": {"email": "x", "inner": 2}, "other": 3});
    let (out, warnings, _) = Redactor::new().redact_value(&data, Some(&allowed));
    // The nested object is not filtered, but its sensitive name is still redacted.
    assert_eq!(
        out,
        json!({"id": 1, "meta": {"email": REDACTED, "inner": 2}})
    );
    assert!(
        warnings
            .iter()
            .any(|w| w == "Field 'email' omitted (not in allowed_fields).")
    );
    assert!(
        warnings
            .iter()
            .any(|w| w == "Field 'other' omitted (not in allowed_fields).")
    );

    // Rows of a top-level array (even nested arrays) are filtered too.
    let rows = json!([[{"id": 1, "x": 2}], {"id": 2, "y": 3}]);
    let (out, _, count) = Redactor::new().redact_value(&rows, Some(&allowed));
    assert_eq!(out, json!([[{"id": 1}], {"id": 2}]));
    assert_eq!(count, 2);
}

#[test]
fn empty_allowed_fields_show_no_field() {
    // One meaning everywhere: a list names the fields that may be shown, so
    // an empty list shows none (`None` is no filter).
    let data = json!({"a": 1, "b": 2, "email": "ann@example.com"});
    let (out, _, _) = Redactor::new().redact_value(&data, Some(&[]));
    assert_eq!(out, json!({}));
    let (out, _, _) = Redactor::new().redact_value(&data, None);
    assert_eq!(out["a"], 1);
    let rows = json!([{"a": 1, "iban": "DE89370400440532013000"}]);
    for mode in [ResponseMode::Table, ResponseMode::Summary] {
        let out = run_with(&rows, mode, Some(&[]), None, false, &Budgets::default());
        let text = format!("{:?} {:?}", out.table_preview, out.facts);
        assert!(
            !text.contains("DE89") && !text.contains("\"a\""),
            "{mode:?}: {text}"
        );
    }
}

#[test]
fn allowed_sensitive_field_is_still_redacted() {
    let allowed = fields(&["id", "email"]);
    let (out, _, _) =
        Redactor::new().redact_value(&json!([{"id": 1, "email": "a@b.co"}]), Some(&allowed));
    assert_eq!(out, json!([{"id": 1, "email": REDACTED}]));
}

#[test]
fn warnings_are_aggregated_and_never_quote_values() {
    let data: Value = (0..50)
        .map(|i| json!({"id": i, "email": format!("u{i}@example.com"), "note": format!("call 555-123-{:04}", 1000 + i)}))
        .collect();
    let (out, warnings, count) = Redactor::new().redact_value(&data, None);
    assert_eq!(
        warnings,
        vec![
            "Field 'email' redacted (sensitive field name), 50 times.".to_owned(),
            "50 string values contained sensitive patterns (phone) and were redacted.".to_owned(),
        ]
    );
    assert_eq!(count, 100);
    let text = out.to_string();
    assert!(!text.contains("example.com") && !text.contains("555-123"));
    assert!(
        warnings
            .iter()
            .all(|w| !w.contains("555") && !w.contains("example"))
    );
}

#[test]
fn field_names_in_warnings_are_scrubbed_and_bounded() {
    let long = "k".repeat(500);
    let data = json!({"bob@example.com": 1, long.clone(): 2, "id": 3});
    let allowed = fields(&["id"]);
    let (_, warnings, _) = Redactor::new().redact_value(&data, Some(&allowed));
    assert!(warnings.iter().all(|w| !w.contains("bob@example.com")));
    assert!(warnings.iter().all(|w| w.chars().count() < 120));
    // Many distinct omitted names are lumped together.
    let wide: Map<String, Value> = (0..100).map(|i| (format!("f{i}"), json!(i))).collect();
    let (_, warnings, count) = Redactor::new().redact_value(&Value::Object(wide), Some(&allowed));
    assert_eq!(count, 100);
    assert!(warnings.len() <= 17);
    assert!(warnings.last().unwrap().starts_with("Other fields omitted"));
}

#[test]
fn keys_are_scrubbed_without_a_filter() {
    let data = json!({"alice@example.com": 1, "bob@example.com": 2, "id": 3});
    let (out, warnings, _) = Redactor::new().redact_value(&data, None);
    let text = out.to_string();
    assert!(!text.contains("example.com"), "{text}");
    // Colliding scrubbed keys keep both values.
    assert_eq!(out.as_object().unwrap().len(), 3);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("field names contained sensitive patterns"))
    );
}

// ── depth ───────────────────────────────────────────────────────────────────

#[test]
fn containers_beyond_max_depth_are_withheld() {
    let deep = json!({"a": {"b": {"c": {"d": {"e": "user@example.com"}}}}});
    let (out, warnings, _) = Redactor::new().with_max_depth(2).redact_value(&deep, None);
    assert_eq!(out, json!({"a": {"b": DEPTH_MARKER}}));
    assert!(warnings.iter().any(|w| w.contains("max_depth=2")));
    // Strings at any depth are scrubbed, never passed through.
    let (out, _, _) = Redactor::new()
        .with_max_depth(1)
        .redact_value(&json!({"s": "bob@example.com", "n": [1]}), None);
    assert_eq!(out, json!({"s": REDACTED, "n": DEPTH_MARKER}));
    // max_depth 0 withholds the top-level container itself.
    let (out, _, _) = Redactor::new()
        .with_max_depth(0)
        .redact_value(&json!([1]), None);
    assert_eq!(out, json!(DEPTH_MARKER));
}

#[test]
fn default_depth_keeps_rows_and_withholds_line_item_contents() {
    let data = json!([{"id": 1, "line_items": [{"description": "Item 1"}]}]);
    let (out, _, _) = Redactor::new().redact_value(&data, None);
    assert_eq!(out, json!([{"id": 1, "line_items": [DEPTH_MARKER]}]));
}

#[test]
fn depth_is_capped_and_deep_nesting_does_not_overflow() {
    assert_eq!(
        Redactor::new().with_max_depth(usize::MAX).max_depth(),
        MAX_DEPTH_CEILING
    );
    let mut deep = json!("bob@example.com");
    for _ in 0..2_000 {
        deep = Value::Array(vec![deep]);
    }
    let redactor = Redactor::new().with_max_depth(usize::MAX);
    let (out, warnings, _) = redactor.redact_value(&deep, None);
    assert!(!out.to_string().contains("bob@"));
    assert!(warnings.iter().any(|w| w.contains("max_depth=64")));
    let budgets = Budgets {
        max_depth: usize::MAX,
        ..Budgets::default()
    };
    for mode in [
        ResponseMode::Summary,
        ResponseMode::Table,
        ResponseMode::HandleOnly,
    ] {
        let _ = run_with(&deep, mode, None, None, true, &budgets);
    }
    // Tear the value down iteratively so the test's own drop cannot overflow.
    while let Value::Array(mut items) = deep {
        deep = items.pop().unwrap_or(Value::Null);
    }
}

#[test]
fn view_and_owned_forms_agree() {
    let data = billing();
    let allowed = fields(&ALLOWED);
    let r = Redactor::new();
    let view = r.redact(&data, Some(&allowed));
    let (owned, warnings, count) = r.redact_value(&data, Some(&allowed));
    assert_eq!(view.value.to_value(), owned);
    assert_eq!(serde_json::to_value(&view.value).unwrap(), owned);
    assert_eq!(view.warnings, warnings);
    assert_eq!(view.counts.total(), count);
    let (audit_warnings, audit_counts) = r.audit(&data, Some(&allowed));
    assert_eq!(audit_warnings, warnings);
    assert_eq!(audit_counts, view.counts);
}

// ── modes ───────────────────────────────────────────────────────────────────

#[test]
fn summary_list_of_dicts() {
    let rows: Value = (0..100)
        .map(|i| json!({"id": i, "amount": f64::from(i) * 10.0}))
        .collect();
    let out = run(&rows, ResponseMode::Summary);
    assert_eq!(out.effective_mode, ResponseMode::Summary);
    assert_eq!(
        out.facts,
        vec![
            "Total rows: 100",
            "Top keys: amount, id",
            "amount: min=0.00, max=990.00, avg=495.00",
            "id: min=0.00, max=99.00, avg=49.50",
        ]
    );
    assert!(out.table_preview.is_empty() && out.raw_data.is_none());
    assert_eq!(out.stats.rows_in, 100);
    assert_eq!(out.stats.rows_out, 0);
    assert_eq!(
        out.stats.chars,
        out.facts.iter().map(|f| f.chars().count()).sum::<usize>()
    );
}

#[test]
fn summary_distributions_and_non_numeric_columns() {
    let rows = json!([
        {"status": "open", "items": [1, 2], "flag": true},
        {"status": "closed", "items": [3], "flag": false},
        {"status": "open", "items": [], "flag": true},
        {"status": "pending", "items": [5], "flag": true},
        {"status": "closed", "items": [], "flag": false}
    ]);
    let facts = run(&rows, ResponseMode::Summary).facts;
    assert!(facts.contains(&"status distribution: closed=2, open=2, pending=1".to_owned()));
    assert!(facts.contains(&"flag distribution: false=2, true=3".to_owned()));
    assert!(facts.iter().all(|f| !f.starts_with("items")));
}

#[test]
fn summary_respects_max_facts() {
    let rows: Value = (0..5)
        .map(|i| json!({"n1": i, "n2": i * 2, "n3": i * 3}))
        .collect();
    let view = Redactor::new().redact(&rows, None);
    assert!(summarize(&view.value, 3).len() <= 3);
    let rows = json!([{"status": "a", "kind": "x"}, {"status": "b", "kind": "y"}]);
    let view = Redactor::new().redact(&rows, None);
    assert!(summarize(&view.value, 3).len() <= 3);
    let data = json!({"a": 1, "b": 2, "c": 3});
    let view = Redactor::new().redact(&data, None);
    assert!(summarize(&view.value, 2).len() <= 2);
}

#[test]
fn summary_dict() {
    let data = json!({"totals": {"USD": 1000.0}, "invoice_count": 200, "note": "ok",
        "items": [1, 2, 3], "none": null});
    let facts = run(&data, ResponseMode::Summary).facts;
    assert_eq!(facts[0], "Keys: invoice_count, items, none, note, totals");
    assert!(facts.contains(&"invoice_count: 200".to_owned()));
    assert!(facts.contains(&"items: list of 3 items".to_owned()));
    assert!(facts.contains(&"totals: dict with keys [USD]".to_owned()));
    assert!(facts.contains(&"none: null".to_owned()));
}

#[test]
fn summary_plain_list_and_scalars() {
    let facts = run(&json!([1, 2, 3, "hello"]), ResponseMode::Summary).facts;
    assert_eq!(facts[0], "List of 4 items");
    assert_eq!(facts[1], "1");
    assert_eq!(facts[4], "\"hello\"");
    assert_eq!(run(&json!(42), ResponseMode::Summary).facts, vec!["42"]);
    assert_eq!(run(&Value::Null, ResponseMode::Summary).facts, vec!["null"]);
    assert_eq!(
        run(&json!("hello world"), ResponseMode::Summary).facts,
        vec!["hello world"]
    );
    assert_eq!(
        run(&json!([]), ResponseMode::Summary).facts,
        vec!["List of 0 items"]
    );
}

#[test]
fn summary_string_truncation_is_char_safe() {
    let facts = run(&json!("a".repeat(600)), ResponseMode::Summary).facts;
    assert_eq!(facts.len(), 1);
    assert!(facts[0].starts_with(&"a".repeat(500)));
    assert!(facts[0].contains("600 chars total"));
    for ch in ["é", "日", "🦀"] {
        let facts = run(&json!(ch.repeat(700)), ResponseMode::Summary).facts;
        assert!(facts[0].starts_with(&ch.repeat(500)));
        assert!(!facts[0].starts_with(&ch.repeat(501)));
        assert!(facts[0].ends_with("(700 chars total)"));
    }
    // Dict values (80 chars) and list items (100 chars) cut on char boundaries too.
    let facts = run(&json!({"k": "🦀".repeat(200)}), ResponseMode::Summary).facts;
    assert_eq!(facts[1], format!("k: {}", "🦀".repeat(80)));
    let facts = run(&json!(["é".repeat(300)]), ResponseMode::Summary).facts;
    assert_eq!(facts[1].chars().count(), 100);
}

#[test]
fn summary_char_budget() {
    let rows: Value = (0..10)
        .map(|_| json!({"description": "x".repeat(3000)}))
        .collect();
    let budgets = Budgets {
        max_chars: 100,
        ..Budgets::default()
    };
    let out = run_with(&rows, ResponseMode::Summary, None, None, false, &budgets);
    let total: usize = out.facts.iter().map(|f| f.chars().count()).sum();
    assert!(total <= 100);
    assert_eq!(out.stats.chars, total);

    let data = json!({"key1": "v".repeat(40), "key2": "v".repeat(40)});
    let budgets = Budgets {
        max_chars: 20,
        ..Budgets::default()
    };
    let out = run_with(&data, ResponseMode::Summary, None, None, false, &budgets);
    assert_eq!(out.facts, vec!["Keys: key1, key2"]);

    let budgets = Budgets {
        max_chars: 10_000,
        ..Budgets::default()
    };
    let out = run_with(
        &json!({"a": 1, "b": 2}),
        ResponseMode::Summary,
        None,
        None,
        false,
        &budgets,
    );
    assert_eq!(out.facts.len(), 3);
}

#[test]
fn summary_is_deterministic() {
    let data = billing();
    let allowed = fields(&ALLOWED);
    let a = run_with(
        &data,
        ResponseMode::Summary,
        Some(&allowed),
        None,
        false,
        &Budgets::default(),
    );
    let b = run_with(
        &data,
        ResponseMode::Summary,
        Some(&allowed),
        None,
        false,
        &Budgets::default(),
    );
    assert_eq!(a, b);
}

#[test]
fn summary_of_billing_data() {
    let data = billing();
    let allowed = fields(&ALLOWED);
    let out = run_with(
        &data,
        ResponseMode::Summary,
        Some(&allowed),
        None,
        false,
        &Budgets::default(),
    );
    assert_eq!(out.facts[0], "Total rows: 200");
    assert_eq!(
        out.facts[1],
        "Top keys: amount, currency, customer_name, date, id, status"
    );
    assert!(out.facts[2].starts_with("amount: min="));
    assert!(
        out.facts
            .iter()
            .any(|f| f.starts_with("currency distribution: "))
    );
    assert!(
        out.facts
            .iter()
            .any(|f| f.starts_with("status distribution: "))
    );
    assert!(out.facts.iter().all(|f| !f.contains('@')));
    assert!(
        out.warnings
            .iter()
            .any(|w| w.starts_with("Field 'email' omitted"))
    );
    assert_eq!(out.stats.redactions, 600);
    // The summary path (streamed rows) agrees with summarising the full view.
    let view = Redactor::new().redact(&data, Some(&allowed));
    assert_eq!(summarize(&view.value, MAX_FACTS), out.facts);
    assert_eq!(view.warnings, out.warnings);
}

#[test]
fn table_row_and_field_caps() {
    let rows: Value = (0..200).map(|i| json!({"id": i})).collect();
    let budgets = Budgets {
        max_rows: 10,
        ..Budgets::default()
    };
    let out = run_with(&rows, ResponseMode::Table, None, None, false, &budgets);
    assert_eq!(out.table_preview.len(), 10);
    assert_eq!(out.stats.rows_in, 200);
    assert_eq!(out.stats.rows_out, 10);
    assert!(out.warnings.iter().any(|w| w.contains("10 of 200 rows")));

    let wide: Map<String, Value> = (0..50).map(|j| (format!("f{j:02}"), json!(j))).collect();
    let budgets = Budgets {
        max_fields: 5,
        ..Budgets::default()
    };
    let out = run_with(
        &json!([wide]),
        ResponseMode::Table,
        None,
        None,
        false,
        &budgets,
    );
    assert_eq!(out.table_preview[0].len(), 5);
    assert!(out.warnings.iter().any(|w| w.contains("max_fields=5")));
}

#[test]
fn table_request_max_rows_wins() {
    let rows: Value = (0..100).map(|i| json!({"id": i})).collect();
    let out = run_with(
        &rows,
        ResponseMode::Table,
        None,
        Some(3),
        false,
        &Budgets::default(),
    );
    assert_eq!(out.table_preview.len(), 3);
    let budgets = Budgets {
        max_rows: 2,
        ..Budgets::default()
    };
    let out = run_with(&rows, ResponseMode::Table, None, Some(7), false, &budgets);
    assert_eq!(out.table_preview.len(), 7);
    let out = run_with(&rows, ResponseMode::Table, None, Some(0), false, &budgets);
    assert!(out.table_preview.is_empty());
}

#[test]
fn table_shapes() {
    let out = run(&json!({"a": 1, "b": 2}), ResponseMode::Table);
    assert_eq!(out.table_preview.len(), 1);
    assert_eq!(out.table_preview[0]["a"], json!(1));
    let out = run(&json!([1, 2, 3]), ResponseMode::Table);
    assert_eq!(
        out.table_preview[0],
        json!({"value": 1}).as_object().unwrap().clone()
    );
    let out = run(&json!(42), ResponseMode::Table);
    assert_eq!(
        Value::Array(out.table_preview.into_iter().map(Value::Object).collect()),
        json!([{"value": 42}])
    );
    let out = run(&json!("mail bob@example.com"), ResponseMode::Table);
    assert_eq!(out.table_preview[0]["value"], json!("mail [REDACTED]"));
}

#[test]
fn table_pii_filtering_and_warnings() {
    let rows = json!([{"id": 1, "email": "user@example.com", "amount": 100.0}]);
    let allowed = fields(&["id", "amount"]);
    let out = run_with(
        &rows,
        ResponseMode::Table,
        Some(&allowed),
        None,
        false,
        &Budgets::default(),
    );
    let row = &out.table_preview[0];
    assert!(!row.contains_key("email"));
    assert!(row.contains_key("id"));
    assert!(out.warnings.iter().any(|w| w.contains("email")));
    assert_eq!(out.stats.redactions, 1);
}

#[test]
fn table_stats_count_json_chars() {
    let data = json!([
        {"id": 1, "name": "Zoë \"Z\" \\ 日本", "ctl": "a\u{1}\n", "f": 1.5e300, "neg": -3, "t": true, "n": null},
        {"nested": {"x": [1.25, "y"]}},
        "plain"
    ]);
    let out = run(&data, ResponseMode::Table);
    let json = serde_json::to_string(&out.table_preview).unwrap();
    assert_eq!(out.stats.chars, json.chars().count());
    let out = run_with(
        &data,
        ResponseMode::Raw,
        None,
        None,
        true,
        &Budgets::default(),
    );
    let json = serde_json::to_string(out.raw_data.as_ref().unwrap()).unwrap();
    assert_eq!(out.stats.chars, json.chars().count());
}

#[test]
fn handle_only_mode() {
    let data = json!([{"id": 1, "email": "a@b.co"}, 2, 3]);
    let out = run(&data, ResponseMode::HandleOnly);
    assert_eq!(out.effective_mode, ResponseMode::HandleOnly);
    assert!(out.facts.is_empty() && out.table_preview.is_empty() && out.raw_data.is_none());
    assert!(out.warnings.iter().any(|w| w.contains("'email'")));
    assert_eq!(out.stats.redactions, 1);
    assert_eq!(out.stats.rows_out, 0);
}

#[test]
fn raw_mode_admin_only() {
    let data = json!({"secret": "data", "note": "mail bob@example.com"});
    let out = run_with(
        &data,
        ResponseMode::Raw,
        None,
        None,
        true,
        &Budgets::default(),
    );
    assert_eq!(out.effective_mode, ResponseMode::Raw);
    assert_eq!(
        out.raw_data,
        Some(json!({"secret": REDACTED, "note": "mail [REDACTED]"}))
    );
    assert_eq!(out.stats.rows_out, 1);

    let out = run_with(
        &data,
        ResponseMode::Raw,
        None,
        None,
        false,
        &Budgets::default(),
    );
    assert_eq!(out.effective_mode, ResponseMode::Summary);
    assert!(out.raw_data.is_none());
    assert!(!out.facts.is_empty());
    assert_eq!(
        out.warnings.last().map(String::as_str),
        Some("raw mode requires admin role; falling back to summary.")
    );
}

#[test]
fn raw_mode_oversized_payload_warns_but_returns() {
    let data = json!({"payload": "x".repeat(10_000)});
    let budgets = Budgets {
        max_chars: 100,
        ..Budgets::default()
    };
    let out = run_with(&data, ResponseMode::Raw, None, None, true, &budgets);
    assert_eq!(out.effective_mode, ResponseMode::Raw);
    assert!(out.warnings.iter().any(|w| w.contains("exceeds budget")));
    assert_eq!(out.raw_data, Some(data));
}

#[test]
fn max_depth_budget_applies_to_every_mode() {
    let deep = json!({"a": {"b": {"c": {"d": {"e": "deep"}}}}});
    let budgets = Budgets {
        max_depth: 2,
        ..Budgets::default()
    };
    let out = run_with(&deep, ResponseMode::Summary, None, None, false, &budgets);
    assert_eq!(out.effective_mode, ResponseMode::Summary);
    let out = run_with(&deep, ResponseMode::Raw, None, None, true, &budgets);
    assert_eq!(out.raw_data, Some(json!({"a": {"b": DEPTH_MARKER}})));
}

#[test]
fn table_rows_for_expansion() {
    let data = billing();
    let rows = data.as_array().unwrap();
    let allowed = fields(&ALLOWED);
    let fw = Firewall::new(Budgets::default());
    let (table, warnings, stats) =
        fw.table_rows(rows.get(5..20).unwrap(), Some(&allowed), Some(10));
    assert_eq!(table.len(), 10);
    assert!(
        table
            .iter()
            .all(|r| !r.contains_key("email") && !r.contains_key("phone"))
    );
    assert!(table.iter().all(|r| r.len() == 6));
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("Field 'email' omitted"))
    );
    assert_eq!(stats.rows_in, 15);
    assert_eq!(stats.rows_out, 10);
    // Without a filter, the sensitive names are still redacted.
    let (table, _, _) = fw.table_rows(rows.get(..2).unwrap(), None, None);
    assert_eq!(table[0]["email"], json!(REDACTED));
    assert_eq!(table[0]["phone"], json!(REDACTED));
}

#[test]
fn budgets_defaults_and_serde() {
    let b = Budgets::default();
    assert_eq!(
        (b.max_rows, b.max_fields, b.max_chars, b.max_depth),
        (50, 20, 4000, 3)
    );
    let parsed: Budgets = serde_json::from_str(r#"{"max_rows": 5}"#).unwrap();
    assert_eq!(
        parsed,
        Budgets {
            max_rows: 5,
            ..Budgets::default()
        }
    );
    assert_eq!(Firewall::new(parsed).budgets(), &parsed);
}

// ── property tests ──────────────────────────────────────────────────────────

fn email() -> impl Strategy<Value = String> {
    (
        "[a-z0-9]{1,10}(\\.[a-z0-9]{1,5})?",
        "[a-z0-9]{1,10}",
        "(com|org|io|co\\.uk|net)",
    )
        .prop_map(|(l, d, t)| format!("{l}@{d}.{t}"))
}

/// `digits` (most significant first) completed with their Luhn check digit.
fn with_luhn_digit(digits: &str) -> String {
    let sum: u32 = digits
        .chars()
        .rev()
        .filter_map(|c| c.to_digit(10))
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 0 {
                (d * 2) % 9 + u32::from(d == 9) * 9
            } else {
                d
            }
        })
        .sum();
    format!("{digits}{}", (10 - sum % 10) % 10)
}

/// A card number: 13 to 19 digits passing the Luhn check (first digit 2 to
/// 9), bare or in groups of four joined by one kind of separator.
fn card() -> impl Strategy<Value = String> {
    prop_oneof![
        "[2-9][0-9]{11,17}".prop_map(|d| with_luhn_digit(&d)),
        (
            "[2-9][0-9]{14}",
            prop_oneof![
                Just(" "),
                Just("-"),
                Just("."),
                Just("/"),
                Just("_"),
                Just("  ")
            ]
        )
            .prop_map(|(d, s)| {
                let n = with_luhn_digit(&d);
                format!(
                    "{}{s}{}{s}{}{s}{}",
                    &n[0..4],
                    &n[4..8],
                    &n[8..12],
                    &n[12..16]
                )
            }),
    ]
}

fn ssn() -> impl Strategy<Value = String> {
    (
        "[0-9]{3}",
        "[0-9]{2}",
        "[0-9]{4}",
        prop_oneof![Just("-"), Just(" "), Just(".")],
        prop_oneof![Just(""), Just("ssn"), Just("ssn_"), Just("SSN:")],
    )
        .prop_map(|(a, b, c, s, prefix)| format!("{prefix}{a}{s}{b}{s}{c}"))
}

fn phone() -> impl Strategy<Value = String> {
    (
        "[2-9][0-9]{2}",
        "[0-9]{3}",
        "[0-9]{4}",
        "[1-9][0-9]{0,2}",
        0..7usize,
    )
        .prop_map(|(a, b, c, cc, f)| match f {
            0 => format!("+1-{a}-{b}-{c}"),
            1 => format!("({a}) {b}-{c}"),
            2 => format!("{a}.{b}.{c}"),
            3 => format!("+{cc}-{a}-{c}"),
            4 => format!("+{cc} {a} {c}"),
            5 => format!("+1{a}{b}{c}"),
            _ => format!("{a}-{b}-{c}"),
        })
}

fn bearer() -> impl Strategy<Value = (String, String)> {
    (
        prop_oneof![Just("Bearer"), Just("bearer"), Just("BEARER")],
        "[A-Za-z0-9._~+/-]{8,40}",
    )
        .prop_map(|(b, t)| (format!("{b} {t}"), t))
}

fn jwt() -> impl Strategy<Value = String> {
    (
        "[A-Za-z0-9_-]{4,30}",
        "[A-Za-z0-9_-]{4,30}",
        "[A-Za-z0-9_-]{8,40}",
    )
        .prop_map(|(h, p, s)| format!("eyJ{h}.eyJ{p}.{s}"))
}

fn api_key() -> impl Strategy<Value = (String, String)> {
    let name = prop_oneof![
        Just("api_key"),
        Just("apikey"),
        Just("API-KEY"),
        Just("api_token"),
        Just("access_key"),
        Just("token"),
        Just("auth_token"),
        Just("secret"),
        Just("client_secret"),
        Just("password"),
        Just("passwd")
    ];
    let sep = prop_oneof![Just("="), Just(": "), Just(" = "), Just(":")];
    (name, sep, "[A-Za-z0-9]{7,24}[A-Z0-9]").prop_map(|(n, s, v)| (format!("{n}{s}{v}"), v))
}

fn connection_url() -> impl Strategy<Value = (String, String)> {
    let scheme = prop_oneof![
        Just("postgres"),
        Just("mysql"),
        Just("redis"),
        Just("amqp+ssl")
    ];
    (
        scheme,
        "[a-z]{1,10}",
        "P[A-Za-z0-9!$%*]{4,16}9",
        "[a-z]{1,10}\\.[a-z]{2,5}",
        "(:[0-9]{2,5})?",
        "(/[a-z]{0,8})?",
    )
        .prop_map(|(sc, u, p, h, port, path)| (format!("{sc}://{u}:{p}@{h}{port}{path}"), p))
}

/// A well-known secret format, with no name before it.
fn format_key() -> impl Strategy<Value = String> {
    prop_oneof![
        "(AKIA|ASIA)[A-Z0-9]{16}",
        "AIza[0-9A-Za-z_-]{35}",
        "gh[pousr]_[A-Za-z0-9]{36}",
        "xox[bp]-[0-9]{10,13}-[0-9]{10,13}-[A-Za-z0-9]{24}",
        "(sk|rk)_(live|test)_[A-Za-z0-9]{24}",
        "sk-ant-api03-[A-Za-z0-9_-]{40}AA",
        "sk-(proj-)?[A-Za-z0-9]{20}[0-9][A-Za-z0-9]{20}",
    ]
}

/// An e-mail address beyond the reference's ASCII shapes.
fn unicode_email() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just("josé"), Just("用户"), Just("o'brien"), Just("a.b+c")],
        prop_oneof![
            Just("bücher.de"),
            Just("例子.广告"),
            Just("localhost"),
            Just("example.com")
        ],
    )
        .prop_map(|(l, d)| format!("{l}@{d}"))
}

/// A secret as embedded in text, and the part that must never survive.
fn secret() -> impl Strategy<Value = (String, String)> {
    prop_oneof![
        email().prop_map(|e| (e.clone(), e)),
        unicode_email().prop_map(|e| (e.clone(), e)),
        card().prop_map(|c| (c.clone(), c)),
        ssn().prop_map(|s| (s.clone(), s)),
        phone().prop_map(|p| (p.clone(), p)),
        bearer(),
        jwt().prop_map(|j| (j.clone(), j)),
        api_key(),
        connection_url(),
        format_key().prop_map(|k| (k.clone(), k)),
    ]
}

fn words() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("the"),
            Just("user"),
            Just("note"),
            Just("said"),
            Just("and"),
            Just("é"),
            Just("日本"),
            Just("ok.")
        ],
        0..4,
    )
    .prop_map(|w| w.join(" "))
}

/// Text holding a secret between ordinary words.
fn text_with_secret() -> impl Strategy<Value = (String, String)> {
    (
        words(),
        secret(),
        words(),
        prop_oneof![Just(" "), Just("\n"), Just("\t")],
    )
        .prop_map(|(a, (s, core), b, sep)| (format!("{a}{sep}{s}{sep}{b}"), core))
}

/// Nested JSON with secrets in string leaves and keys.
fn json_with_secrets() -> impl Strategy<Value = (Value, Vec<String>)> {
    let leaf = prop_oneof![
        text_with_secret().prop_map(|(t, core)| (Value::String(t), vec![core])),
        // Numbers of at most 3 digits: no run of 4 a secret could share.
        (-999i64..1000).prop_map(|n| (json!(n), vec![])),
        words().prop_map(|w| (Value::String(w), vec![])),
    ];
    leaf.prop_recursive(3, 32, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(|items| {
                let secrets = items.iter().flat_map(|(_, s)| s.clone()).collect();
                (
                    Value::Array(items.into_iter().map(|(v, _)| v).collect()),
                    secrets,
                )
            }),
            proptest::collection::vec((key_strategy(), inner), 0..4).prop_map(|entries| {
                let mut map = Map::new();
                let mut secrets = Vec::new();
                for ((key, key_core), (value, s)) in entries {
                    secrets.extend(s);
                    // Secrets in keys too (keys are scrubbed without a filter).
                    secrets.extend(key_core);
                    map.insert(key, value);
                }
                (Value::Object(map), secrets)
            }),
        ]
    })
}

fn key_strategy() -> impl Strategy<Value = (String, Option<String>)> {
    prop_oneof![
        words().prop_map(|w| (w, None)),
        text_with_secret().prop_map(|(t, core)| (t, Some(core))),
    ]
}

/// Any JSON, including deep nesting, odd numbers and arbitrary Unicode.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::String),
        "[0-9 .()+@:=/eyJa-z-]{0,60}".prop_map(Value::String),
        proptest::string::string_regex("(\\PC|[\u{0}-\u{1f}]){0,600}")
            .unwrap()
            .prop_map(Value::String),
    ];
    leaf.prop_recursive(12, 200, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((".{0,12}", inner), 0..6)
                .prop_map(|e| Value::Object(e.into_iter().collect())),
        ]
    })
}

fn any_mode() -> impl Strategy<Value = ResponseMode> {
    prop_oneof![
        Just(ResponseMode::Summary),
        Just(ResponseMode::Table),
        Just(ResponseMode::HandleOnly),
        Just(ResponseMode::Raw)
    ]
}

#[test]
fn uuids_are_not_phone_numbers() {
    // Its digit groups have a phone number's shape (`923-6494108`), but the
    // whole token is an identifier: it comes back unchanged.
    for id in [
        "1b4e28ba-2fa1-11d2-a923-6494108e21ac",
        "123e4567-e89b-12d3-a456-426614174000",
        "00000000-0000-0000-0000-000000000000",
    ] {
        assert_eq!(scrub(id), id);
        assert_eq!(
            scrub(&format!("order {id} shipped")),
            format!("order {id} shipped")
        );
        assert_eq!(kinds(id), PatternSet::EMPTY, "{id}");
    }
}

#[test]
fn a_phone_next_to_a_uuid_is_still_redacted() {
    let id = "1b4e28ba-2fa1-11d2-a923-6494108e21ac";
    for (text, kept) in [
        (
            format!("{id} call +1-555-123-4567"),
            format!("{id} call {REDACTED}"),
        ),
        (
            format!("call +1-555-123-4567, ref {id}"),
            format!("call {REDACTED}, ref {id}"),
        ),
        (format!("{id},555-123-4567"), format!("{id},{REDACTED}")),
    ] {
        assert_eq!(scrub(&text), kept);
    }
    // Not a UUID (a group too short, then more): the phone number goes.
    assert_eq!(
        scrub("1b4e28ba-2fa1-11d2-a923-555-123-4567"),
        "1b4e28ba-2fa1-11d2-a[REDACTED]"
    );
}

proptest! {
    #[test]
    fn uuids_survive_redaction(bytes in proptest::array::uniform16(any::<u8>()), upper in any::<bool>()) {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let id = format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32]);
        let id = if upper { id.to_uppercase() } else { id };
        let text = format!("id={id} and {id}.");
        prop_assert_eq!(Redactor::new().redact_str(&text), text.as_str());
    }


    #[test]
    fn secrets_never_survive_redact_str((text, core) in text_with_secret()) {
        let out = Redactor::new().redact_str(&text);
        let fragment = surviving_fragment(&out, &core);
        prop_assert!(fragment.is_none(), "{fragment:?} of {core:?} survived: {out:?}");
    }

    #[test]
    fn secrets_never_survive_redact_value((value, secrets) in json_with_secrets()) {
        let (out, warnings, _) = Redactor::new().redact_value(&value, None);
        let text = serde_json::to_string(&out).unwrap();
        for secret in &secrets {
            let fragment = surviving_fragment(&text, secret);
            prop_assert!(fragment.is_none(), "{fragment:?} of {secret:?} survived: {text}");
            prop_assert!(warnings.iter().all(|w| surviving_fragment(w, secret).is_none()));
        }
    }

    #[test]
    fn secrets_never_reach_a_frame((value, secrets) in json_with_secrets(), mode in any_mode()) {
        let out = run_with(&value, mode, None, None, true, &Budgets::default());
        let mut text = serde_json::to_string(&out.table_preview).unwrap();
        text.push_str(&out.facts.join("\n"));
        text.push_str(&out.warnings.join("\n"));
        if let Some(raw) = &out.raw_data {
            text.push_str(&raw.to_string());
        }
        for secret in &secrets {
            let fragment = surviving_fragment(&text, secret);
            prop_assert!(fragment.is_none(), "{fragment:?} of {secret:?} survived in {mode:?}: {text}");
        }
    }

    #[test]
    fn redact_str_is_idempotent((text, _) in text_with_secret(), tail in "[0-9 .()+@:=/a-z-]{0,30}") {
        let text = format!("{text}{tail}");
        let once = Redactor::new().redact_str(&text).into_owned();
        let twice = Redactor::new().redact_str(&once).into_owned();
        prop_assert_eq!(twice, once);
    }

    #[test]
    fn glued_secrets_never_survive(
        (a, core_a, a_is_phone) in prop_oneof![phone().prop_map(|p| (p.clone(), p, true)), connection_url().prop_map(|(u, p)| (u, p, false))],
        (b, core_b) in prop_oneof![phone().prop_map(|p| (p.clone(), p)), connection_url()],
        glue in prop_oneof![Just(""), Just(","), Just(" "), Just(";"), Just("?next=")],
    ) {
        // Nothing between them: after a phone number (the end of a
        // replacement is a boundary) unless that makes one longer number;
        // after a URL (its path may end in '/' or '.', which make a phone
        // number part of something else), a URL.
        let glue = if glue.is_empty()
            && (a_is_phone && b.starts_with(|c: char| c.is_ascii_digit())
                || !a_is_phone && !b.contains("://"))
        {
            ","
        } else {
            glue
        };
        let text = format!("{a}{glue}{b} end");
        let out = Redactor::new().redact_str(&text);
        prop_assert!(!out.contains(&core_a) && !out.contains(&core_b), "{text:?} -> {out:?}");
    }

    #[test]
    fn prescan_never_hides_a_match(text in concat!(
        "([0-9 .()+@:=/_\\-]|[a-zA-Z]|eyJ|api|token|Bearer |://|secret|pass|é|\"|'",
        "|AKIA|AIza|ghp_|github_pat_|xoxb-|xapp-|hooks.slack.com/|sk_live_|sk-|sk-ant-|-----BEGIN|PRIVATE KEY",
        "|pin|cvv|ssn|key|auth|cookie|code|1111|4111|\\+1|  ){0,30}",
    )) {
        let fast = PATTERNS.scrub_with(&text, candidates(&text));
        let full = PATTERNS.scrub_with(&text, PatternSet::ALL);
        prop_assert_eq!(fast, full);
    }

    #[test]
    fn small_numbers_never_match_a_digit_rule(n in prop_oneof![
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        (-1e12f64..1e12).prop_map(|f| json!(f)),
    ]) {
        // `number_kinds` skips numbers below 10^12 in magnitude without
        // reading their text: none of them could match.
        let Value::Number(number) = &n else { return Ok(()) };
        let text = number.to_string();
        let text = text.strip_suffix(".0").unwrap_or(&text);
        prop_assert_eq!(Redactor::new().number_kinds(number), PATTERNS.scrub(text).1, "{}", text);
    }

    #[test]
    fn prescan_never_hides_a_secret((text, _) in text_with_secret()) {
        let fast = PATTERNS.scrub_with(&text, candidates(&text));
        let full = PATTERNS.scrub_with(&text, PatternSet::ALL);
        prop_assert_eq!(fast, full);
    }

    #[test]
    fn no_panic_and_budgets_hold(
        value in any_json(),
        mode in any_mode(),
        admin in any::<bool>(),
        max_rows in 0usize..8,
        max_fields in 0usize..8,
        max_chars in 0usize..600,
        max_depth in 0usize..8,
        request_rows in proptest::option::of(0usize..8),
        filter in proptest::option::of(proptest::collection::vec(".{0,12}", 0..4)),
    ) {
        let budgets = Budgets { max_rows, max_fields, max_chars, max_depth };
        let out = run_with(&value, mode, filter.as_deref(), request_rows, admin, &budgets);
        prop_assert!(out.facts.len() <= MAX_FACTS);
        let fact_chars: usize = out.facts.iter().map(|f| f.chars().count()).sum();
        prop_assert!(fact_chars <= max_chars);
        prop_assert!(out.table_preview.len() <= request_rows.unwrap_or(max_rows));
        prop_assert!(out.table_preview.iter().all(|r| r.len() <= max_fields));
        if out.effective_mode == ResponseMode::Table {
            let json = serde_json::to_string(&out.table_preview).unwrap();
            prop_assert_eq!(out.stats.chars, json.chars().count());
        }
        if out.effective_mode == ResponseMode::Raw {
            prop_assert!(admin);
            let json = serde_json::to_string(out.raw_data.as_ref().unwrap()).unwrap();
            prop_assert_eq!(out.stats.chars, json.chars().count());
        }
        // Deterministic.
        prop_assert_eq!(&out, &run_with(&value, mode, filter.as_deref(), request_rows, admin, &budgets));
    }

    #[test]
    fn view_serialises_like_owned(value in any_json(), max_depth in 0usize..6) {
        let r = Redactor::new().with_max_depth(max_depth);
        let view = r.redact(&value, None);
        let owned = view.value.to_value();
        prop_assert_eq!(serde_json::to_value(&view.value).unwrap(), owned.clone());
        prop_assert_eq!(super::summarize::view_json_chars(&view.value), owned.to_string().chars().count());
    }
}
