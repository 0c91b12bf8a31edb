//! Attacks on grants and tokens: constraints the caller chooses, forged
//! tokens probing revocation state, `revoke_all` racing `issue`, empty
//! attribute values, invisible justifications, and error messages that would
//! quote the caller's text back.

use std::sync::Arc;
use std::time::Duration;

use agent_kernel::*;
use serde_json::{Value, json};

const SECRET: &str = "adversarial-grants-secret-0123456789";
const J: &str = "fixing the customer's billing address";

fn pii_list() -> Capability {
    Capability::new("billing.list_invoices", "List", "list", SafetyClass::Read)
        .with_sensitivity(SensitivityTag::Pii)
        .with_allowed_fields(["id", "customer_name", "amount"])
}

fn reader() -> Principal {
    Principal::new("analyst-001")
        .with_roles(["reader"])
        .with_attribute("tenant", "acme")
}

fn request(constraints: Value) -> CapabilityRequest {
    let mut r = CapabilityRequest::new("billing.list_invoices", "list invoices");
    if let Value::Object(map) = constraints {
        for (k, v) in map {
            r = r.with_constraint(k, v);
        }
    }
    r
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(Timestamp::from_millis(1_700_000_000_000)))
}

fn provider(c: &Arc<ManualClock>) -> HmacTokenProvider {
    HmacTokenProvider::new(SECRET)
        .unwrap()
        .with_clock(c.clone())
}

fn category(err: &KernelError) -> &'static str {
    err.denial_category()
        .map_or(err.kind(), DenialCategory::as_str)
}

/// Flips one hex digit of the signature.
fn forge(t: &CapabilityToken) -> CapabilityToken {
    let mut bad = t.clone();
    let first = if bad.signature.starts_with('0') {
        "1"
    } else {
        "0"
    };
    bad.signature.replace_range(0..1, first);
    bad
}

// ── allowed_fields ──────────────────────────────────────────────────────────

#[test]
fn a_reader_cannot_switch_off_the_field_filter_with_an_empty_list() {
    let engine = DefaultPolicyEngine::new();
    let cap = pii_list();
    // At grant: an empty list is refused, not signed.
    let err = engine
        .evaluate(&request(json!({"allowed_fields": []})), &cap, &reader(), "")
        .unwrap_err();
    assert_eq!(category(&err), "invalid_constraint", "{err}");
    assert!(err.to_string().contains("allowed_fields"), "{err}");
    // Also for a principal the policy does not force a list on.
    let pii_reader = reader().with_roles(["reader", "pii_reader"]);
    let err = engine
        .evaluate(
            &request(json!({"allowed_fields": []})),
            &cap,
            &pii_reader,
            "",
        )
        .unwrap_err();
    assert_eq!(category(&err), "invalid_constraint", "{err}");

    // At invoke: a token signed with an empty list (minted before this rule)
    // does not pass as "no filter".
    let empty = Constraints {
        max_rows: Some(50),
        allowed_fields: Some(Arc::from(Vec::<String>::new())),
        ..Constraints::default()
    };
    for who in [reader(), pii_reader] {
        let err = engine.evaluate_invoke(&cap, &who, &empty).unwrap_err();
        assert_eq!(category(&err), "invalid_constraint", "{err}");
    }
}

#[test]
fn a_disjoint_field_list_is_refused_at_grant() {
    let engine = DefaultPolicyEngine::new();
    for fields in [
        json!(["no_such_field"]),
        json!(["email", "iban"]),
        json!([""]),
    ] {
        let err = engine
            .evaluate(
                &request(json!({ "allowed_fields": fields })),
                &pii_list(),
                &reader(),
                "",
            )
            .unwrap_err();
        assert_eq!(category(&err), "invalid_constraint", "{fields}: {err}");
        assert!(err.to_string().contains("allowed_fields"), "{err}");
    }
    // A narrowing that leaves something is still granted, narrowed.
    let d = engine
        .evaluate(
            &request(json!({"allowed_fields": ["id", "email"]})),
            &pii_list(),
            &reader(),
            "",
        )
        .unwrap();
    assert_eq!(
        d.constraints.allowed_fields.as_deref(),
        Some(&["id".to_owned()][..])
    );
}

