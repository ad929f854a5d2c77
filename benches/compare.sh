#!/usr/bin/env bash
# Compares edgemq with Mosquitto and rumqttd using the loadgen bench (benches/loadgen/).
#
#   benches/compare.sh --quick            # a small subset, one run per cell, about 3 minutes once built
#   benches/compare.sh [--repeat 1|3]     # the full matrix (default 3 runs per cell, medians)
#   options: --port BASE (default 18830), --timeout SECS per run (default 60), --out DIR,
#            --brokers LIST (default edgemq,mosquitto,rumqttd; the others get n/a and are not installed),
#            --only REGEX (only the cells whose line matches, e.g. --only '^connections')
#
# Every broker listens on 127.0.0.1 only and is started fresh for each run with a generated config;
# the order of brokers rotates between repeats. A broker that cannot be built, installed or started
# gets n/a cells; a run that fails its correctness checks shows FAIL. The script kills only the PIDs
# it started (trap on EXIT). Output: a Markdown table of medians on stdout, raw RESULT lines in
# $OUT/results.tsv and broker logs in $OUT/.
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=0 REPEAT="" PORT=18830 TIMEOUT=60 OUT=.target/bench WANT=edgemq,mosquitto,rumqttd ONLY=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --repeat) REPEAT="$2"; shift ;;
    --port) PORT="$2"; shift ;;
    --timeout) TIMEOUT="$2"; shift ;;
    --out) OUT="$2"; shift ;;
    --brokers) WANT="$2"; shift ;;
    --only) ONLY="$2"; shift ;;
    *) echo "usage: $0 [--quick] [--repeat N] [--port BASE] [--timeout SECS] [--out DIR] [--brokers a,b] [--only REGEX]" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$REPEAT" ] || { [ "$QUICK" = 1 ] && REPEAT=1 || REPEAT=3; }
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
RUMQTTD_ROOT=.target/rumqttd

