//! The demo and the tool server as a user runs them, without any backend:
//! flags, exit codes, the console run and its summary, `/metrics` held open,
//! and the tool server's HTTP API and graceful stop.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::*;

const SHORT: Duration = Duration::from_secs(60);

/// Runs `args` to the end; returns (exit code, stdout, stderr).
fn run(bin: &'static str, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = Command::new(bin);
    command.args(args);
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = Child::spawn("program", command);
    let status = child.wait(RUN_TIMEOUT);
    (status.code().unwrap_or(-1), child.stdout(), child.stderr())
}

#[test]
fn help_and_version_exit_zero() {
    let (code, out, _) = run(DEMO, &["--help"], &[]);
    assert_eq!(code, 0);
    for flag in [
        "--invocations",
        "--metrics-addr",
        "--hold-secs",
        "--data",
        "--remote-tool",
    ] {
        assert!(out.contains(flag), "{flag} missing from --help:\n{out}");
    }
    let (code, out, _) = run(DEMO, &["--version"], &[]);
    assert_eq!(code, 0);
    assert!(out.starts_with("agent-kernel-demo "), "{out}");
    let (code, out, _) = run(TOOL_SERVER, &["--help"], &[]);
    assert_eq!(code, 0);
    assert!(out.contains("--addr"), "{out}");
}

