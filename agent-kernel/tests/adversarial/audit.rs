//! The audit trail and the errors carry no raw caller data: arguments are
//! stored redacted, refusals are recorded with unverified ids scrubbed, and
//! every error that quotes caller input passes through the redactor first.

use std::sync::Arc;

use agent_kernel::*;
use serde_json::json;

const LIST: &str = "crm.list_customers";
const BROKEN: &str = "crm.broken";
const UPDATE: &str = "crm.update";
const SECRET: &str = "adversarial-audit-secret-0123456789";

const EMAIL: &str = "margaret.hale@milton-mills.org";
const CARD: &str = "4556 7375 8689 9855";
const PASSWORD: &str = "Tr0ub4dor3xK9qZ";

fn kernel() -> Kernel {
    let mut registry = CapabilityRegistry::new();
    registry
        .register_many([
            Capability::new(LIST, "List", "List customers", SafetyClass::Read)
                .with_sensitivity(SensitivityTag::Pii),
            Capability::new(BROKEN, "Broken", "Fails, echoing", SafetyClass::Read),
            Capability::new(UPDATE, "Update", "Update", SafetyClass::Write),
        ])
        .unwrap();
    let rows = Arc::new(json!([{"id": 1, "status": "open"}]));
    let driver = InMemoryDriver::new("mem")
        .with_handler(LIST, move |_ctx| Ok::<_, String>(Arc::clone(&rows)))
        .with_handler(BROKEN, |ctx| {
            Err::<serde_json::Value, _>(format!(
                r#"upstream said {{"pw":"{PASSWORD}","password":"{PASSWORD}"}} for {}"#,
                serde_json::Value::Object(ctx.args.clone())
            ))
        });
    Kernel::builder(registry)
        .secret(SECRET)
        .router(
            StaticRouter::new()
                .with_route(LIST, ["mem"])
                .with_route(BROKEN, ["mem"])
                .with_route(UPDATE, ["mem"]),
        )
        .driver(driver)
        .build()
        .unwrap()
}

fn analyst() -> Principal {
    Principal::new("analyst-9")
        .with_roles(["reader"])
        .with_attribute("tenant", "acme")
}

fn secret_args() -> Args {
    args(json!({
        "email": EMAIL,
        "card": CARD,
        "password": PASSWORD,
        "note": format!("reach me at {EMAIL}"),
        "nested": {"card": CARD},
    }))
    .unwrap()
}

fn assert_clean(what: &str, text: &str) {
    for secret in [EMAIL, CARD, PASSWORD] {
        assert!(!text.contains(secret), "{what} holds {secret}: {text}");
    }
}

fn export(k: &Kernel) -> String {
    let mut out = Vec::new();
    k.traces().export_jsonl(&mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn explain_and_the_export_hold_no_raw_arguments_denials_included() {
    let k = kernel();
    let p = analyst();
    let token = k
        .get_token(&CapabilityRequest::new(LIST, "list"), &p, "")
        .unwrap();
    let ok = k
        .invoke_with(InvokeRequest::new(&token, &p).with_args(secret_args()))
        .await
        .unwrap();
    let no_tenant = Principal::new(&p.principal_id).with_roles(["reader"]);
    let denied = k
        .invoke_with(InvokeRequest::new(&token, &no_tenant).with_args(secret_args()))
        .await
        .unwrap_err();
    assert_eq!(denied.kind(), "policy_denied");
    let traces = k.traces().list_all();
    assert_eq!(traces.len(), 2);
    assert_eq!(traces[1].outcome, TraceOutcome::Denied);
    for t in &traces {
        assert_clean("an audit record", &format!("{t:?}"));
        // The keys are kept, so the record still says what was asked.
        assert!(t.args.contains_key("email") && t.args.contains_key("note"));
    }
    assert_clean(
        "explain",
        &format!("{:?}", k.explain(&ok.action_id).unwrap()),
    );
    assert_clean("the JSON Lines export", &export(&k));
}

#[test]
fn a_refused_grant_is_audited() {
    let k = kernel();
    let p = analyst();
    let err = k
        .grant_capability(&CapabilityRequest::new(UPDATE, "update"), &p, "")
        .unwrap_err();
    assert_eq!(err.denial_category(), Some(DenialCategory::MissingRole));
    let t = k.traces().list_all().pop().expect("the refusal is audited");
    assert_eq!(t.outcome, TraceOutcome::Denied);
    assert_eq!(t.principal_id, p.principal_id);
    assert_eq!(t.capability_id, UPDATE);
    assert_eq!(t.denial_category, Some(DenialCategory::MissingRole));
    assert_eq!(t.token_id, "", "no token was issued");
}

#[tokio::test]
async fn a_forged_token_is_audited_with_its_ids_scrubbed() {
    let k = kernel();
    let p = analyst();
    let mut forged = k
        .get_token(&CapabilityRequest::new(LIST, "list"), &p, "")
        .unwrap();
    forged.token_id = format!("tok-{EMAIL}");
    forged.capability_id = format!("crm.{PASSWORD}");
    let err = k
        .invoke_with(InvokeRequest::new(&forged, &p).with_args(secret_args()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "token_invalid");
    let t = k.traces().list_all().pop().expect("the refusal is audited");
    assert_eq!(t.outcome, TraceOutcome::Denied);
    assert_eq!(t.token_id, INVALID_ID);
    assert_eq!(t.capability_id, "_OTHER");
    assert_clean("the record of a forged token", &format!("{t:?}"));
    assert_clean("the error", &err.to_string());
}

#[tokio::test]
async fn driver_error_text_is_redacted_passwords_in_json_included() {
    let k = kernel();
    let p = analyst();
    let token = k
        .get_token(&CapabilityRequest::new(BROKEN, "b"), &p, "")
        .unwrap();
    let err = k
        .invoke_with(InvokeRequest::new(&token, &p).with_args(secret_args()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "driver_error");
    assert_clean("the driver error", &err.to_string());
    let t = k.traces().list_all().pop().unwrap();
    assert_eq!(t.outcome, TraceOutcome::DriverError);
    assert_clean("the audit record", &format!("{t:?}"));
}

#[test]
fn parse_errors_never_quote_caller_values() {
    let err = args(json!(format!("call {EMAIL} with {PASSWORD}"))).unwrap_err();
    assert_eq!(err.kind(), "invalid_argument");
    assert_clean("args()", &err.to_string());
    for query in [
        json!({"limit": EMAIL}),
        json!({"offset": PASSWORD}),
        json!({"fields": CARD}),
        json!({EMAIL: 1}),
    ] {
        let err = ExpandQuery::from_json(&query).unwrap_err();
        assert_eq!(err.kind(), "invalid_argument");
        assert_clean("an expand query error", &err.to_string());
    }
}