// ── constraint keys ─────────────────────────────────────────────────────────

#[test]
fn unknown_constraint_keys_are_refused_not_signed() {
    let engine = DefaultPolicyEngine::new();
    let err = engine
        .evaluate(
            &request(json!({"tenant": "globex", "where": "1=1", "max_rows": 5})),
            &pii_list(),
            &reader(),
            "",
        )
        .unwrap_err();
    assert_eq!(category(&err), "invalid_constraint", "{err}");
    let text = err.to_string();
    assert!(
        text.contains("'tenant'") && text.contains("'where'"),
        "{text}"
    );
    assert!(!text.contains("globex") && !text.contains("1=1"), "{text}");

    // A token that carries one (minted before this rule) is refused at invoke.
    let mut smuggled = Constraints {
        max_rows: Some(5),
        allowed_fields: Some(Arc::from(vec!["id".to_owned()])),
        ..Constraints::default()
    };
    smuggled.extra.insert("tenant".into(), json!("globex"));
    let err = engine
        .evaluate_invoke(&pii_list(), &reader(), &smuggled)
        .unwrap_err();
    assert_eq!(category(&err), "invalid_constraint", "{err}");
    assert!(err.to_string().contains("'tenant'"), "{err}");
}

#[test]
fn constraint_errors_never_quote_caller_values() {
    let engine = DefaultPolicyEngine::new();
    let cases = [
        json!({"password": "hunter2"}),
        json!({"bob@corp.com": "x"}),
        json!({"max_rows": "hunter2"}),
        json!({"max_rows": {"pw": "hunter2"}}),
        json!({"allowed_fields": "bob@corp.com"}),
        json!({"allowed_fields": [{"password": "hunter2"}]}),
        json!({"allowed_fields": ["id", 4_111_111_111_111_111_u64]}),
    ];
    for c in cases {
        let err = engine
            .evaluate(&request(c.clone()), &pii_list(), &reader(), "")
            .unwrap_err();
        assert_eq!(category(&err), "invalid_constraint", "{c}: {err}");
        let text = format!("{err} {err:?}");
        for secret in ["hunter2", "bob@corp.com", "4111111111111111"] {
            assert!(!text.contains(secret), "{c} quoted: {text}");
        }
    }
    // The key is named (it is not a value), the value is not.
    let err = engine
        .evaluate(
            &request(json!({"password": "hunter2"})),
            &pii_list(),
            &reader(),
            "",
        )
        .unwrap_err();
    assert!(err.to_string().contains("'password'"), "{err}");
}

// ── tokens ──────────────────────────────────────────────────────────────────

#[test]
fn a_forged_token_cannot_learn_about_revoke_all() {
    let c = clock();
    let p = provider(&c);
    let alice = p.issue("cap", "alice", Constraints::default(), None, "a");
    let bob = p.issue("cap", "bob", Constraints::default(), None, "b");
    p.revoke_all("alice");
    // The genuine token is revoked …
    assert_eq!(
        p.verify(&alice, "alice", "cap").unwrap_err().kind(),
        "token_revoked"
    );
    // … but a forgery learns only that it is a forgery, whether or not the
    // principal was revoked, and whether or not the id was.
    for (forged, who) in [(forge(&alice), "alice"), (forge(&bob), "bob")] {
        let err = p.verify(&forged, who, "cap").unwrap_err();
        assert_eq!(err.kind(), "token_invalid", "{who}: {err}");
    }
    let mut made_up = forge(&bob);
    made_up.principal_id = "alice".into();
    made_up.issued_at = Timestamp::from_millis(0);
    assert_eq!(
        p.verify(&made_up, "alice", "cap").unwrap_err().kind(),
        "token_invalid"
    );
    p.revoke(&bob.token_id);
    assert_eq!(
        p.verify(&forge(&bob), "bob", "cap").unwrap_err().kind(),
        "token_invalid"
    );
    // Nor about expiry.
    c.advance(Duration::from_secs(7200));
    assert_eq!(
        p.verify(&forge(&bob), "bob", "cap").unwrap_err().kind(),
        "token_invalid"
    );
}

