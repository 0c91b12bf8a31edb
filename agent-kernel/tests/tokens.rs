//! Token issue, verification order, revocation, bounded indexes and the strict
//! JSON transport form; property tests for tampering and parsing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use agent_kernel::*;
use proptest::prelude::*;
use serde_json::json;

const SECRET: &str = "token-test-secret-abcdefghijklmnop";

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(Timestamp::from_millis(1_700_000_000_000)))
}

fn provider(c: &Arc<ManualClock>) -> HmacTokenProvider {
    HmacTokenProvider::new(SECRET)
        .unwrap()
        .with_clock(c.clone())
}

fn constraints() -> Constraints {
    let mut c = Constraints {
        max_rows: Some(50),
        allowed_fields: Some(Arc::from(vec!["id".to_owned(), "amount".to_owned()])),
        ..Constraints::default()
    };
    c.extra
        .insert("region".into(), json!({"z": 1, "a": [true, null, 2.5]}));
    c
}

#[test]
fn signable_payload_is_canonical_and_key_sorted() {
    let c = clock();
    let t = provider(&c).issue("cap", "u1", constraints(), None, "aud");
    let mut buf = Vec::new();
    t.write_signable(&mut buf);
    let text = String::from_utf8(buf).unwrap();
    let expected = format!(
        "{{\"audit_id\":\"aud\",\"capability_id\":\"cap\",\"constraints\":{{\"allowed_fields\":[\"id\",\"amount\"],\"max_rows\":50,\"region\":{{\"a\":[true,null,2.5],\"z\":1}}}},\"expires_at\":{},\"issued_at\":{},\"principal_id\":\"u1\",\"token_id\":\"{}\"}}",
        t.expires_at.as_millis(),
        t.issued_at.as_millis(),
        t.token_id
    );
    assert_eq!(text, expected);
    assert!(!text.contains("signature"));
    assert_eq!(t.signature.len(), 64);
    assert!(
        t.signature
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
}

#[test]
fn verify_checks_in_the_specified_order() {
    // signature → revoked → expired → principal → capability
    let c = clock();
    let p = provider(&c);
    let t = p.issue(
        "cap",
        "u1",
        Constraints::default(),
        Some(Duration::from_secs(10)),
        "",
    );
    assert!(p.verify(&t, "u1", "cap").is_ok());

    // principal before capability
    assert_eq!(
        p.verify(&t, "u2", "other").unwrap_err().kind(),
        "token_principal_mismatch"
    );
    let err = p.verify(&t, "u1", "other").unwrap_err();
    assert_eq!(err.kind(), "token_capability_mismatch");
    assert!(err.to_string().contains("other") && err.to_string().contains("cap"));

    // signature before principal
    let mut bad = t.clone();
    bad.signature.replace_range(
        0..1,
        if bad.signature.starts_with('0') {
            "1"
        } else {
            "0"
        },
    );
    assert_eq!(
        p.verify(&bad, "u2", "other").unwrap_err().kind(),
        "token_invalid"
    );

    // revocation before expiry and principal; signature before revocation
    let other = p.issue(
        "cap",
        "u1",
        Constraints::default(),
        Some(Duration::from_secs(10)),
        "",
    );
    p.revoke(&other.token_id);
    assert_eq!(
        p.verify(&other, "u2", "other").unwrap_err().kind(),
        "token_revoked"
    );
    let mut forged = other.clone();
    forged.signature = bad.signature.clone();
    assert_eq!(
        p.verify(&forged, "u1", "cap").unwrap_err().kind(),
        "token_invalid",
        "a forgery must not learn that its id was revoked"
    );

    // expiry before principal; signature before expiry
    c.advance(Duration::from_secs(10));
    assert_eq!(
        p.verify(&t, "u2", "other").unwrap_err().kind(),
        "token_expired"
    );
    assert_eq!(
        p.verify(&bad, "u1", "cap").unwrap_err().kind(),
        "token_invalid"
    );
    // revocation before expiry
    assert_eq!(
        p.verify(&other, "u1", "cap").unwrap_err().kind(),
        "token_revoked"
    );
    p.revoke(&t.token_id);
    assert_eq!(
        p.verify(&t, "u1", "cap").unwrap_err().kind(),
        "token_revoked"
    );
}

#[test]
fn malformed_signatures_are_invalid_not_panics() {
    let c = clock();
    let p = provider(&c);
    let t = p.issue("cap", "u1", Constraints::default(), None, "");
    for sig in [
        "",
        "zz",
        &"0".repeat(64),
        &"g".repeat(64),
        &t.signature[..62],
        &format!("{}00", t.signature),
    ] {
        let mut bad = t.clone();
        bad.signature = sig.to_owned();
        let err = p.verify(&bad, "u1", "cap").unwrap_err();
        assert_eq!(err.kind(), "token_invalid", "signature {sig:?}");
    }
}

#[test]
fn another_secret_does_not_verify() {
    let c = clock();
    let a = provider(&c);
    let b = HmacTokenProvider::new("a-different-secret")
        .unwrap()
        .with_clock(c.clone());
    let t = a.issue("cap", "u1", Constraints::default(), None, "");
    assert_eq!(
        b.verify(&t, "u1", "cap").unwrap_err().kind(),
        "token_invalid"
    );
    assert!(HmacTokenProvider::new("").is_err());
}

#[test]
fn secret_never_in_debug_or_errors() {
    let c = clock();
    let p = provider(&c);
    assert!(!format!("{p:?}").contains(SECRET));
    let t = p.issue("cap", "u1", Constraints::default(), None, "");
    let mut bad = t.clone();
    bad.principal_id = "x".into();
    let err = p.verify(&bad, "x", "cap").unwrap_err();
    assert!(!err.to_string().contains(SECRET) && !format!("{err:?}").contains(SECRET));
}

#[test]
fn revoke_is_idempotent_and_revoke_all_counts_newly_revoked() {
    let c = clock();
    let p = provider(&c);
    let a: Vec<CapabilityToken> = (0..3)
        .map(|_| p.issue("cap", "alice", Constraints::default(), None, ""))
        .collect();
    let bob = p.issue("cap", "bob", Constraints::default(), None, "");
    p.revoke(&a[0].token_id);
    p.revoke(&a[0].token_id);
    p.revoke("never-issued");
    assert_eq!(p.revoke_all("alice"), 2);
    assert_eq!(p.revoke_all("alice"), 0);
    assert_eq!(p.revoke_all("nobody"), 0);
    for t in &a {
        assert_eq!(
            p.verify(t, "alice", "cap").unwrap_err().kind(),
            "token_revoked"
        );
    }
    assert!(p.verify(&bob, "bob", "cap").is_ok());
    // issued in the same millisecond after revoke_all: valid
    let after = p.issue("cap", "alice", Constraints::default(), None, "");
    assert!(p.verify(&after, "alice", "cap").is_ok());
    // expired tokens are not counted
    let short = p.issue(
        "cap",
        "carol",
        Constraints::default(),
        Some(Duration::from_secs(1)),
        "",
    );
    c.advance(Duration::from_secs(2));
    assert_eq!(p.revoke_all("carol"), 0);
    assert_eq!(
        p.verify(&short, "carol", "cap").unwrap_err().kind(),
        "token_revoked"
    );
}

#[test]
fn change_revocation_indexes_are_bounded() {
    let c = clock();
    let p = provider(&c);
    for i in 0..500 {
        let t = p.issue(
            "cap",
            &format!("u{}", i % 7),
            Constraints::default(),
            Some(Duration::from_secs(5)),
            "",
        );
        if i % 2 == 0 {
            p.revoke(&t.token_id);
        }
    }
    assert_eq!(p.tracked_tokens(), 500);
    assert_eq!(p.revoked_entries(), 250);
    c.advance(Duration::from_secs(6));
    let _ = p.issue("cap", "u0", Constraints::default(), None, "");
    assert_eq!(p.tracked_tokens(), 1, "expired entries are dropped");
    p.revoke("x"); // triggers pruning of the revoked set
    assert_eq!(p.revoked_entries(), 1);

    // a hard cap on tracked tokens; revoke_all still revokes untracked ones
    let capped = HmacTokenProvider::new(SECRET)
        .unwrap()
        .with_clock(c.clone())
        .with_max_tracked_tokens(10);
    let early = capped.issue("cap", "dave", Constraints::default(), None, "");
    for _ in 0..50 {
        capped.issue("cap", "erin", Constraints::default(), None, "");
    }
    assert_eq!(capped.tracked_tokens(), 10);
    c.advance(Duration::from_millis(1));
    assert_eq!(
        capped.revoke_all("dave"),
        0,
        "dave's token fell out of the index"
    );
    assert_eq!(
        capped.verify(&early, "dave", "cap").unwrap_err().kind(),
        "token_revoked"
    );
}

#[test]
fn transport_form_round_trips_and_is_strict() {
    let c = clock();
    let p = provider(&c);
    let t = p.issue("cap", "u1", constraints(), None, "aud-1");
    let wire = t.to_json().unwrap();
    let back = CapabilityToken::from_json(&wire).unwrap();
    assert_eq!(back, t);
    assert!(p.verify(&back, "u1", "cap").is_ok());

    let mut v: serde_json::Value = serde_json::from_str(&wire).unwrap();
    for field in [
        "token_id",
        "capability_id",
        "principal_id",
        "issued_at",
        "expires_at",
        "constraints",
        "audit_id",
        "signature",
    ] {
        let mut missing = v.clone();
        missing.as_object_mut().unwrap().remove(field);
        let err = CapabilityToken::from_json(&missing.to_string()).unwrap_err();
        assert_eq!(err.kind(), "token_format");
        assert!(err.to_string().contains(field), "{err}");
    }
    v["extra"] = json!(1);
    assert_eq!(
        CapabilityToken::from_json(&v.to_string())
            .unwrap_err()
            .kind(),
        "token_format"
    );
    let mut bad_rows: serde_json::Value = serde_json::from_str(&wire).unwrap();
    bad_rows["constraints"]["max_rows"] = json!("fifty");
    assert_eq!(
        CapabilityToken::from_json(&bad_rows.to_string())
            .unwrap_err()
            .kind(),
        "token_format"
    );
    for junk in ["", "{", "null", "[]", "{\"token_id\": 5}", "\u{0}"] {
        assert_eq!(
            CapabilityToken::from_json(junk).unwrap_err().kind(),
            "token_format",
            "{junk:?}"
        );
    }
}

#[derive(Debug, Clone)]
enum Tamper {
    TokenId(String),
    CapabilityId(String),
    PrincipalId(String),
    IssuedAt(u64),
    ExpiresAt(u64),
    MaxRows(Option<u64>),
    AllowedFields(Option<Vec<String>>),
    Extra(String, i64),
    AuditId(String),
}

fn tamper() -> impl Strategy<Value = Tamper> {
    prop_oneof![
        "[a-z0-9-]{0,40}".prop_map(Tamper::TokenId),
        "[a-z._]{0,30}".prop_map(Tamper::CapabilityId),
        "\\PC{0,20}".prop_map(Tamper::PrincipalId),
        (0u64..1_700_000_000_000).prop_map(Tamper::IssuedAt),
        (1_700_000_000_001u64..4_000_000_000_000).prop_map(Tamper::ExpiresAt),
        proptest::option::of(0u64..10_000).prop_map(Tamper::MaxRows),
        proptest::option::of(proptest::collection::vec("[a-z_]{1,10}", 0..5))
            .prop_map(Tamper::AllowedFields),
        ("[a-z]{1,8}", any::<i64>()).prop_map(|(k, v)| Tamper::Extra(k, v)),
        "\\PC{0,20}".prop_map(Tamper::AuditId),
    ]
}

fn apply(t: &mut CapabilityToken, change: &Tamper) {
    match change.clone() {
        Tamper::TokenId(v) => t.token_id = v,
        Tamper::CapabilityId(v) => t.capability_id = v,
        Tamper::PrincipalId(v) => t.principal_id = v,
        Tamper::IssuedAt(v) => t.issued_at = Timestamp::from_millis(v),
        Tamper::ExpiresAt(v) => t.expires_at = Timestamp::from_millis(v),
        Tamper::MaxRows(v) => t.constraints.max_rows = v,
        Tamper::AllowedFields(v) => t.constraints.allowed_fields = v.map(Arc::from),
        Tamper::Extra(k, v) => {
            t.constraints.extra.insert(k, json!(v));
        }
        Tamper::AuditId(v) => t.audit_id = v,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any change to any signed field makes verification fail (on the signature,
    /// since expected principal and capability follow the tampered token).
    #[test]
    fn any_change_to_a_signed_field_fails_verification(change in tamper()) {
        let c = clock();
        let p = provider(&c);
        let original = p.issue("billing.list_invoices", "analyst-001", constraints(), None, "audit-1");
        let mut t = original.clone();
        apply(&mut t, &change);
        prop_assume!(t != original);
        let err = p.verify(&t, &t.principal_id.clone(), &t.capability_id.clone()).unwrap_err();
        prop_assert_eq!(err.kind(), "token_invalid", "{:?}", change);
        // and the untouched token still verifies
        prop_assert!(p.verify(&original, "analyst-001", "billing.list_invoices").is_ok());
    }

    /// The signed payload is the JSON of every field but the signature, with
    /// keys sorted at every level, on both the fast and the general path.
    #[test]
    fn signable_payload_matches_sorted_json(
        rows in proptest::option::of(0u64..1000),
        fields in proptest::option::of(proptest::collection::vec("\\PC{0,6}", 0..4)),
        extra in proptest::collection::btree_map("[a-z]{1,5}", proptest::collection::btree_map("[a-z\"\\\\]{1,3}", any::<i32>(), 0..3), 0..3),
        principal in "\\PC{0,12}",
    ) {
        let c = clock();
        let p = provider(&c);
        let mut cons = Constraints { max_rows: rows, allowed_fields: fields.clone().map(Arc::from), ..Constraints::default() };
        for (k, v) in &extra {
            cons.extra.insert(k.clone(), serde_json::to_value(v).unwrap());
        }
        let t = p.issue("cap", &principal, cons, None, "aud");
        let mut buf = Vec::new();
        t.write_signable(&mut buf);
        let parsed: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        let mut expected_constraints = serde_json::Map::new();
        if let Some(f) = &fields { expected_constraints.insert("allowed_fields".into(), json!(f)); }
        if let Some(r) = rows { expected_constraints.insert("max_rows".into(), json!(r)); }
        for (k, v) in &extra { expected_constraints.insert(k.clone(), serde_json::to_value(v).unwrap()); }
        let expected = json!({
            "audit_id": "aud", "capability_id": "cap", "constraints": expected_constraints,
            "expires_at": t.expires_at.as_millis(), "issued_at": t.issued_at.as_millis(),
            "principal_id": principal, "token_id": t.token_id,
        });
        prop_assert_eq!(&parsed, &expected);
        // Byte-exact: serde_json (without preserve_order, as in this crate's tree)
        // writes object keys in sorted order, so its compact form is the canonical form.
        prop_assert_eq!(String::from_utf8(buf).unwrap(), serde_json::to_string(&parsed).unwrap());
    }

    /// Parsing arbitrary text never panics; it is a token or a token_format error.
    #[test]
    fn parsing_never_panics(text in "\\PC{0,200}") {
        if let Err(e) = CapabilityToken::from_json(&text) {
            prop_assert_eq!(e.kind(), "token_format");
        }
    }
}
