//! `agent-kernel-demo`: a billing agent session through the agent kernel,
//! printing the frames, the span trees and a metrics summary.
//!
//! ```sh
//! cargo run --release -p agent-kernel-demo
//! cargo run --release -p agent-kernel-demo -- --invocations 20 --metrics-addr 127.0.0.1:9464 --hold-secs 60
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 cargo run --release -p agent-kernel-demo
//! ```
//! See `--help` for every flag, and `docs/integrations.md` for the backends.
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::time::{Duration, Instant};

use agent_kernel_demo::cli::{self, Command, DemoArgs};
use agent_kernel_demo::data::{self, BillingData};
use agent_kernel_demo::session::{self, Session};
use agent_kernel_demo::tally::Status;
use agent_kernel_demo::telemetry::{self, Telemetry};
use agent_kernel_demo::{durable, instrumentation, say, tool_server};
use anyhow::Context as _;
use serde_json::json;

/// Sessions listed in the summary at most.
const SUMMARY_SESSIONS: usize = 20;

fn main() -> ExitCode {
    let args = match cli::parse_demo(std::env::args_os().skip(1)) {
        Ok(Command::Run(args)) => args,
        Ok(Command::Help) => {
            print!("{}", cli::DEMO_HELP);
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            say!("agent-kernel-demo {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("agent-kernel-demo: {e}\nTry 'agent-kernel-demo --help'.");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("agent-kernel-demo: error: {e:#}");
            ExitCode::from(agent_kernel_demo::exit_code_for(&e))
        }
    }
}

fn run(args: DemoArgs) -> anyhow::Result<()> {
    let path = args.data.clone().unwrap_or_else(data::default_data_path);
    let data = BillingData::load(&path)?;
    // The audit log and revocations live in SQLite. Before anything else (and
    // before telemetry): a kernel revokes a token and is dropped, a new one on
    // the same file must refuse it; the session's kernel is a third.
    let store_dir = durable::store_dir(args.store_dir.as_deref());
    let restart = durable::revoke_then_restart(&store_dir, |stores| {
        // No request reaches the collections tool here.
        session::build_kernel(
            &data,
            "http://127.0.0.1:9",
            args.invocations,
            stores,
            session::TelemetryOptIns::default(),
        )
    })?;
    // Telemetry is installed outside the Tokio runtime: the OTLP exporter
    // runs its own blocking client on its own thread.
    let telemetry = telemetry::init_from_env("agent-kernel-demo", args.metrics_addr, true)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the Tokio runtime")?;
    let result = runtime.block_on(demo(&args, data, &telemetry, &store_dir, &restart));
    drop(runtime);
    telemetry.shutdown();
    result
}

async fn demo(
    args: &DemoArgs,
    data: BillingData,
    telemetry: &Telemetry,
    store_dir: &std::path::Path,
    restart: &durable::RestartCheck,
) -> anyhow::Result<()> {
    // The remote tool: a running tool-server, or one started here.
    let (remote_url, local_server) = match &args.remote_tool {
        Some(url) => (url.clone(), None),
        None => {
            let server = tool_server::spawn(([127, 0, 0, 1], 0).into(), data.clone())
                .await
                .context("cannot start the in-process tool server")?;
            (server.base_url.clone(), Some(server))
        }
    };

    let opt_ins = session::TelemetryOptIns {
        genai_conventions: args.genai_conventions,
        capture_content: args.capture_content,
    };
    let stores = durable::open(store_dir).context("cannot open the audit store")?;
    let kernel = session::build_kernel(&data, &remote_url, args.invocations, stores, opt_ins)
        .context("cannot build the kernel")?;
    let instrumentation = instrumentation::instrument(&kernel);

    say!("agent-kernel demo: a billing assistant working through the capability kernel");
    say!(
        "  data       {} ({} invoices)",
        data.path().display(),
        data.len()
    );
    say!(
        "  remote     {remote_url} ({})",
        if local_server.is_some() {
            "tool server started in-process"
        } else {
            "--remote-tool"
        }
    );
    say!(
        "  audit      {} (SQLite, acknowledged writes)",
        store_dir.join(durable::DB_FILE).display()
    );
    say!(
        "  restart    token {} revoked, kernel rebuilt on the same file: refused ({})",
        restart.token_id,
        restart.refused_with
    );
    say!("  traces  →  {}", list_or_none(&telemetry.traces));
    say!("  metrics →  {}", list_or_none(&telemetry.metrics));
    if let Some(url) = &telemetry.metrics_url {
        say!("METRICS {url}");
    }
    if !instrumentation::WIRED {
        say!(
            "  note: kernel instrumentation is not wired in this build; no kernel spans or metrics"
        );
    }
    say!(
        "  budget     {} tokens per session; {} repetition(s)",
        kernel.budget().config().total_budget,
        args.invocations
    );

    let started = Instant::now();
    let mut session = Session::new(
        &kernel,
        &data,
        telemetry.console.clone(),
        remote_url.clone(),
    );
    let progress_every = (args.invocations / 10).max(1);
    for n in 1..=args.invocations {
        let loud = n == 1 || args.verbose;
        session
            .run(n, loud)
            .await
            .with_context(|| format!("repetition {n} of the session"))?;
        if !loud && (n % progress_every == 0 || n == args.invocations) {
            say!("repetition {n}/{} done", args.invocations);
        }
    }
    let elapsed = started.elapsed();

    if let Some(server) = local_server {
        server
            .stop()
            .await
            .context("the in-process tool server failed")?;
    }
    telemetry.flush();
    let mut summary = summary(args, &kernel, &session, telemetry, &remote_url, elapsed);
    summary["audit_store"] = json!({
        "path": store_dir.join(durable::DB_FILE),
        "records": kernel.audit_log().map(|log| log.count()).transpose()?,
        "revoked_token_after_restart": restart.refused_with,
    });
    print_summary(&session, &summary);

    if args.hold_secs > 0 {
        match &telemetry.metrics_url {
            Some(url) => eprintln!(
                "holding for {}s: {url} stays up (Ctrl-C or SIGTERM to stop early)",
                args.hold_secs
            ),
            None => eprintln!(
                "holding for {}s (no /metrics endpoint: pass --metrics-addr)",
                args.hold_secs
            ),
        }
    }
    // The machine-readable line is the last line of stdout.
    say!("DEMO_SUMMARY {summary}");
    if args.hold_secs > 0 {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(args.hold_secs)) => {}
            () = agent_kernel_demo::shutdown_signal() => eprintln!("stopping early"),
        }
    }
    drop(instrumentation);
    Ok(())
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

fn summary(
    args: &DemoArgs,
    kernel: &agent_kernel::Kernel,
    session: &Session<'_>,
    telemetry: &Telemetry,
    remote_url: &str,
    elapsed: Duration,
) -> serde_json::Value {
    let tally = session.tally();
    let stats = telemetry.stats();
    let sessions: Vec<_> = session::sessions(kernel, SUMMARY_SESSIONS)
        .into_iter()
        .map(|u| json!({"session_id": u.session_id, "used": u.used, "total": u.total}))
        .collect();
    json!({
        "repetitions": args.invocations,
        "pid": std::process::id(),
        "instrumented": instrumentation::WIRED,
        "elapsed_ms": elapsed.as_secs_f64() * 1e3,
        "metrics_url": telemetry.metrics_url,
        "remote_tool": remote_url,
        "remote_tool_in_process": args.remote_tool.is_none(),
        "session_budget": kernel.budget().config().total_budget,
        "totals": {
            "success": tally.total(Status::Success),
            "denied": tally.total(Status::Denied),
            "error": tally.total(Status::Error),
        },
        "invocations": tally.invocations(),
        "policy_denials": tally.denials(),
        "sessions": sessions,
        "live_sessions": kernel.budget().sessions().len(),
        "actions": session.notable(),
        "spans": {
            "queued": stats.spans_queued,
            "exported": stats.spans_exported,
            "failed": stats.spans_failed,
        },
    })
}

fn print_summary(session: &Session<'_>, summary: &serde_json::Value) {
    let tally = session.tally();
    say!();
    say!("── metrics summary {}", "─".repeat(60));
    say!(
        "   invocations: {} success, {} denied, {} error",
        tally.total(Status::Success),
        tally.total(Status::Denied),
        tally.total(Status::Error)
    );
    say!(
        "   {:<28} {:<12} {:<8} {:>6}",
        "capability_id",
        "safety_class",
        "status",
        "count"
    );
    for row in tally.invocations() {
        say!(
            "   {:<28} {:<12} {:<8} {:>6}",
            row.capability_id,
            row.safety_class,
            row.status.as_str(),
            row.count
        );
    }
    say!("   policy denials:");
    say!(
        "   {:<28} {:<27} {:<7} {:>6}",
        "capability_id",
        "reason_category",
        "stage",
        "count"
    );
    for row in tally.denials() {
        say!(
            "   {:<28} {:<27} {:<7} {:>6}",
            row.capability_id,
            row.reason_category,
            match row.stage {
                agent_kernel_demo::tally::Stage::Grant => "grant",
                agent_kernel_demo::tally::Stage::Invoke => "invoke",
            },
            row.count
        );
    }
    if let Some(sessions) = summary["sessions"].as_array() {
        say!("   session budgets (agent_kernel.budget_consumed):");
        for s in sessions {
            say!(
                "     {:<12} {} of {} tokens",
                s["session_id"].as_str().unwrap_or_default(),
                s["used"],
                s["total"]
            );
        }
    }
    let spans = &summary["spans"];
    if spans["queued"].as_u64().unwrap_or(0) > 0 {
        say!(
            "   OTLP spans: {} queued, {} exported, {} failed",
            spans["queued"],
            spans["exported"],
            spans["failed"]
        );
    }
}
