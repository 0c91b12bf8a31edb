//! Command-line flags of both binaries: a small parser with clear errors
//! (`--flag value` and `--flag=value`; `-h`/`--help`, `-V`/`--version`).

use std::ffi::OsString;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use crate::InputError;

/// The most repetitions `--invocations` accepts.
pub const MAX_INVOCATIONS: u32 = 10_000;

/// The longest `--hold-secs` accepted (one day).
pub const MAX_HOLD_SECS: u64 = 86_400;

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<T> {
    /// Run with these options.
    Run(T),
    /// Print the help text and exit 0.
    Help,
    /// Print the version and exit 0.
    Version,
}

/// Options of `agent-kernel-demo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoArgs {
    /// `--invocations N`: run the session N times (default 1).
    pub invocations: u32,
    /// `--metrics-addr HOST:PORT`: serve Prometheus `/metrics` there.
    pub metrics_addr: Option<SocketAddr>,
    /// `--hold-secs S`: keep serving for S seconds after the session.
    pub hold_secs: u64,
    /// `--data PATH`: the billing invoices (default: the repository's `data/`).
    pub data: Option<PathBuf>,
    /// `--remote-tool URL`: use a running `tool-server` instead of the
    /// in-process one.
    pub remote_tool: Option<String>,
    /// `--verbose`: print every repetition in full, not only the first.
    pub verbose: bool,
    /// `--store-dir PATH`: where the SQLite audit log and revocations live
    /// (default: a new directory under the system temp dir, printed).
    pub store_dir: Option<PathBuf>,
    /// `--genai-conventions`: the kernel's OpenTelemetry GenAI naming
    /// (`KernelBuilder::genai_conventions`); without the flag the kernel
    /// reads `OTEL_SEMCONV_STABILITY_OPT_IN`.
    pub genai_conventions: bool,
    /// `--capture-content`: the tools' redacted arguments and results on
    /// the invoke spans (`KernelBuilder::capture_content`); without the flag
    /// the kernel reads `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`.
    pub capture_content: bool,
}

impl Default for DemoArgs {
    fn default() -> Self {
        Self {
            invocations: 1,
            metrics_addr: None,
            hold_secs: 0,
            data: None,
            remote_tool: None,
            verbose: false,
            store_dir: None,
            genai_conventions: false,
            capture_content: false,
        }
    }
}

/// The help text of `agent-kernel-demo`.
pub const DEMO_HELP: &str = "\
agent-kernel-demo: a billing agent session through the agent kernel, with
OpenTelemetry spans and metrics.

USAGE:
    agent-kernel-demo [OPTIONS]

OPTIONS:
    --invocations N         run the session N times (1..=10000) [default: 1]
    --metrics-addr HOST:PORT
                            serve Prometheus /metrics there (port 0: any free port;
                            the address is printed as `METRICS http://HOST:PORT/metrics`)
    --hold-secs S           keep serving /metrics for S seconds after the session
    --data PATH             the billing invoices
                            [default: <repo>/data/billing_invoices.json]
    --remote-tool URL       base URL of a running `tool-server` (else one is started
                            in-process on 127.0.0.1)
    --verbose               print every repetition in full (default: only the first)
    --store-dir PATH        where the SQLite audit log and revocations live
                            [default: a new directory under the temp dir, printed]
    --genai-conventions     name invoke spans `execute_tool <capability>` and record the
                            gen_ai.execute_tool.duration histogram (OpenTelemetry GenAI
                            conventions; else as OTEL_SEMCONV_STABILITY_OPT_IN says)
    --capture-content       record each tool call's arguments and result (the frame the model
                            receives), redacted, on its invoke span (else as
                            OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT says)
    -h, --help              print this help
    -V, --version           print the version

ENVIRONMENT:
    OTEL_EXPORTER_OTLP_ENDPOINT   send spans and metrics over OTLP/HTTP as well
                                  (then the console span trees are off unless
                                  OTEL_TRACES_EXPORTER lists `console`)
    OTEL_TRACES_EXPORTER, OTEL_METRICS_EXPORTER, OTEL_SERVICE_NAME,
    OTEL_RESOURCE_ATTRIBUTES, ...  the standard OpenTelemetry variables
    OTEL_SEMCONV_STABILITY_OPT_IN `gen_ai_latest_experimental` in the list: as --genai-conventions
    OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT
                                  `true`, `span_only` or `span_and_event`: as --capture-content
    AGENT_KERNEL_SECRET           the token HMAC secret (else a random one per run)

The last line of output is `DEMO_SUMMARY {json}`: what the session did, for scripts.
Exit codes: 0 success, 1 failure, 2 bad input (flag, data file, OTEL_* variable).
";

/// Options of `tool-server`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolServerArgs {
    /// `--addr HOST:PORT` to listen on (default `127.0.0.1:0`).
    pub addr: SocketAddr,
    /// `--data PATH`: the billing invoices.
    pub data: Option<PathBuf>,
}

impl Default for ToolServerArgs {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            data: None,
        }
    }
}

