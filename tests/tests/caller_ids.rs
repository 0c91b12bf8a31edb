//! Ids are checked before they become telemetry.
//!
//! - Kernel-minted ids a caller hands back (a handle id to `expand`, an action
//!   id to `explain`) are recorded only in the kernel's own shape: a forged id
//!   is recorded as `_INVALID` and refused with `malformed_id`, its text
//!   redacted in the error.
//! - Application-supplied ids (principal, session) follow
//!   `KernelBuilder::caller_ids`: as given, as a keyed pseudonym, or not at
//!   all, on every span that carries them, on the budget gauge's label and on
//!   the audit bridge's spans.
#![cfg(feature = "otel")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod kernel_fixture;

use agent_kernel::bridge::OTelTraceExporter;
use agent_kernel::otel::{instrument_kernel_with, keys as k};
use agent_kernel::*;
use agent_kernel_tests::{Capture, SpanRecord};
use kernel_fixture::*;

const PSEUDONYM_KEY: &[u8] = b"pseudonym-key-of-the-application";
const PRINCIPAL: &str = "alice@example.com";
const SESSION: &str = "session-of-carol@example.com";

fn instrumented(caller_ids: CallerIdRecording) -> (Fixture, Capture, otel::Instrumentation) {
    let fx = Fixture::with(Options {
        caller_ids,
        ..Options::default()
    });
    let cap = Capture::new();
    let hook = instrument_kernel_with(&fx.kernel, cap.telemetry());
    (fx, cap, hook)
}

/// Every attribute value, status description and event attribute of `spans`.
fn exported_text(spans: &[SpanRecord]) -> String {
    format!("{spans:?}")
}

fn forged_handle(fx: &Fixture, token: &CapabilityToken, id: &str) -> Handle {
    let frame = rt()
        .block_on(
            fx.kernel
                .invoke_with(InvokeRequest::new(token, &fx.analyst)),
        )
        .unwrap();
    let mut handle = frame.handle.unwrap();
    handle.handle_id = id.to_owned();
    handle
}

#[test]
fn a_forged_handle_id_is_recorded_as_invalid_and_refused_redacted() {
    let (fx, cap, _hook) = instrumented(CallerIdRecording::AsGiven);
    let token = fx.token(LIST, &fx.analyst);
    for forged in [
        "h-bob@example.com",
        "4111 1111 1111 1111",
        // A kernel id's shape with one upper-case digit: not minted here.
        "0F8FAD5B-d9cb-469f-a165-70867728950e",
    ] {
        let handle = forged_handle(&fx, &token, forged);
        let err = fx
            .kernel
            .expand(&handle, &ExpandQuery::default(), &fx.analyst)
            .unwrap_err();
        assert_eq!(err.kind(), "malformed_id", "{forged}: {err}");
        let message = err.to_string();
        assert!(message.starts_with("malformed handle id"), "{message}");
        assert!(!message.contains("bob@example.com"), "{message}");
        assert!(!message.contains("4111 1111"), "{message}");
    }
    let spans = cap.spans();
    let expands = named(&spans, k::SPAN_EXPAND);
    assert_eq!(expands.len(), 3);
    for span in expands {
        assert_eq!(span.attr(k::HANDLE_ID), Some(INVALID_ID), "{span:?}");
        assert_eq!(span.attr("error.type"), Some("malformed_id"), "{span:?}");
    }
    let text = exported_text(&spans);
    assert!(!text.contains("bob@example.com"), "{text}");
    assert!(!text.contains("4111 1111"), "{text}");
}

#[test]
fn a_genuine_handle_id_is_recorded_as_is() {
    let (fx, cap, _hook) = instrumented(CallerIdRecording::AsGiven);
    let token = fx.token(LIST, &fx.analyst);
    let frame = rt()
        .block_on(
            fx.kernel
                .invoke_with(InvokeRequest::new(&token, &fx.analyst)),
        )
        .unwrap();
    let handle = frame.handle.unwrap();
    fx.kernel
        .expand(&handle, &ExpandQuery::default(), &fx.analyst)
        .unwrap();
    let spans = cap.spans();
    assert_eq!(
        named(&spans, k::SPAN_EXPAND)[0].attr(k::HANDLE_ID),
        Some(handle.handle_id.as_str())
    );
}

#[test]
fn a_forged_action_id_is_recorded_as_invalid_and_refused_redacted() {
    let (fx, cap, _hook) = instrumented(CallerIdRecording::AsGiven);
    let err = fx.kernel.explain("act-bob@example.com").unwrap_err();
    assert_eq!(err.kind(), "malformed_id");
    assert!(!err.to_string().contains("bob@example.com"), "{err}");
    // A well-formed id that names nothing is still `trace_not_found`.
    let unknown = "0f8fad5b-d9cb-469f-a165-70867728950e";
    assert_eq!(
        fx.kernel.explain(unknown).unwrap_err().kind(),
        "trace_not_found"
    );
    let spans = cap.spans();
    let explains = named(&spans, k::SPAN_EXPLAIN);
    assert_eq!(explains[0].attr(k::ACTION_ID), Some(INVALID_ID));
    assert_eq!(explains[1].attr(k::ACTION_ID), Some(unknown));
    assert!(!exported_text(&spans).contains("bob@example.com"));
}

