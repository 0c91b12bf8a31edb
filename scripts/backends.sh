#!/usr/bin/env bash
# Real telemetry backends for the end-to-end tests, on 127.0.0.1, with
# throw-away data under .e2e/:
#   Arize Phoenix  (traces over OTLP/HTTP; REST API to read spans back)
#   Prometheus     (scrapes the targets listed in a file_sd JSON file)
#
# Usage: scripts/backends.sh start|stop|status|install
#   start    install what is missing, start both, wait until ready; on
#            failure say which backend failed and why, stop all, exit 1
#   stop     stop what `start` started (safe to call twice)
#   status   show what runs; exit 1 if a backend is down
#   install  only install (Debian package `prometheus`; `arize-phoenix` into .venv-phoenix)
#
# Environment (defaults in brackets):
#   E2E_DIR                    data, logs, pid files           [<repo>/.e2e]
#   PHOENIX_PORT               Phoenix HTTP: UI, REST, OTLP/HTTP [6006]
#   PHOENIX_GRPC_PORT          Phoenix OTLP/gRPC                [4317]
#   PHOENIX_VERSION            arize-phoenix version to install [20.26.1]
#   PROMETHEUS_PORT            Prometheus HTTP API              [9090]
#   PROMETHEUS_SCRAPE_INTERVAL scrape interval                  [1s]
#   PROMETHEUS_TARGETS         host:port list to scrape from the start (job "e2e") []
#   BACKENDS_TIMEOUT           seconds to wait for readiness    [120]
#
# After `start`, $E2E_DIR/backends.env holds, ready to `source`:
#   PHOENIX_URL                http://127.0.0.1:6006 (REST: /v1/projects/{name}/spans)
#   PHOENIX_OTLP_ENDPOINT      http://127.0.0.1:6006 (OTLP base; /v1/traces appended)
#   PROMETHEUS_URL             http://127.0.0.1:9090 (PromQL: /api/v1/query)
#   PROMETHEUS_FILE_SD_DIR     directory of file_sd JSON files Prometheus re-reads
#                              within a second; each test writes its own
#                              <dir>/<name>.json (write a temp file, then rename) as
#                              [{"targets": ["127.0.0.1:PORT"], "labels": {"e2e_run": "..."}}]
#                              and removes it when done
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
E2E_DIR="${E2E_DIR:-$REPO/.e2e}"
HOST=127.0.0.1
PHOENIX_PORT="${PHOENIX_PORT:-6006}"
PHOENIX_GRPC_PORT="${PHOENIX_GRPC_PORT:-4317}"
PHOENIX_VERSION="${PHOENIX_VERSION:-20.26.1}"
PHOENIX_VENV="$REPO/.venv-phoenix"
PROMETHEUS_PORT="${PROMETHEUS_PORT:-9090}"
PROMETHEUS_SCRAPE_INTERVAL="${PROMETHEUS_SCRAPE_INTERVAL:-1s}"
PROMETHEUS_TARGETS="${PROMETHEUS_TARGETS:-}"
BACKENDS_TIMEOUT="${BACKENDS_TIMEOUT:-120}"

PHOENIX_URL="http://$HOST:$PHOENIX_PORT"
PROMETHEUS_URL="http://$HOST:$PROMETHEUS_PORT"
FILE_SD_DIR="$E2E_DIR/prometheus/targets"

