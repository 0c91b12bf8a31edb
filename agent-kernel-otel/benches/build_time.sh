#!/usr/bin/env bash
# Clean release build time of a tiny crate using #[kernel_span] against one
# using tracing's #[instrument] (tracing-attributes), same run, same machine.
# Builds in a temporary directory; nothing fetched is kept in the repo.
# Usage: agent-kernel-otel/benches/build_time.sh   (from anywhere; needs the crates in ~/.cargo)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

make_crate() { # name, dependency line, source
  mkdir -p "$WORK/$1/src"
  cat > "$WORK/$1/Cargo.toml" <<TOML
[package]
name = "$1"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
$2

[workspace]
TOML
  printf '%s\n' "$3" > "$WORK/$1/src/lib.rs"
}

make_crate tiny_kernel_span "agent-kernel-otel = { path = \"$ROOT/agent-kernel-otel\", features = [\"otel\"] }" '
use agent_kernel_otel::kernel_span;
#[kernel_span(name = "tiny.work", attrs(n))]
pub fn work(n: u32) -> Result<u32, std::io::Error> { Ok(n + 1) }
#[kernel_span(name = "tiny.later")]
pub async fn later(n: u32) -> u32 { n }'

make_crate tiny_kernel_span_off "agent-kernel-otel = { path = \"$ROOT/agent-kernel-otel\" }" '
use agent_kernel_otel::kernel_span;
#[kernel_span(name = "tiny.work", attrs(n))]
pub fn work(n: u32) -> Result<u32, std::io::Error> { Ok(n + 1) }
#[kernel_span(name = "tiny.later")]
pub async fn later(n: u32) -> u32 { n }'

make_crate tiny_tracing 'tracing = "0.1"' '
#[tracing::instrument(name = "tiny.work", skip_all, fields(n = n), err)]
pub fn work(n: u32) -> Result<u32, std::io::Error> { Ok(n + 1) }
#[tracing::instrument(name = "tiny.later", skip_all)]
pub async fn later(n: u32) -> u32 { n }'

for c in tiny_kernel_span tiny_kernel_span_off tiny_tracing; do
  ( cd "$WORK/$c" && cargo fetch --quiet 2>/dev/null || cargo generate-lockfile --offline --quiet )
done
printf '| crate | clean release build (s) |\n|---|---|\n'
for round in 1 2; do
  for c in tiny_kernel_span tiny_kernel_span_off tiny_tracing; do
    rm -rf "$WORK/$c/target"
    start=$(date +%s.%N)
    ( cd "$WORK/$c" && CARGO_TARGET_DIR="$WORK/$c/target" cargo build --release --offline --quiet )
    end=$(date +%s.%N)
    printf '| %s (round %s) | %.1f |\n' "$c" "$round" "$(echo "$end - $start" | bc)"
  done
done
