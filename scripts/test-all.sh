#!/usr/bin/env bash
# Runs every test of the workspace: the README's test command, and CI's.
#
#   0. cargo-nextest, installed (`cargo install cargo-nextest --locked`) when
#      the machine does not have it
#   1. unit, integration and UI tests without features, then with --all-features,
#      then the telemetry suites with `otel` alone (metrics through the plain
#      API path; --all-features takes the pre-bound SDK instrument path)
#   2. doctests (nextest does not run them); the fuzz crate's replay of every
#      fuzz target's stored inputs (its own workspace, so step 1 misses it)
#   3. end-to-end tests against real backends: scripts/backends.sh starts
#      Phoenix and Prometheus (installing them when missing), then every
#      ignored test in a test binary named e2e_* runs with AGENT_KERNEL_E2E=1
#      and the backends' addresses (.e2e/backends.env); the backends are
#      stopped on exit, whatever happens.
#
# Conventions for new tests:
#   - an end-to-end test lives in a file `tests/e2e_<what>.rs` (any crate),
#     is marked #[ignore = "needs backends: run scripts/test-all.sh"], reads
#     PHOENIX_URL / PROMETHEUS_URL / PROMETHEUS_FILE_SD_DIR, and FAILS when a
#     backend is unreachable;
#   - add a step below with `step "name"` and the command.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

STARTED=$SECONDS
step() { printf '\n== [%ss] %s\n' "$((SECONDS - STARTED))" "$*"; }

# A clone needs nothing installed by hand: without cargo-nextest the script
# installs it (a few minutes of compiling, once per machine). cargo finds
# subcommands in $CARGO_HOME/bin; the PATH line makes a custom install root
# work too.
export PATH="${CARGO_INSTALL_ROOT:-${CARGO_HOME:-$HOME/.cargo}}/bin:$PATH"
if ! cargo nextest --version >/dev/null 2>&1; then
    step "installing cargo-nextest (not on this machine)"
    cargo install cargo-nextest --locked
fi

step "tests, default features"
cargo nextest run --workspace

step "tests, all features"
cargo nextest run --workspace --all-features

step "telemetry suites, otel only (the library configuration: no SDK feature)"
cargo nextest run -p agent-kernel-tests -p agent-kernel-otel --features otel -E 'not binary(ui)'

step "feature off: no opentelemetry under agent-kernel; instrument_kernel still compiles and runs"
# The tree is captured first: `cargo tree | grep -q` under pipefail could hide a match (SIGPIPE).
kernel_tree=$(cargo tree -p agent-kernel -e normal)
if grep -q opentelemetry <<<"$kernel_tree"; then
    echo "agent-kernel depends on opentelemetry without the otel feature:" >&2
    grep opentelemetry <<<"$kernel_tree" >&2
    exit 1
fi
# This package alone, so no other workspace member unifies `otel` on.
AGENT_KERNEL_EXPECT_NO_OTEL=1 cargo test -p agent-kernel-tests --test kernel_no_otel

step "doctests, default features"
cargo test --workspace --doc

step "doctests, all features"
cargo test --workspace --doc --all-features

step "fuzz targets: every stored input replayed (fuzz/, its own workspace)"
# The workspace's target directory, so the dependencies both share are built once.
cargo test --manifest-path fuzz/Cargo.toml --lib --target-dir "${CARGO_TARGET_DIR:-target}"

step "soak: 1 000 000 invokes: no leak, every span exported, metrics collected (release)"
# Ignored by default (long); with the feature set applications use (`setup`).
# Asserts live heap bytes and blocks flat after warm-up (a counting
# allocator), spans exported = spans created, nothing dropped; prints VmRSS.
# SOAK_INVOKES lowers the count for a quick run.
cargo test --release -p agent-kernel-tests --features setup --test soak_memory -- --ignored --nocapture

step "end-to-end: build"
# Build before starting the backends, so they do not wait on the compiler.
cargo nextest run --workspace --all-features --no-run

step "end-to-end: start backends"
trap 'bash scripts/backends.sh stop' EXIT
bash scripts/backends.sh start
# shellcheck source=/dev/null
source .e2e/backends.env

step "end-to-end: tests"
AGENT_KERNEL_E2E=1 cargo nextest run --workspace --all-features \
    --run-ignored only -E 'binary(/^e2e_/)' --no-tests=fail

step "all tests passed"