/// Grant, invoke in a session, expand, and the bridge's span of the audit
/// record, for `principal_id` and `session_id` under `recording`; returns
/// what each carrier recorded for the principal and the session.
struct Seen {
    principal: Vec<Option<String>>,
    session: Vec<Option<String>>,
    gauge_labels: Vec<String>,
    text: String,
}

fn run_session(recording: CallerIdRecording) -> Seen {
    let (fx, cap, _hook) = instrumented(recording.clone());
    let alice = Principal::new(PRINCIPAL)
        .with_roles(["reader"])
        .with_attribute("tenant", "acme");
    let token = fx.token(LIST, &alice);
    let frame = rt()
        .block_on(
            fx.kernel
                .invoke_with(InvokeRequest::new(&token, &alice).with_session(SESSION)),
        )
        .unwrap();
    fx.kernel
        .expand(
            frame.handle.as_ref().unwrap(),
            &ExpandQuery::default(),
            &alice,
        )
        .unwrap();
    let record = fx.kernel.explain(&frame.action_id).unwrap();
    OTelTraceExporter::new(cap.tracer_provider())
        .with_caller_ids(fx.kernel.caller_ids().clone())
        .export(&record);
    let spans = cap.spans();
    let principal_carriers = [k::SPAN_GRANT, k::SPAN_INVOKE, k::SPAN_EXPAND];
    let principal: Vec<Option<String>> = spans
        .iter()
        .filter(|s| principal_carriers.contains(&s.name.as_str()))
        .map(|s| s.attr(k::PRINCIPAL_ID).map(str::to_owned))
        .collect();
    // Grant, live invoke, expand, bridged invoke.
    assert_eq!(principal.len(), 4, "{spans:?}");
    let session: Vec<Option<String>> = named(&spans, k::SPAN_INVOKE)
        .iter()
        .map(|s| s.attr(k::SESSION_ID).map(str::to_owned))
        .collect();
    assert_eq!(session.len(), 2, "live and bridged: {spans:?}");
    let gauge_labels = cap
        .points()
        .iter()
        .filter(|p| p.name == k::METRIC_BUDGET_CONSUMED)
        .flat_map(|p| p.labels.iter().map(|(_, v)| v.clone()))
        .collect();
    Seen {
        principal,
        session,
        gauge_labels,
        text: format!("{spans:?} {:?}", cap.points()),
    }
}

#[test]
fn ids_as_given_are_recorded_as_given() {
    let seen = run_session(CallerIdRecording::AsGiven);
    assert!(
        seen.principal
            .iter()
            .all(|p| p.as_deref() == Some(PRINCIPAL))
    );
    assert!(seen.session.iter().all(|s| s.as_deref() == Some(SESSION)));
    assert_eq!(seen.gauge_labels, [SESSION]);
}

#[test]
fn pseudonymised_ids_are_keyed_pseudonyms_everywhere() {
    let key = PseudonymKey::new(PSEUDONYM_KEY).unwrap();
    let seen = run_session(CallerIdRecording::Pseudonymized(key.clone()));
    let principal = key.pseudonym(PRINCIPAL);
    let session = key.pseudonym(SESSION);
    assert!(principal.starts_with(PSEUDONYM_PREFIX));
    assert!(
        seen.principal
            .iter()
            .all(|p| p.as_deref() == Some(principal.as_str())),
        "{:?}",
        seen.principal
    );
    assert!(
        seen.session
            .iter()
            .all(|s| s.as_deref() == Some(session.as_str()))
    );
    assert_eq!(seen.gauge_labels, [session]);
    assert!(!seen.text.contains("alice"), "{}", seen.text);
    assert!(!seen.text.contains("carol"), "{}", seen.text);
}

#[test]
fn omitted_ids_are_recorded_nowhere() {
    let seen = run_session(CallerIdRecording::Omitted);
    assert!(seen.principal.iter().all(Option::is_none));
    assert!(seen.session.iter().all(Option::is_none));
    assert!(seen.gauge_labels.is_empty(), "no per-session series");
    assert!(!seen.text.contains("alice"), "{}", seen.text);
    assert!(!seen.text.contains("carol"), "{}", seen.text);
}

#[test]
fn the_signing_secret_is_refused_as_a_pseudonym_key() {
    let key = PseudonymKey::new(SECRET.as_bytes()).unwrap();
    let err = Kernel::builder(CapabilityRegistry::new())
        .secret(SECRET)
        .caller_ids(CallerIdRecording::Pseudonymized(key))
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), "invalid_config");
    // Through a ready token provider too.
    let key = PseudonymKey::new(SECRET.as_bytes()).unwrap();
    let err = Kernel::builder(CapabilityRegistry::new())
        .token_provider(HmacTokenProvider::new(SECRET).unwrap())
        .caller_ids(CallerIdRecording::Pseudonymized(key))
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), "invalid_config");
    let other = PseudonymKey::new(PSEUDONYM_KEY).unwrap();
    assert!(
        Kernel::builder(CapabilityRegistry::new())
            .secret(SECRET)
            .caller_ids(CallerIdRecording::Pseudonymized(other))
            .build()
            .is_ok()
    );
}