STARTED=()
cleanup() {
  local p
  for p in "${STARTED[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${STARTED[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
# 10,000 connections need file descriptors in the brokers (started from here) and in loadgen.
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

log() { echo "== $*" >&2; }

# ---- build and install ------------------------------------------------------------------------
log "building loadgen"
LOADGEN=$(cargo bench --bench loadgen --no-run 2>&1 | tee "$OUT/build-loadgen.log" | grep -o '\.target/release/deps/loadgen-[0-9a-f]*' | tail -1)
[ -x "$LOADGEN" ] || { echo "loadgen did not build; see $OUT/build-loadgen.log" >&2; exit 1; }

declare -A AVAILABLE
wanted() { [[ ",$WANT," == *",$1,"* ]]; }
if wanted edgemq; then log "building edgemq (cargo build --release)"; fi
if wanted edgemq && cargo build --release >"$OUT/build-edgemq.log" 2>&1 && [ -x .target/release/edgemq ]; then AVAILABLE[edgemq]=1; fi
# The static musl build that ships to gateways, for the idle-RSS row only (throughput cells use the
# glibc build, the same libc and malloc as the peers). Built only when the cross tools are
# installed (bash cross/ci.sh installs them); otherwise that row says n/a.
EDGEMQ_STATIC=.target/cross/bin/x86_64-unknown-linux-musl/edgemq
if wanted edgemq && [ -x "$HOME/.cache/edgemq-cross/venv/bin/cargo-zigbuild" ]; then
  log "building the static musl edgemq (cross/build.sh x86_64-unknown-linux-musl)"
  bash cross/build.sh x86_64-unknown-linux-musl >"$OUT/build-edgemq-static.log" 2>&1 || rm -f "$EDGEMQ_STATIC"
else
  rm -f "$EDGEMQ_STATIC"
fi

MOSQUITTO=$(command -v mosquitto || { [ -x /usr/sbin/mosquitto ] && echo /usr/sbin/mosquitto; } || true)
if [ -z "$MOSQUITTO" ] && wanted mosquitto; then
  log "installing mosquitto (apt)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mosquitto; } >"$OUT/install-mosquitto.log" 2>&1 || true
  MOSQUITTO=$(command -v mosquitto || { [ -x /usr/sbin/mosquitto ] && echo /usr/sbin/mosquitto; } || true)
fi
[ -n "$MOSQUITTO" ] && wanted mosquitto && AVAILABLE[mosquitto]=1

RUMQTTD=$RUMQTTD_ROOT/bin/rumqttd
if [ ! -x "$RUMQTTD" ] && wanted rumqttd; then
  log "installing rumqttd 0.20.0 under $RUMQTTD_ROOT (several minutes, once)"
  # --locked first, as asked; its lock pins metrics 0.22.1, which current rustc rejects (E0521),
  # so fall back to the newest semver-compatible dependencies.
  cargo install rumqttd --version 0.20.0 --locked --root "$RUMQTTD_ROOT" >"$OUT/install-rumqttd.log" 2>&1 ||
    cargo install rumqttd --version 0.20.0 --root "$RUMQTTD_ROOT" >>"$OUT/install-rumqttd.log" 2>&1 || true
fi
[ -x "$RUMQTTD" ] && wanted rumqttd && AVAILABLE[rumqttd]=1
BROKERS=(edgemq mosquitto rumqttd)
for b in "${BROKERS[@]}"; do log "$b: $([ -n "${AVAILABLE[$b]:-}" ] && echo available || echo n/a)"; done

# ---- brokers ----------------------------------------------------------------------------------
# Comparable limits: 100 inflight per client (loadgen's window), queues deep enough that QoS >= 1
# never drops, no persistence, error-level logging only, loopback only.
write_configs() {
  cat >"$OUT/mosquitto.conf" <<EOF
listener $PORT 127.0.0.1
allow_anonymous true
persistence false
max_inflight_messages 100
max_queued_messages 1000000
max_queued_bytes 0
set_tcp_nodelay true
log_dest stderr
log_type error
connection_messages false
EOF
  # edgemq: the same comparable limits (its defaults are sized for a small router: 1024
  # clients, 256 queued messages per session, receive maximum 64). memory_limit = 0: unchecked,
  # as Mosquitto's queues are with max_queued_bytes 0.
  cat >"$OUT/edgemq.conf" <<EOF
[limits]
memory_limit = 0
max_clients = 20000
max_sessions = 20000
max_inflight = 100
max_queued_messages = 1000000
max_queued_bytes = 1073741824
queue_memory = 1073741824
max_subscription_bytes = 268435456
max_retained_messages = 1000000
max_retained_bytes = 268435456

[mqtt]
receive_maximum = 100
EOF
  local v
  {
    printf 'id = 0\n\n[router]\nid = 0\nmax_connections = 20000\nmax_outgoing_packet_count = 200\n'
    printf 'max_segment_size = 104857600\nmax_segment_count = 10\n'
    for v in 4 5; do
      printf '\n[v%s.1]\nname = "v%s-1"\nlisten = "127.0.0.1:%s"\nnext_connection_delay_ms = 0\n' "$v" "$v" $((PORT + v - 4))
      printf '    [v%s.1.connections]\n    connection_timeout_ms = 60000\n    max_payload_size = 20480\n' "$v"
      printf '    max_inflight_count = 100\n    dynamic_filters = true\n'
    done
  } >"$OUT/rumqttd.toml"
}
BASE_PORT=$PORT
write_configs

BROKER_PID="" BROKER_PORT=""
# start_broker NAME VERSION: sets BROKER_PID and BROKER_PORT, or returns 1 if it did not come up.
start_broker() {
  local name=$1 version=$2 i
  BROKER_PORT=$PORT
  case $name in
    edgemq) .target/release/edgemq -c "$OUT/edgemq.conf" -p "$PORT" >>"$OUT/edgemq.log" 2>&1 & ;;
    edgemq-static) "$EDGEMQ_STATIC" -c "$OUT/edgemq.conf" -p "$PORT" >>"$OUT/edgemq.log" 2>&1 & ;;
    mosquitto) "$MOSQUITTO" -c "$OUT/mosquitto.conf" >>"$OUT/mosquitto.log" 2>&1 & ;;
    rumqttd) BROKER_PORT=$((PORT + version - 4)); "$RUMQTTD" -q -c "$OUT/rumqttd.toml" >>"$OUT/rumqttd.log" 2>&1 & ;;
  esac
  BROKER_PID=$!
  STARTED+=("$BROKER_PID")
  for i in $(seq 50); do
    kill -0 "$BROKER_PID" 2>/dev/null || return 1
    if (exec 3<>"/dev/tcp/127.0.0.1/$BROKER_PORT") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