log() { printf '[backends] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- install
install_prometheus() {
    command -v prometheus >/dev/null && return 0
    log "installing Debian package prometheus"
    local t0=$SECONDS
    export DEBIAN_FRONTEND=noninteractive
    # Keep the package's init script from starting a system-wide daemon.
    local own_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        own_policy=1
    fi
    if ! apt-cache show prometheus >/dev/null 2>&1; then
        apt-get update -qq
    fi
    local rc=0
    apt-get install -y -qq --no-install-recommends prometheus >"$E2E_DIR/apt-prometheus.log" 2>&1 || rc=$?
    [[ $own_policy == 1 ]] && rm -f /usr/sbin/policy-rc.d
    if [[ $rc != 0 ]] || ! command -v prometheus >/dev/null; then
        tail -n 20 "$E2E_DIR/apt-prometheus.log" >&2 || true
        die "prometheus: apt-get install failed (log: $E2E_DIR/apt-prometheus.log)"
    fi
    log "prometheus installed in $((SECONDS - t0))s"
}

install_phoenix() {
    local marker="$PHOENIX_VENV/.installed-arize-phoenix-$PHOENIX_VERSION"
    [[ -x "$PHOENIX_VENV/bin/phoenix" && -e "$marker" ]] && return 0
    log "installing arize-phoenix==$PHOENIX_VERSION into $PHOENIX_VENV"
    local t0=$SECONDS
    [[ -x "$PHOENIX_VENV/bin/pip" ]] || python3 -m venv "$PHOENIX_VENV" \
        || die "phoenix: python3 -m venv failed"
    if ! "$PHOENIX_VENV/bin/pip" install -q --disable-pip-version-check \
            "arize-phoenix==$PHOENIX_VERSION" >"$E2E_DIR/pip-phoenix.log" 2>&1; then
        tail -n 20 "$E2E_DIR/pip-phoenix.log" >&2 || true
        die "phoenix: pip install failed (log: $E2E_DIR/pip-phoenix.log)"
    fi
    touch "$marker"
    log "phoenix installed in $((SECONDS - t0))s"
}

# ---------------------------------------------------------------- helpers
pid_alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

port_taken() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# wait_ready NAME URL PIDFILE LOGFILE: poll URL until it answers 2xx.
wait_ready() {
    local name=$1 url=$2 pidfile=$3 logfile=$4 t0=$SECONDS
    while (( SECONDS - t0 < BACKENDS_TIMEOUT )); do
        if curl -sf -o /dev/null --max-time 2 "$url"; then
            log "$name ready at $url after $((SECONDS - t0))s"
            return 0
        fi
        if ! pid_alive "$pidfile"; then
            log "$name exited during start-up; last lines of $logfile:"
            tail -n 30 "$logfile" >&2 || true
            return 1
        fi
        sleep 0.5
    done
    log "$name not ready at $url within ${BACKENDS_TIMEOUT}s; last lines of $logfile:"
    tail -n 30 "$logfile" >&2 || true
    return 1
}

write_targets() {
    local json="[" sep="" target
    for target in ${PROMETHEUS_TARGETS//,/ }; do
        json+="$sep{\"targets\": [\"$target\"], \"labels\": {\"job\": \"e2e\"}}"
        sep=", "
    done
    json+="]"
    printf '%s\n' "$json" >"$FILE_SD_DIR/.static.tmp" && mv "$FILE_SD_DIR/.static.tmp" "$FILE_SD_DIR/static.json"
}

# ---------------------------------------------------------------- start
start_phoenix() {
    local dir="$E2E_DIR/phoenix"
    if pid_alive "$E2E_DIR/phoenix.pid"; then log "phoenix already running"; return 0; fi
    port_taken "$PHOENIX_PORT" && { log "phoenix: port $PHOENIX_PORT is already in use"; return 1; }
    port_taken "$PHOENIX_GRPC_PORT" && { log "phoenix: gRPC port $PHOENIX_GRPC_PORT is already in use"; return 1; }
    rm -rf "$dir" && mkdir -p "$dir"
    # setsid: its own process group, so `stop` ends it and all its children.
    PHOENIX_WORKING_DIR="$dir" PHOENIX_HOST="$HOST" PHOENIX_PORT="$PHOENIX_PORT" \
    PHOENIX_GRPC_PORT="$PHOENIX_GRPC_PORT" PHOENIX_TELEMETRY_ENABLED=false \
        setsid "$PHOENIX_VENV/bin/phoenix" serve >"$E2E_DIR/phoenix.log" 2>&1 </dev/null &
    echo $! >"$E2E_DIR/phoenix.pid"
    wait_ready phoenix "$PHOENIX_URL/healthz" "$E2E_DIR/phoenix.pid" "$E2E_DIR/phoenix.log"
}

start_prometheus() {
    local dir="$E2E_DIR/prometheus"
    if pid_alive "$E2E_DIR/prometheus.pid"; then log "prometheus already running"; return 0; fi
    port_taken "$PROMETHEUS_PORT" && { log "prometheus: port $PROMETHEUS_PORT is already in use"; return 1; }
    rm -rf "$dir" && mkdir -p "$dir/data" "$FILE_SD_DIR"
    write_targets
    cat >"$dir/prometheus.yml" <<EOF
global:
  scrape_interval: $PROMETHEUS_SCRAPE_INTERVAL
  scrape_timeout: $PROMETHEUS_SCRAPE_INTERVAL
  evaluation_interval: $PROMETHEUS_SCRAPE_INTERVAL
scrape_configs:
  - job_name: e2e
    file_sd_configs:
      - files: ["$FILE_SD_DIR/*.json"]
        refresh_interval: 1s
EOF
    setsid prometheus \
        --config.file="$dir/prometheus.yml" \
        --storage.tsdb.path="$dir/data" \
        --web.listen-address="$HOST:$PROMETHEUS_PORT" \
        --storage.tsdb.retention.time=1h \
        >"$E2E_DIR/prometheus.log" 2>&1 </dev/null &
    echo $! >"$E2E_DIR/prometheus.pid"
    wait_ready prometheus "$PROMETHEUS_URL/-/ready" "$E2E_DIR/prometheus.pid" "$E2E_DIR/prometheus.log"
}

write_env() {
    cat >"$E2E_DIR/backends.env" <<EOF
export PHOENIX_URL=$PHOENIX_URL
export PHOENIX_OTLP_ENDPOINT=$PHOENIX_URL
export PROMETHEUS_URL=$PROMETHEUS_URL
export PROMETHEUS_FILE_SD_DIR=$FILE_SD_DIR
EOF
}

cmd_start() {
    mkdir -p "$E2E_DIR"
    install_prometheus
    install_phoenix
    local t0=$SECONDS failed=()
    # Phoenix first: it is the slow one (database migrations).
    start_phoenix || failed+=(phoenix)
    start_prometheus || failed+=(prometheus)
    if (( ${#failed[@]} )); then
        cmd_stop
        die "backend(s) failed to start: ${failed[*]} (logs in $E2E_DIR)"
    fi
    write_env
    log "all backends ready in $((SECONDS - t0))s; env in $E2E_DIR/backends.env"
}

# ---------------------------------------------------------------- stop/status
stop_one() {
    local name=$1 pidfile="$E2E_DIR/$1.pid" pid
    [[ -f "$pidfile" ]] || return 0
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        fi
        log "$name stopped"
    fi
    rm -f "$pidfile"
}

cmd_stop() {
    stop_one phoenix
    stop_one prometheus
    rm -f "$E2E_DIR/backends.env"
}

cmd_status() {
    local rc=0
    if pid_alive "$E2E_DIR/phoenix.pid" && curl -sf -o /dev/null --max-time 2 "$PHOENIX_URL/healthz"; then
        log "phoenix: up at $PHOENIX_URL (pid $(cat "$E2E_DIR/phoenix.pid"))"
    else log "phoenix: down"; rc=1; fi
    if pid_alive "$E2E_DIR/prometheus.pid" && curl -sf -o /dev/null --max-time 2 "$PROMETHEUS_URL/-/ready"; then
        log "prometheus: up at $PROMETHEUS_URL (pid $(cat "$E2E_DIR/prometheus.pid"))"
    else log "prometheus: down"; rc=1; fi
    return $rc
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    install) mkdir -p "$E2E_DIR"; install_prometheus; install_phoenix ;;
    *) echo "usage: $0 start|stop|status|install" >&2; exit 2 ;;
esac