#[test]
fn revoke_all_catches_a_token_from_the_same_millisecond_with_a_full_index() {
    let c = clock();
    let p = provider(&c).with_max_tracked_tokens(2);
    let early = p.issue("cap", "dave", Constraints::default(), None, "");
    // Push dave's token out of the tracking index, in the same millisecond.
    for _ in 0..5 {
        p.issue("cap", "erin", Constraints::default(), None, "");
    }
    assert_eq!(p.tracked_tokens(), 2);
    assert_eq!(p.revoke_all("dave"), 0, "dave's token is no longer tracked");
    assert_eq!(
        p.verify(&early, "dave", "cap").unwrap_err().kind(),
        "token_revoked"
    );
    // A token issued after revoke_all returned, still in the same millisecond, is valid.
    let later = p.issue("cap", "dave", Constraints::default(), None, "");
    assert!(p.verify(&later, "dave", "cap").is_ok());
    // And a second revoke_all in that millisecond catches it too.
    p.revoke_all("dave");
    assert_eq!(
        p.verify(&later, "dave", "cap").unwrap_err().kind(),
        "token_revoked"
    );
    let last = p.issue("cap", "dave", Constraints::default(), None, "");
    assert!(p.verify(&last, "dave", "cap").is_ok());
    // Erin was never revoked.
    let erin = p.issue("cap", "erin", Constraints::default(), None, "");
    assert!(p.verify(&erin, "erin", "cap").is_ok());
}

#[test]
fn revoke_all_catches_tokens_issued_concurrently_before_it_returns() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let c = clock();
    let p = Arc::new(provider(&c).with_max_tracked_tokens(1));
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicUsize::new(0));
    let issuer = {
        let (p, stop, count) = (Arc::clone(&p), Arc::clone(&stop), Arc::clone(&count));
        std::thread::spawn(move || {
            let mut issued = Vec::new();
            while !stop.load(Ordering::Relaxed) && issued.len() < 50_000 {
                issued.push(p.issue("cap", "frank", Constraints::default(), None, ""));
                count.fetch_add(1, Ordering::Relaxed);
            }
            issued
        })
    };
    while count.load(Ordering::Relaxed) < 100 {
        std::thread::yield_now();
    }
    p.revoke_all("frank");
    stop.store(true, Ordering::Relaxed);
    let issued = issuer.join().unwrap();
    // Every token is either revoked or valid, and the revoked ones are exactly
    // a prefix in issue order: revoke_all cut the sequence once.
    let verdicts: Vec<bool> = issued
        .iter()
        .map(|t| match p.verify(t, "frank", "cap") {
            Ok(()) => true,
            Err(e) if e.kind() == "token_revoked" => false,
            Err(e) => panic!("{e}"),
        })
        .collect();
    let revoked = verdicts.iter().take_while(|ok| !**ok).count();
    assert!(revoked >= 100, "only {revoked} tokens revoked");
    assert!(
        verdicts[revoked..].iter().all(|ok| *ok),
        "a token issued after a valid one is revoked"
    );
}

// ── attributes and justifications ───────────────────────────────────────────

#[test]
fn an_empty_tenant_does_not_pass_the_tenant_check() {
    let engine = DefaultPolicyEngine::new();
    let cap = pii_list();
    let signed = engine.evaluate(&request(json!({})), &cap, &reader(), "");
    let signed = signed.unwrap().constraints;
    for tenant in ["", "   ", "\u{200B}\u{200B}", "\t\n"] {
        let p = Principal::new("analyst-001")
            .with_roles(["reader"])
            .with_attribute("tenant", tenant);
        let err = engine
            .evaluate(&request(json!({})), &cap, &p, "")
            .unwrap_err();
        assert_eq!(category(&err), "missing_tenant_attribute", "{tenant:?}");
        let err = engine.evaluate_invoke(&cap, &p, &signed).unwrap_err();
        assert_eq!(category(&err), "missing_tenant_attribute", "{tenant:?}");
    }
}