stop_broker() {
  kill "$BROKER_PID" 2>/dev/null || true
  wait "$BROKER_PID" 2>/dev/null || true
  local keep=() p
  for p in "${STARTED[@]}"; do [ "$p" = "$BROKER_PID" ] || keep+=("$p"); done
  STARTED=("${keep[@]}")
}

# ---- the matrix -------------------------------------------------------------------------------
# One cell per line: label | loadgen arguments. The version is taken from --version.
cells() {
  if [ "$QUICK" = 1 ]; then
    echo "fanin q1 v5 64B|--scenario fanin --qos 1 --version 5 --payload 64 --messages 20000"
    echo "fanout q1 v5 64B|--scenario fanout --qos 1 --version 5 --payload 64 --messages 500"
    echo "pairs q2 v4 1KiB|--scenario pairs --qos 2 --version 4 --payload 1024 --messages 10000"
    echo "latency q1 v5 5k/s|--scenario latency --qos 1 --version 5 --payload 64 --rate 5000 --messages 10000"
    echo "connections v5 2000|--scenario connections --version 5 --clients 2000"
    echo "retained q1 v5 10k|--scenario retained --qos 1 --version 5 --payload 64 --messages 10000"
    return
  fi
  local v q pl
  for v in 4 5; do for q in 0 1 2; do for pl in 64 1024; do
    echo "fanin q$q v$v ${pl}B|--scenario fanin --qos $q --version $v --payload $pl --messages 200000"
    echo "fanout q$q v$v ${pl}B|--scenario fanout --qos $q --version $v --payload $pl --messages 2000"
    echo "pairs q$q v$v ${pl}B|--scenario pairs --qos $q --version $v --payload $pl --messages 100000"
  done; done; done
  for v in 4 5; do for q in 0 1 2; do
    echo "latency q$q v$v 10k/s|--scenario latency --qos $q --version $v --payload 64 --rate 10000 --messages 50000"
  done; done
  for v in 4 5; do echo "connections v$v 10000|--scenario connections --version $v --clients 10000"; done
  for q in 0 1 2; do echo "retained q$q v5 100k|--scenario retained --qos $q --version 5 --payload 64 --messages 100000"; done
}

# The number a cell is judged by, and whether higher is better.
metric_of() {
  case $1 in
    latency*) echo "p99_us low" ;;
    connections*) echo "connect_per_s high" ;;
    *) echo "deliveries_per_s high" ;;
  esac
}
field() { grep -o " $1=[^ ]*" <<<"$2" | head -1 | cut -d= -f2 || true; }