/// The help text of `tool-server`.
pub const TOOL_SERVER_HELP: &str = "\
tool-server: the billing collections tool over HTTP, for the agent-kernel demo's
two-process trace. Extracts the W3C `traceparent` of each request and records its
own SERVER span (exported as the OTEL_* variables say).

USAGE:
    tool-server [OPTIONS]

OPTIONS:
    --addr HOST:PORT    listen address [default: 127.0.0.1:0, any free port]
    --data PATH         the billing invoices
                        [default: <repo>/data/billing_invoices.json]
    -h, --help          print this help
    -V, --version       print the version

The first line of stdout is the base URL, e.g. `http://127.0.0.1:41234`; pass it to
`agent-kernel-demo --remote-tool`. Stops on Ctrl-C or SIGTERM, flushing its spans.
Routes: GET /tools/overdue_reminders?min_days=N, GET /healthz.
";

/// Splits `--name=value` / `--name value` pairs, in order.
struct Flags {
    args: std::vec::IntoIter<String>,
}

impl Flags {
    fn new(args: impl IntoIterator<Item = OsString>) -> Result<Self, InputError> {
        let args = args
            .into_iter()
            .map(|a| {
                a.into_string()
                    .map_err(|bad| InputError::new(format!("argument {bad:?} is not valid UTF-8")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            args: args.into_iter(),
        })
    }

    /// The next flag and its inline value (`--name=value`), if any.
    fn next_flag(&mut self) -> Result<Option<(String, Option<String>)>, InputError> {
        let Some(arg) = self.args.next() else {
            return Ok(None);
        };
        if !arg.starts_with('-') || arg == "-" {
            return Err(InputError::new(format!(
                "unexpected argument '{arg}' (this program takes only flags)"
            )));
        }
        Ok(Some(match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => {
                (name.to_owned(), Some(value.to_owned()))
            }
            _ => (arg, None),
        }))
    }

    fn value(&mut self, name: &str, inline: Option<String>) -> Result<String, InputError> {
        match inline {
            Some(v) => Ok(v),
            None => match self.args.next() {
                Some(v) if !v.starts_with("--") => Ok(v),
                _ => Err(InputError::new(format!("{name} needs a value"))),
            },
        }
    }
}

fn no_value(name: &str, inline: Option<String>) -> Result<(), InputError> {
    match inline {
        Some(_) => Err(InputError::new(format!("{name} takes no value"))),
        None => Ok(()),
    }
}

fn parse_addr(name: &str, text: &str) -> Result<SocketAddr, InputError> {
    let invalid = |why: String| {
        InputError::new(format!(
            "invalid value '{text}' for {name}: {why} (expected HOST:PORT, e.g. 127.0.0.1:9464)"
        ))
    };
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if !text.contains(':') {
        return Err(invalid("no port".to_owned()));
    }
    let mut addrs = text.to_socket_addrs().map_err(|e| invalid(e.to_string()))?;
    addrs
        .next()
        .ok_or_else(|| invalid("the host resolves to no address".to_owned()))
}

fn parse_number<T>(
    name: &str,
    text: &str,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, InputError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
{
    let out_of = || {
        InputError::new(format!(
            "invalid value '{text}' for {name}: expected an integer from {} to {}",
            range.start(),
            range.end()
        ))
    };
    let n: T = text.trim().parse().map_err(|_| out_of())?;
    if range.contains(&n) {
        Ok(n)
    } else {
        Err(out_of())
    }
}

fn parse_url(name: &str, text: &str) -> Result<String, InputError> {
    let trimmed = text.trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("http://")
        .or_else(|| trimmed.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) => {
            Ok(trimmed.to_owned())
        }
        _ => Err(InputError::new(format!(
            "invalid value '{text}' for {name}: expected an http:// or https:// URL, e.g. http://127.0.0.1:8080"
        ))),
    }
}

fn unknown(name: &str, known: &[&str]) -> InputError {
    let stem = name.trim_start_matches('-');
    let hint = stem
        .get(..3)
        .and_then(|prefix| {
            known
                .iter()
                .find(|k| k.trim_start_matches('-').starts_with(prefix))
        })
        .map(|k| format!("; did you mean {k}?"))
        .unwrap_or_default();
    InputError::new(format!("unknown flag '{name}'{hint}"))
}

/// Parses the arguments of `agent-kernel-demo` (without the program name).
///
/// # Errors
/// [`InputError`] naming the flag and what it expects.
pub fn parse_demo(
    args: impl IntoIterator<Item = OsString>,
) -> Result<Command<DemoArgs>, InputError> {
    const KNOWN: [&str; 9] = [
        "--invocations",
        "--metrics-addr",
        "--hold-secs",
        "--data",
        "--remote-tool",
        "--verbose",
        "--store-dir",
        "--genai-conventions",
        "--capture-content",
    ];
    let mut out = DemoArgs::default();
    let mut flags = Flags::new(args)?;
    while let Some((name, inline)) = flags.next_flag()? {
        match name.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "--invocations" => {
                let v = flags.value(&name, inline)?;
                out.invocations = parse_number(&name, &v, 1..=MAX_INVOCATIONS)?;
            }
            "--metrics-addr" => {
                let v = flags.value(&name, inline)?;
                out.metrics_addr = Some(parse_addr(&name, &v)?);
            }
            "--hold-secs" => {
                let v = flags.value(&name, inline)?;
                out.hold_secs = parse_number(&name, &v, 0..=MAX_HOLD_SECS)?;
            }
            "--data" => out.data = Some(PathBuf::from(flags.value(&name, inline)?)),
            "--remote-tool" => {
                let v = flags.value(&name, inline)?;
                out.remote_tool = Some(parse_url(&name, &v)?);
            }
            "--verbose" => {
                no_value(&name, inline)?;
                out.verbose = true;
            }
            "--store-dir" => out.store_dir = Some(PathBuf::from(flags.value(&name, inline)?)),
            "--genai-conventions" => {
                no_value(&name, inline)?;
                out.genai_conventions = true;
            }
            "--capture-content" => {
                no_value(&name, inline)?;
                out.capture_content = true;
            }
            other => return Err(unknown(other, &KNOWN)),
        }
    }
    Ok(Command::Run(out))
}