#[test]
fn zero_width_characters_do_not_make_a_justification() {
    let engine = DefaultPolicyEngine::new();
    let write = Capability::new("billing.update", "Update", "update", SafetyClass::Write);
    let writer = Principal::new("w1").with_roles(["writer"]);
    let req = CapabilityRequest::new("billing.update", "update");
    for padding in [
        "\u{200B}".repeat(15),
        "\u{200B}\u{200C}\u{200D}\u{2060}\u{FEFF}".repeat(4),
        "\u{00A0}\u{2003}\u{3000}\u{2028}\u{2029}".repeat(4),
        "\u{0007}\u{001B}\u{007F}".repeat(6),
        "\u{202E}\u{2066}\u{00AD}\u{180E}".repeat(5),
        format!("ok{}", "\u{200B}".repeat(20)),
        format!("e{}", "\u{0301}".repeat(20)),
    ] {
        let err = engine
            .evaluate(&req, &write, &writer, &padding)
            .unwrap_err();
        assert_eq!(
            category(&err),
            "insufficient_justification",
            "{padding:?} passed"
        );
    }
    // Fifteen visible characters, with invisible ones in between, pass.
    let spaced: String = "fixing the invoice typo"
        .chars()
        .flat_map(|c| [c, '\u{200B}'])
        .collect();
    assert!(engine.evaluate(&req, &write, &writer, &spaced).is_ok());
    assert!(engine.evaluate(&req, &write, &writer, J).is_ok());
    assert!(
        engine
            .evaluate(&req, &write, &writer, "  123456789012345  ")
            .is_ok()
    );
}

// ── error messages ──────────────────────────────────────────────────────────

#[test]
fn token_parse_errors_never_quote_caller_values() {
    let c = clock();
    let t = provider(&c).issue("cap", "u1", Constraints::default(), None, "a");
    let wire: Value = serde_json::from_str(&t.to_json().unwrap()).unwrap();
    let secrets = [
        "hunter2",
        "bob@corp.com",
        "4111111111111111",
        "sk_live_abcdefghijklmnop",
    ];
    let mut cases = Vec::new();
    for (field, value) in [
        ("issued_at", json!("password=hunter2")),
        ("expires_at", json!("bob@corp.com")),
        ("issued_at", json!(4_111_111_111_111_111_u64.to_string())),
        ("principal_id", json!({"password": "hunter2"})),
        ("token_id", json!(["bob@corp.com"])),
        ("constraints", json!({"max_rows": "hunter2"})),
        ("constraints", json!({"max_rows": {"pw": "hunter2"}})),
        ("constraints", json!({"allowed_fields": "bob@corp.com"})),
        (
            "constraints",
            json!({"allowed_fields": [{"api_key": "hunter2"}]}),
        ),
        (
            "constraints",
            json!({"allowed_fields": [4_111_111_111_111_111_u64]}),
        ),
        ("constraints", json!("sk_live_abcdefghijklmnop")),
        ("bob@corp.com", json!("hunter2")),
        ("password", json!("hunter2")),
    ] {
        let mut v = wire.clone();
        v[field] = value;
        cases.push(v.to_string());
    }
    cases.push(r#"{"token_id": "hunter2"#.to_owned());
    cases.push(r#"{"token_id": 4111111111111111}"#.to_owned());
    for text in &cases {
        let err = CapabilityToken::from_json(text).unwrap_err();
        assert_eq!(err.kind(), "token_format");
        let shown = format!("{err} {err:?}");
        for s in secrets {
            assert!(!shown.contains(s), "{text}\n quoted {s}: {shown}");
        }
    }
    // Missing and unknown field names are still named.
    let mut missing = wire.clone();
    missing.as_object_mut().unwrap().remove("signature");
    let err = CapabilityToken::from_json(&missing.to_string()).unwrap_err();
    assert!(err.to_string().contains("signature"), "{err}");
    let mut unknown = wire.clone();
    unknown["tenant"] = json!("globex");
    let err = CapabilityToken::from_json(&unknown.to_string()).unwrap_err();
    assert!(
        err.to_string().contains("tenant") && !err.to_string().contains("globex"),
        "{err}"
    );
}

#[test]
fn a_forged_token_id_is_not_echoed_unredacted() {
    let c = clock();
    let p = provider(&c);
    let mut forged = p.issue("cap", "u1", Constraints::default(), None, "a");
    forged.token_id = "bob@corp.com password=hunter2".into();
    let err = p.verify(&forged, "u1", "cap").unwrap_err();
    assert_eq!(err.kind(), "token_invalid");
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains("bob@corp.com") && !shown.contains("hunter2"),
        "{shown}"
    );
}
