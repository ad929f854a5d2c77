#!/usr/bin/env bash
# Tests of the cross-built code under qemu-user (runners in .cargo/config.toml).
#
#   bash cross/test.sh unit TRIPLE...    # library unit tests (cargo-zigbuild test --lib) under qemu
#   bash cross/test.sh smoke TRIPLE...   # start the release binary under qemu on 127.0.0.1:PORT and
#                                        # publish/subscribe through it with mosquitto_pub/_sub
#   bash cross/test.sh smoke-selftest    # the same smoke checks against the host's mosquitto, to
#                                        # show the harness itself works while the broker is not there
#   bash cross/test.sh unwind TRIPLE...  # `edgemq --check-unwind` under qemu: must print `unwind: ok`
#
# `smoke` needs the release binary (cross/build.sh TRIPLE) and mosquitto-clients. It fails when
# the binary's --help does not mention --port (a broken build).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$REPO_DIR"

unit() {
  local triple="$1"
  echo "== cross unit tests $triple (under $(runner_for "$triple"))"
  zig_cargo test "$triple" --lib
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# smoke_run PORT LOG COMMAND...: starts COMMAND (a broker that listens on 127.0.0.1:PORT), checks
# publish/subscribe through it for MQTT 3.1.1 and 5.0 plus a retained message, then stops it with
# SIGTERM and expects it to exit within 10 s. Returns non-zero on any failure. Every process it
# starts is ended before it returns.
smoke_run() {
  local port="$1" log="$2"; shift 2
  local broker sub rc=0 v topic got i deadline
  "$@" >"$log" 2>&1 &
  broker=$!
  # Wait (at most 20 s) until the port accepts connections, or the broker died.
  for i in $(seq 1 100); do
    if ! kill -0 "$broker" 2>/dev/null; then
      echo "smoke: broker exited before listening on $port; its output:"; cat "$log"; return 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    sleep 0.2
  done
  if [ "$i" = 100 ]; then
    echo "smoke: nothing listening on 127.0.0.1:$port after 20 s"; kill -KILL "$broker"; wait "$broker" || true; return 1
  fi

  for v in mqttv311 mqttv5; do
    topic="edgemq/smoke/$v/$$"
    timeout 15 mosquitto_sub -h 127.0.0.1 -p "$port" -V "$v" -q 1 -t "$topic" -C 1 -W 10 >"$log.sub" 2>&1 &
    sub=$!
    deadline=$((SECONDS + 15))
    # Publish until the subscriber has its message (it may not have subscribed yet): at most ~15 s
    # (every client call is under `timeout`: a peer that never answers CONNECT must not hang CI).
    for i in $(seq 1 50); do
      kill -0 "$sub" 2>/dev/null || break
      timeout 2 mosquitto_pub -h 127.0.0.1 -p "$port" -V "$v" -q 1 -t "$topic" -m "hello $v" || true
      sleep 0.2
      [ "$SECONDS" -lt "$deadline" ] || break
    done
    wait "$sub" || true
    got="$(head -n 1 "$log.sub")"
    if [ "$got" = "hello $v" ]; then echo "smoke: $v publish/subscribe ok"
    else echo "smoke: $v publish/subscribe FAILED: subscriber got: $(cat "$log.sub")"; rc=1; fi
  done

  topic="edgemq/smoke/retained/$$"
  if timeout 5 mosquitto_pub -h 127.0.0.1 -p "$port" -V mqttv5 -q 1 -r -t "$topic" -m "kept" &&
     got="$(timeout 10 mosquitto_sub -h 127.0.0.1 -p "$port" -V mqttv5 -t "$topic" -C 1 -W 5 2>&1)" &&
     [ "$got" = kept ]; then
    echo "smoke: retained message ok"
  else
    echo "smoke: retained message FAILED: got: ${got:-nothing}"; rc=1
  fi
  timeout 5 mosquitto_pub -h 127.0.0.1 -p "$port" -V mqttv5 -r -n -t "$topic" >/dev/null 2>&1 || true

  kill -TERM "$broker" 2>/dev/null || true
  for i in $(seq 1 50); do kill -0 "$broker" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$broker" 2>/dev/null; then
    echo "smoke: broker did not exit within 10 s of SIGTERM"; kill -KILL "$broker"; rc=1
  fi
  wait "$broker" 2>/dev/null || true
  [ "$rc" = 0 ] || { echo "smoke: broker output:"; cat "$log"; }
  return "$rc"
}

# The gate: true when the binary looks like the real broker (its --help mentions --port).
smoke_gate() {
  local triple="$1" runner bin
  runner="$(runner_for "$triple")"; bin="$(bin_path "$triple")"
  # shellcheck disable=SC2086 # the runner is a command line ("qemu-mips-static -cpu 24Kc")
  timeout 20 $runner "$bin" --help 2>&1 | grep -q -- '--port'
}

smoke() {
  local triple="$1" runner bin port
  runner="$(runner_for "$triple")"; bin="$(bin_path "$triple")"
  [ -x "$bin" ] || { echo "smoke: $bin missing: run cross/build.sh $triple first"; return 1; }
  echo "== cross smoke test $triple (broker under $runner, clients on the host)"
  if ! smoke_gate "$triple"; then
    echo "smoke: $triple: 'edgemq --help' does not mention --port (the binary is broken)" >&2
    return 1
  fi
  port="$(free_port)"
  mkdir -p .target/cross
  # shellcheck disable=SC2086
  smoke_run "$port" ".target/cross/smoke-$triple.log" $runner "$bin" --port "$port"
}

# unwind TRIPLE: runs the release binary's `--check-unwind` under qemu-user (a test server whose
# hook panics; a second client must still be served). Fails unless it prints `unwind: ok`: a std
# built without panic_unwind turns the caught panic into an abort (SIGABRT, exit status 134).
unwind() {
  local triple="$1" runner bin out rc=0
  runner="$(runner_for "$triple")"; bin="$(bin_path "$triple")"
  [ -x "$bin" ] || { echo "unwind: $bin missing: run cross/build.sh $triple first"; return 1; }
  echo "== cross unwind check $triple ($runner edgemq --check-unwind)"
  # shellcheck disable=SC2086 # the runner is a command line
  out="$(timeout 60 $runner "$bin" --check-unwind 2>&1)" || rc=$?
  printf '%s\n' "$out"
  if [ "$rc" = 0 ] && grep -qx 'unwind: ok' <<<"$out"; then return 0; fi
  echo "unwind: $triple: --check-unwind FAILED (exit status $rc; 134 = SIGABRT: this build aborts" \
    "on panic, so the panic shields around hooks and broker calls do not work)"
  return 1
}

smoke_selftest() {
  local mosq port
  mosq="$(command -v mosquitto || echo /usr/sbin/mosquitto)"
  [ -x "$mosq" ] || { echo "smoke-selftest: no mosquitto on this machine (apt-get install mosquitto)"; return 1; }
  port="$(free_port)"
  mkdir -p .target/cross
  echo "== cross smoke harness self-test against the host's mosquitto on 127.0.0.1:$port"
  smoke_run "$port" .target/cross/smoke-selftest.log "$mosq" -p "$port"
}

cmd="${1:-}"; shift || true
case "$cmd" in
  unit) for t in "$@"; do unit "$t"; done ;;
  smoke) for t in "$@"; do smoke "$t"; done ;;
  smoke-selftest) smoke_selftest ;;
  unwind) for t in "$@"; do unwind "$t"; done ;;
  *) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