RESULTS="$OUT/results.tsv"
: >"$RESULTS"
mapfile -t CELLS < <(cells | grep -E -- "${ONLY:-.}")
total=$(( ${#CELLS[@]} * REPEAT * ${#BROKERS[@]} )); n=0
for rep in $(seq 0 $((REPEAT - 1))); do
  for cell in "${CELLS[@]}"; do
    label=${cell%%|*} args=${cell#*|}
    version=$(grep -o -- '--version [45]' <<<"$args" | cut -d' ' -f2)
    for k in 0 1 2; do
      b=${BROKERS[$(( (k + rep) % 3 ))]}  # rotate the order between repeats
      n=$((n + 1))
      if [ -z "${AVAILABLE[$b]:-}" ]; then printf '%s\t%s\t%s\tn/a\n' "$label" "$b" "$rep" >>"$RESULTS"; continue; fi
      # A fresh port per run, so no run inherits the previous run's sockets in TIME_WAIT.
      PORT=$((BASE_PORT + 2 * (n % 400)))
      write_configs
      if ! start_broker "$b" "$version"; then
        log "[$n/$total] $label $b: did not start"
        printf '%s\t%s\t%s\tn/a\n' "$label" "$b" "$rep" >>"$RESULTS"
        stop_broker; continue
      fi
      # shellcheck disable=SC2086  # args are word lists by design
      line=$(timeout $((TIMEOUT + 30)) "$LOADGEN" --port "$BROKER_PORT" --timeout "$TIMEOUT" --broker-pid "$BROKER_PID" $args 2>>"$OUT/loadgen.stderr" | grep '^RESULT' || true)
      stop_broker
      [ -n "$line" ] || line="RESULT status=FAIL"
      log "[$n/$total] $label $b: $(field status "$line") $(metric_of "$label" | cut -d' ' -f1)=$(field "$(metric_of "$label" | cut -d' ' -f1)" "$line")"
      printf '%s\t%s\t%s\t%s\n' "$label" "$b" "$rep" "$line" >>"$RESULTS"
    done
  done
done

# ---- idle memory ------------------------------------------------------------------------------
# Each broker started fresh, idle for 2 s with no client: VmRSS, and its anonymous and
# file-backed parts (the latter is the binary's and shared libraries' touched pages).
IDLE="$OUT/idle.tsv"
: >"$IDLE"
for rep in $(seq 0 $((REPEAT - 1))); do
  for b in "${BROKERS[@]}" edgemq-static; do
    if [ "$b" = edgemq-static ]; then [ -x "$EDGEMQ_STATIC" ] || continue; elif [ -z "${AVAILABLE[$b]:-}" ]; then continue; fi
    start_broker "$b" 5 || { stop_broker; continue; }
    sleep 2
    printf '%s\t%s\t%s\t%s\n' "$b" \
      "$(awk '/^VmRSS:/ {print $2}' "/proc/$BROKER_PID/status")" \
      "$(awk '/^RssAnon:/ {print $2}' "/proc/$BROKER_PID/status")" \
      "$(awk '/^RssFile:/ {print $2}' "/proc/$BROKER_PID/status")" >>"$IDLE"
    stop_broker
  done
done

# ---- the table --------------------------------------------------------------------------------
median() { sort -g | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "n/a"}'; }
# cell_value LABEL BROKER FIELD: the median over repeats, FAIL if any repeat failed, n/a if none ran.
cell_value() {
  local rows
  rows=$(awk -F'\t' -v l="$1" -v b="$2" '$1==l && $2==b {print $4}' "$RESULTS")
  if [ -z "$rows" ] || grep -q '^n/a$' <<<"$rows"; then echo "n/a"; return; fi
  if grep -q 'status=FAIL' <<<"$rows"; then echo "FAIL"; return; fi
  while read -r r; do field "$3" " $r"; done <<<"$rows" | median
}
ratio() {
  awk -v a="$1" -v b="$2" -v hi="$3" 'BEGIN {
    if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/ || a == 0 || b == 0) { print "n/a"; exit }
    printf "%.2f", (hi == "high") ? a / b : b / a }'
}

echo
echo "Medians of $REPEAT run(s) per cell; ratio = edgemq/peer, >1 means edgemq is better (for latency: peer p99 / edgemq p99)."
echo "CPU = broker utime+stime during the run (s); RSS = broker peak VmHWM (KiB). Order: edgemq / mosquitto / rumqttd."
echo
echo "| cell | metric | edgemq | mosquitto | rumqttd | e/mosq | e/rumq | CPU s | peak RSS KiB |"
echo "|---|---|---|---|---|---|---|---|---|"
for cell in "${CELLS[@]}"; do
  label=${cell%%|*}
  read -r metric dir <<<"$(metric_of "$label")"
  e=$(cell_value "$label" edgemq "$metric") m=$(cell_value "$label" mosquitto "$metric") r=$(cell_value "$label" rumqttd "$metric")
  cpu="" rss=""
  for b in "${BROKERS[@]}"; do
    cpu+="$(cell_value "$label" "$b" broker_cpu_s) / " rss+="$(cell_value "$label" "$b" broker_hwm_kib) / "
  done
  extra=""
  [[ $label == connections* ]] && extra=" (B/conn: $(cell_value "$label" edgemq rss_per_conn_b) / $(cell_value "$label" mosquitto rss_per_conn_b) / $(cell_value "$label" rumqttd rss_per_conn_b))"
  echo "| $label | $metric | $e | $m | $r | $(ratio "$e" "$m" "$dir") | $(ratio "$e" "$r" "$dir") | ${cpu% / } | ${rss% / }$extra |"
done

echo
echo "Idle broker, no client, 2 s after start (KiB, median of $REPEAT; edgemq-static = the static musl build):"
echo
echo "| broker | VmRSS | anonymous | file-backed |"
echo "|---|---|---|---|"
for b in edgemq edgemq-static mosquitto rumqttd; do
  col() { awk -F'\t' -v b="$b" -v c="$1" '$1 == b {print $c}' "$IDLE" | median; }
  [ -n "$(awk -F'\t' -v b="$b" '$1 == b' "$IDLE")" ] || continue
  echo "| $b | $(col 2) | $(col 3) | $(col 4) |"
done