#[test]
fn bad_input_exits_two_with_a_clear_message() {
    for (args, env, needle) in [
        (&["--bogus"][..], &[][..], "unknown flag '--bogus'"),
        (&["--invocations", "0"], &[], "--invocations"),
        (&["--invocations", "lots"], &[], "'lots'"),
        (&["--metrics-addr", "nowhere"], &[], "HOST:PORT"),
        (&["--remote-tool", "ftp://x"], &[], "http://"),
        (
            &["--data", "/nonexistent/billing.json"],
            &[],
            "cannot read the billing data",
        ),
        (
            &[],
            &[("OTEL_TRACES_EXPORTER", "zipkin")],
            "OTEL_TRACES_EXPORTER",
        ),
    ] {
        let (code, out, err) = run(DEMO, args, env);
        assert_eq!(
            code, 2,
            "{args:?} {env:?}: exit {code}\nstdout:\n{out}\nstderr:\n{err}"
        );
        assert!(
            err.contains(needle),
            "{args:?}: {needle:?} not in stderr:\n{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    let dir = std::env::temp_dir().join(format!("akd-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.json");
    std::fs::write(&bad, r#"[{"id": "INV-1"}]"#).unwrap();
    let (code, _, err) = run(DEMO, &["--data", bad.to_str().unwrap()], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("INV-1") && err.contains("customer_name"),
        "{err}"
    );
    let (code, _, err) = run(TOOL_SERVER, &["--port", "1"], &[]);
    assert_eq!(code, 2, "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The session's counts as the summary reports them, keyed like the metrics.
fn counts(summary: &Value) -> BTreeMap<(String, String, String), u64> {
    summary["invocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                (
                    r["capability_id"].as_str().unwrap().to_owned(),
                    r["safety_class"].as_str().unwrap().to_owned(),
                    r["status"].as_str().unwrap().to_owned(),
                ),
                r["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn the_audit_trail_is_durable_and_a_revoked_token_stays_refused_after_a_restart() {
    let dir = std::env::temp_dir().join(format!("akd-store-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = dir.to_str().unwrap();
    let mut records = Vec::new();
    for run in 0..2 {
        let mut child = Child::spawn("agent-kernel-demo", {
            let mut c = Command::new(DEMO);
            c.args(["--store-dir", store]);
            c
        });
        let summary = summary_of(&mut child, RUN_TIMEOUT);
        assert!(child.wait(RUN_TIMEOUT).success(), "{}", child.context());
        let out = child.stdout();
        assert!(
            out.contains(&format!("audit      {store}/audit.db")),
            "{out}"
        );
        assert!(
            out.contains("kernel rebuilt on the same file: refused (token_revoked)"),
            "{out}"
        );
        let audit = &summary["audit_store"];
        assert_eq!(
            audit["revoked_token_after_restart"], "token_revoked",
            "run {run}"
        );
        assert_eq!(audit["path"], format!("{store}/audit.db"));
        records.push(audit["records"].as_u64().unwrap());
    }
    // The second run's kernel reads the first run's records too.
    assert!(records[0] > 10, "{records:?}");
    assert!(records[1] > records[0], "{records:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_session_runs_on_the_console_and_counts_what_the_script_says() {
    let mut child = Child::spawn("agent-kernel-demo", {
        let mut c = Command::new(DEMO);
        c.args(["--invocations", "2"]);
        c
    });
    let summary = summary_of(&mut child, RUN_TIMEOUT);
    let status = child.wait(RUN_TIMEOUT);
    assert!(status.success(), "{}", child.context());
    let out = child.stdout();

    let want: BTreeMap<(String, String, String), u64> = PER_REPETITION
        .iter()
        .map(|(c, k, s, n)| (((*c).into(), (*k).into(), (*s).into()), n * 2))
        .collect();
    assert_eq!(counts(&summary), want, "{summary}");
    let denials: BTreeMap<(String, String, String), u64> = summary["policy_denials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                (
                    r["capability_id"].as_str().unwrap().to_owned(),
                    r["reason_category"].as_str().unwrap().to_owned(),
                    r["stage"].as_str().unwrap().to_owned(),
                ),
                r["count"].as_u64().unwrap(),
            )
        })
        .collect();
    let want: BTreeMap<(String, String, String), u64> = DENIALS_PER_REPETITION
        .iter()
        .map(|(c, r, s, n)| (((*c).into(), (*r).into(), (*s).into()), n * 2))
        .collect();
    assert_eq!(denials, want);
    let total = summary["session_budget"].as_u64().unwrap();
    let sessions = summary["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    // Every session ran out: three table answers used the whole budget.
    assert!(sessions.iter().all(|s| s["used"] == total), "{sessions:?}");
    for action in [
        "summary",
        "table",
        "fallback",
        "driver_error",
        "rate_limited",
        "budget_exhausted",
        "remote",
    ] {
        assert!(
            summary["actions"][action]["action_id"].is_string(),
            "{action}: {summary}"
        );
    }
    assert_eq!(summary["actions"]["rate_limited"]["outcome"], "denied");
    assert_eq!(
        summary["actions"]["driver_error"]["outcome"],
        "driver_error"
    );

    // What a person sees: every step, PII redacted, nothing personal leaked.
    for needle in [
        "mode=summary",
        "mode=table",
        "mode=handle_only",
        "mode=raw",
        "raw mode requires admin",
        "[REDACTED]",
        "category=missing_role",
        "category=insufficient_justification",
        "category=rate_limited",
        "category=budget_exhausted",
        "kind=driver_error",
        "served by 'billing'",
        "escalated from raw to table",
        "explain(",
        "metrics summary",
    ] {
        assert!(out.contains(needle), "{needle:?} not in the output:\n{out}");
    }
    assert!(
        !out.contains("@example.com"),
        "an e-mail address reached the output:\n{out}"
    );
    assert!(out.lines().last().unwrap().starts_with("DEMO_SUMMARY {"));
    assert!(out.contains("repetition 2/2 done"), "{out}");
}

#[test]
fn metrics_endpoint_is_held_open_after_the_session() {
    let mut child = Child::spawn("agent-kernel-demo", {
        let mut c = Command::new(DEMO);
        c.args(["--metrics-addr", "127.0.0.1:0", "--hold-secs", "120"])
            .env("OTEL_TRACES_EXPORTER", "none");
        c
    });
    let url = child.line_starting("METRICS ", SHORT);
    let summary = summary_of(&mut child, RUN_TIMEOUT);
    assert_eq!(summary["metrics_url"], url.as_str());
    // The session is over; the endpoint still answers.
    let body = http().get(&url).send().unwrap();
    assert!(body.status().is_success());
    let text = body.text().unwrap();
    if summary["instrumented"] == true {
        assert!(text.contains("agent_kernel_invocations_total"), "{text}");
    }
    assert!(child.pid() > 0);
    drop(child); // killed: it would hold for two minutes
}

#[test]
fn tool_server_serves_reminders_and_stops_gracefully() {
    let mut server = Child::spawn("tool-server", {
        let mut c = Command::new(TOOL_SERVER);
        c.env("OTEL_TRACES_EXPORTER", "none");
        c
    });
    let rest = server.line_starting("http://", SHORT);
    let base = format!("http://{rest}");
    let client = http();
    let rows: Value = client
        .get(format!("{base}/tools/overdue_reminders?min_days=300"))
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .send()
        .unwrap()
        .json()
        .unwrap();
    let rows = rows.as_array().unwrap();
    assert!(!rows.is_empty());
    let mut last = i64::MAX;
    for row in rows {
        let days = row["days_overdue"].as_i64().unwrap();
        assert!(
            days >= 300 && days <= last,
            "sorted, most overdue first: {row}"
        );
        last = days;
        assert!(
            row["reminder"]
                .as_str()
                .unwrap()
                .contains(row["email"].as_str().unwrap())
        );
    }
    let bad = client
        .get(format!("{base}/tools/overdue_reminders?min_days=soon"))
        .send()
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    assert_eq!(
        client
            .get(format!("{base}/healthz"))
            .send()
            .unwrap()
            .text()
            .unwrap(),
        "ok\n"
    );
    let status = server.terminate(SHORT);
    assert!(status.success(), "{}", server.context());
}