/// Parses the arguments of `tool-server` (without the program name).
///
/// # Errors
/// [`InputError`] naming the flag and what it expects.
pub fn parse_tool_server(
    args: impl IntoIterator<Item = OsString>,
) -> Result<Command<ToolServerArgs>, InputError> {
    const KNOWN: [&str; 2] = ["--addr", "--data"];
    let mut out = ToolServerArgs::default();
    let mut flags = Flags::new(args)?;
    while let Some((name, inline)) = flags.next_flag()? {
        match name.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "--addr" => {
                let v = flags.value(&name, inline)?;
                out.addr = parse_addr(&name, &v)?;
            }
            "--data" => out.data = Some(PathBuf::from(flags.value(&name, inline)?)),
            other => return Err(unknown(other, &KNOWN)),
        }
    }
    Ok(Command::Run(out))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn demo(args: &[&str]) -> Result<Command<DemoArgs>, InputError> {
        parse_demo(args.iter().map(OsString::from))
    }

    #[test]
    fn flags_in_both_forms() {
        let Command::Run(a) = demo(&[
            "--invocations",
            "3",
            "--metrics-addr=127.0.0.1:0",
            "--hold-secs",
            "5",
            "--data",
            "/tmp/x.json",
            "--remote-tool=http://127.0.0.1:8080/",
            "--verbose",
            "--genai-conventions",
            "--capture-content",
        ])
        .unwrap() else {
            panic!("not a run");
        };
        assert_eq!(a.invocations, 3);
        assert_eq!(a.metrics_addr, Some("127.0.0.1:0".parse().unwrap()));
        assert_eq!(a.hold_secs, 5);
        assert_eq!(a.data, Some(PathBuf::from("/tmp/x.json")));
        assert_eq!(a.remote_tool.as_deref(), Some("http://127.0.0.1:8080"));
        assert!(a.verbose);
        assert!(a.genai_conventions && a.capture_content);
        assert_eq!(demo(&[]).unwrap(), Command::Run(DemoArgs::default()));
        assert_eq!(demo(&["--invocations", "2", "-h"]).unwrap(), Command::Help);
        assert_eq!(demo(&["-V"]).unwrap(), Command::Version);
        let Command::Run(a) = demo(&["--metrics-addr", "localhost:9464"]).unwrap() else {
            panic!("not a run");
        };
        assert_eq!(a.metrics_addr.unwrap().port(), 9464);
    }

    #[test]
    fn bad_input_is_named() {
        let err = |args: &[&str]| demo(args).unwrap_err().0;
        assert!(err(&["--invocations", "0"]).contains("from 1 to 10000"));
        assert!(err(&["--invocations", "many"]).contains("'many'"));
        assert!(err(&["--invocations"]).contains("needs a value"));
        assert!(err(&["--invocations", "--verbose"]).contains("needs a value"));
        assert!(err(&["--metrics-addr", "9464"]).contains("HOST:PORT"));
        assert!(err(&["--remote-tool", "ftp://x"]).contains("http://"));
        assert!(err(&["--verbose=yes"]).contains("takes no value"));
        assert!(err(&["--capture-content=true"]).contains("takes no value"));
        assert!(err(&["--genai"]).contains("did you mean --genai-conventions?"));
        assert!(err(&["--invocation", "2"]).contains("did you mean --invocations?"));
        assert!(err(&["extra"]).contains("unexpected argument"));
        assert_eq!(err(&["-x"]), "unknown flag '-x'");
        assert!(err(&["--hold-secs", "-1"]).contains("--hold-secs"));
    }

    #[test]
    fn tool_server_flags() {
        let parse = |args: &[&str]| parse_tool_server(args.iter().map(OsString::from));
        let Command::Run(a) = parse(&["--addr", "127.0.0.1:8080"]).unwrap() else {
            panic!("not a run");
        };
        assert_eq!(a.addr.port(), 8080);
        assert_eq!(parse(&[]).unwrap(), Command::Run(ToolServerArgs::default()));
        assert!(
            parse(&["--port", "1"])
                .unwrap_err()
                .0
                .contains("unknown flag")
        );
    }
}
