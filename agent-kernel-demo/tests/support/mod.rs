//! Shared by the demo's integration tests: the binaries, what one repetition
//! of the scripted session must produce, and child processes whose output is
//! read line by line and which are killed when dropped.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

pub const DEMO: &str = env!("CARGO_BIN_EXE_agent-kernel-demo");
pub const TOOL_SERVER: &str = env!("CARGO_BIN_EXE_tool-server");

/// How long one demo run may take.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(180);

pub const LIST: &str = "billing.list_invoices";
pub const SPEND: &str = "billing.summarize_spend";
pub const REMINDERS: &str = "billing.overdue_reminders";
pub const UPDATE: &str = "billing.update_invoice";
pub const VOID: &str = "billing.void_invoice";

/// What one repetition of the scripted session invokes, per (capability,
/// safety_class, status): the five response modes, the pii_reader's table
/// and three budgeted calls on the list (9 success) and the fourth refused
/// for budget (1 denied); one remote reminders call; a spend summary served
/// by the fallback driver (success) and one failing on every driver
/// (error); one granted update; two voids and the third refused by the
/// DESTRUCTIVE rate limit.
pub const PER_REPETITION: [(&str, &str, &str, u64); 8] = [
    (LIST, "READ", "success", 9),
    (LIST, "READ", "denied", 1),
    (REMINDERS, "READ", "success", 1),
    (SPEND, "READ", "success", 1),
    (SPEND, "READ", "error", 1),
    (UPDATE, "WRITE", "success", 1),
    (VOID, "DESTRUCTIVE", "success", 2),
    (VOID, "DESTRUCTIVE", "denied", 1),
];

/// The policy denials of one repetition: (capability, reason_category,
/// stage). `agent_kernel.policy_denials` counts every one of them, at grant
/// and at invoke alike (docs/telemetry.md), labelled by capability and
/// category only.
pub const DENIALS_PER_REPETITION: [(&str, &str, &str, u64); 4] = [
    (LIST, "budget_exhausted", "invoke", 1),
    (UPDATE, "insufficient_justification", "grant", 1),
    (UPDATE, "missing_role", "grant", 1),
    (VOID, "rate_limited", "invoke", 1),
];

pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// A name unique to this run, so runs and tests never see each other's data.
pub fn run_id(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

// ── child processes ─────────────────────────────────────────────────────────

/// A child process whose stdout lines and stderr text are collected; killed
/// on drop.
pub struct Child {
    inner: std::process::Child,
    lines: Receiver<String>,
    seen: Vec<String>,
    stderr: Arc<Mutex<String>>,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
    what: &'static str,
}

impl Child {
    pub fn spawn(what: &'static str, mut command: Command) -> Self {
        // Only what the test sets: no OTEL_* from the surrounding shell.
        for (key, _) in std::env::vars() {
            if key.starts_with("OTEL_") {
                command.env_remove(key);
            }
        }
        command
            .env("AGENT_KERNEL_SECRET", "e2e-demo-secret-0123456789abcdef")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut inner = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let (tx, lines) = mpsc::channel();
        let stdout = inner.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = inner.stderr.take().unwrap();
        let sink = stderr.clone();
        let stderr_reader = std::thread::spawn(move || {
            let mut buf = [0_u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Self {
            inner,
            lines,
            seen: Vec::new(),
            stderr,
            stderr_reader: Some(stderr_reader),
            what,
        }
    }

    /// Every stdout line read so far.
    pub fn stdout(&self) -> String {
        self.seen.join("\n")
    }

    /// Everything written to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.inner.id()
    }

    pub fn context(&self) -> String {
        let tail: Vec<&String> = self.seen.iter().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().map(String::as_str).collect();
        format!(
            "{}: last stdout lines:\n{}\nstderr:\n{}",
            self.what,
            tail.join("\n"),
            self.stderr.lock().unwrap()
        )
    }

    /// The first stdout line (from now) that starts with `prefix`, without it.
    pub fn line_starting(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return rest.to_owned();
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "no line starting with {prefix:?} within {timeout:?}\n{}",
                        self.context()
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.inner.wait().ok();
                    panic!(
                        "{} ended ({status:?}) before printing a line starting with {prefix:?}\n{}",
                        self.what,
                        self.context()
                    )
                }
            }
        }
    }

    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.inner.try_wait().unwrap() {
                // Collect the rest of stdout and stderr (both pipes close at exit).
                while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
                    self.seen.push(line);
                }
                if let Some(reader) = self.stderr_reader.take() {
                    let _ = reader.join();
                }
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not finish within {timeout:?}\n{}",
                self.what,
                self.context()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM (a graceful stop that flushes telemetry), then the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(sent, "cannot send SIGTERM to {}", self.what);
        self.wait(timeout)
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if matches!(self.inner.try_wait(), Ok(None)) {
            let _ = self.inner.kill();
            let _ = self.inner.wait();
        }
    }
}

/// The demo's `DEMO_SUMMARY` line, parsed.
pub fn summary_of(child: &mut Child, timeout: Duration) -> Value {
    let text = child.line_starting("DEMO_SUMMARY ", timeout);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad DEMO_SUMMARY ({e}): {text}"))
}
