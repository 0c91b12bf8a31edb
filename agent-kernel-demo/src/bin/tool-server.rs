//! `tool-server`: the billing collections tool over HTTP, for the demo's
//! two-process trace.
//!
//! Prints its base URL as the first line of stdout, extracts the W3C
//! `traceparent` of every request and records a SERVER span under it
//! (exported as the `OTEL_*` variables say, e.g. OTLP to a collector), and
//! stops on Ctrl-C or SIGTERM, flushing its spans.
//!
//! ```sh
//! cargo run --release -p agent-kernel-demo --bin tool-server -- --addr 127.0.0.1:8081
//! cargo run --release -p agent-kernel-demo -- --remote-tool http://127.0.0.1:8081
//! ```
#![forbid(unsafe_code)]

use std::process::ExitCode;

use agent_kernel_demo::cli::{self, Command, ToolServerArgs};
use agent_kernel_demo::data::{self, BillingData};
use agent_kernel_demo::tool_server::{self, OVERDUE_PATH};
use agent_kernel_demo::{say, telemetry};
use anyhow::Context as _;

fn main() -> ExitCode {
    let args = match cli::parse_tool_server(std::env::args_os().skip(1)) {
        Ok(Command::Run(args)) => args,
        Ok(Command::Help) => {
            print!("{}", cli::TOOL_SERVER_HELP);
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            say!("tool-server {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("tool-server: {e}\nTry 'tool-server --help'.");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tool-server: error: {e:#}");
            ExitCode::from(agent_kernel_demo::exit_code_for(&e))
        }
    }
}

fn run(args: &ToolServerArgs) -> anyhow::Result<()> {
    let path = args.data.clone().unwrap_or_else(data::default_data_path);
    let data = BillingData::load(&path)?;
    // Spans: OTLP when an endpoint is configured, else console trees on stdout
    // (after the URL line, which is printed before any request is served).
    let telemetry = telemetry::init_from_env("billing-tool-server", None, false)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the Tokio runtime")?;
    let result = runtime.block_on(async {
        let server = tool_server::spawn(args.addr, data.clone())
            .await
            .map_err(|e| {
                agent_kernel_demo::InputError::new(format!("cannot listen on {}: {e}", args.addr))
            })?;
        // The first line of stdout: the base URL, for scripts and tests.
        say!("{}", server.base_url);
        eprintln!(
            "tool-server: serving GET {OVERDUE_PATH} ({} invoices from {}); spans → {}; Ctrl-C to stop",
            data.len(),
            data.path().display(),
            if telemetry.traces.is_empty() { "none".to_owned() } else { telemetry.traces.join(", ") }
        );
        agent_kernel_demo::shutdown_signal().await;
        eprintln!("tool-server: stopping");
        server.stop().await
    });
    drop(runtime);
    telemetry.shutdown();
    result
}
