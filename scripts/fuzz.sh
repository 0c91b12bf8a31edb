#!/usr/bin/env bash
# Builds the fuzz targets (fuzz/, cargo-fuzz + libFuzzer) and runs each one for
# a bounded time, one after the other. Exits non-zero if any target crashes
# (a panic, a failed invariant, a timeout, or running out of memory).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
#   SECONDS_PER_TARGET  default 60
#   TARGET              default: every target (`cargo fuzz list`)
#   FUZZ_SANITIZER      address (default) or none (faster; the kernel has no unsafe code)
#
# Needs `cargo install cargo-fuzz`. cargo fuzz passes nightly-only flags
# (-Zsanitizer=...) to rustc; only the stable toolchain is installed here, so
# RUSTC_BOOTSTRAP=1 lets stable accept them.
#
# The committed seeds in fuzz/corpus/<target>/ are read, never written: what
# libFuzzer discovers goes to fuzz/target/corpus-work/<target>/ (git-ignored).
# A crash input lands in fuzz/artifacts/<target>/; to keep it as a regression,
# copy it to fuzz/regressions/<target>/<what-it-caught> (replayed by
# agent-kernel/tests/fuzz_regressions.rs, or for macro_args by
# `cargo test --manifest-path fuzz/Cargo.toml --lib`), fix the bug, and add a
# small seed to fuzz/corpus/<target>/ if it reaches new code.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SECONDS_PER_TARGET=${1:-60}
shift || true
SANITIZER=${FUZZ_SANITIZER:-address}
export RUSTC_BOOTSTRAP=1
# cargo fuzz uses fuzz/target; a CARGO_TARGET_DIR from the environment would
# mix its instrumented artifacts with normal builds.
unset CARGO_TARGET_DIR

if ! [[ $SECONDS_PER_TARGET =~ ^[0-9]+$ ]] || ((SECONDS_PER_TARGET < 1)); then
    echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]" >&2
    exit 2
fi
command -v cargo-fuzz >/dev/null \
    || { echo "cargo-fuzz is missing: cargo install cargo-fuzz" >&2; exit 2; }

if (($# > 0)); then
    TARGETS=("$@")
else
    mapfile -t TARGETS < <(cargo fuzz list)
fi

# -a: debug assertions and overflow checks on (an overflow is a crash).
FUZZ_FLAGS=(-a -s "$SANITIZER")

echo "== building ${#TARGETS[@]} fuzz target(s) (sanitizer: $SANITIZER)"
cargo fuzz build "${FUZZ_FLAGS[@]}"

LOGS=fuzz/target/logs
mkdir -p "$LOGS"
failed=()
summary=()
for target in "${TARGETS[@]}"; do
    work=fuzz/target/corpus-work/$target
    mkdir -p "$work" "fuzz/corpus/$target"
    log=$LOGS/$target.log
    echo "== $target: ${SECONDS_PER_TARGET}s"
    # One process, one thread (--jobs 1: no libFuzzer fork mode), so several
    # engineers can share the machine. -timeout: an input taking longer than
    # 10 s is reported as a hang.
    # `shapes` (adversarial output shapes, issue 16) has a time budget per
    # input: 2 s, where a super-linear stage took tens of seconds.
    timeout=10
    if [[ $target == shapes ]]; then
        timeout=2
    fi
    if cargo fuzz run "${FUZZ_FLAGS[@]}" --jobs 1 "$target" "$work" "fuzz/corpus/$target" -- \
        -max_total_time="$SECONDS_PER_TARGET" -timeout="$timeout" -rss_limit_mb=2048 \
        -max_len=8192 -print_final_stats=1 >"$log" 2>&1; then
        result=ok
    else
        result=CRASH
        failed+=("$target")
    fi
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
    cov=$(grep -oE '#[0-9]+.*cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+' || true)
    summary+=("$(printf '%-12s %-6s %12s execs  %s' "$target" "$result" "${execs:-?}" "$cov")")
    if [[ $result == CRASH ]]; then
        grep -E 'panicked at|^==[0-9]+==ERROR|Test unit written|SUMMARY' "$log" | head -20 || true
        echo "   full log: $log"
    fi
done

echo
echo "== summary (${SECONDS_PER_TARGET}s per target)"
printf '%s\n' "${summary[@]}"
if ((${#failed[@]} > 0)); then
    echo "crashed: ${failed[*]} (inputs in fuzz/artifacts/<target>/)" >&2
    exit 1
fi
