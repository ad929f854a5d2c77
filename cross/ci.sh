#!/usr/bin/env bash
# The cross-compilation part of CI, called by .ci/run; also runnable by hand: `bash cross/ci.sh`.
#
# On a fresh Debian machine (as root, or with sudo) it installs what it needs, each step skipped
# when already there: qemu-user-static, mosquitto + mosquitto-clients and `file` (apt), ziglang +
# cargo-zigbuild (pip, pinned, in a venv under ~/.cache/edgemq-cross), the aarch64 musl rust-std
# and the pinned nightly with rust-src (rustup). Then, for aarch64 (stable) and big-endian MIPS
# (nightly, -Zbuild-std):
#   1. library unit tests under qemu-user       (cross/test.sh unit)
#   2. static stripped release binary + budget  (cross/build.sh)
#   3. broker smoke test under qemu-user        (cross/test.sh smoke; gated on `edgemq --help`
#      naming --port, which it does), and the smoke harness checked against the host's mosquitto.
#   4. `edgemq --check-unwind` under qemu-user  (cross/test.sh unwind): a panicking hook must be
#      caught in the shipped binary; fails unless it prints `unwind: ok` (SIGABRT = no unwinding).
# Caches: .target/ (cargo), ~/.cache/zig (zig's libc builds), ~/.cache/edgemq-cross (venv),
# ~/.rustup and ~/.cargo. Warm, every step is a no-op check.
#
# EDGEMQ_CROSS_TARGETS overrides the targets (space-separated triples from cross/targets.txt).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$REPO_DIR"

TARGETS="${EDGEMQ_CROSS_TARGETS:-aarch64-unknown-linux-musl mips-unknown-linux-musl}"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
TIMES=()
step() {  # step NAME COMMAND...: runs COMMAND and records how long it took.
  local name="$1" start=$SECONDS; shift
  "$@"
  TIMES+=("$(printf '%-56s %5ss' "$name" "$((SECONDS - start))")")
}

install() {
  local need_apt="" t
  command -v qemu-aarch64-static >/dev/null && command -v qemu-mips-static >/dev/null ||
    need_apt="$need_apt qemu-user-static"
  command -v mosquitto_pub >/dev/null || need_apt="$need_apt mosquitto-clients"
  command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need_apt="$need_apt mosquitto"
  command -v file >/dev/null || need_apt="$need_apt file"
  if [ -n "$need_apt" ]; then
    echo "cross: apt-get install$need_apt"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need_apt >/dev/null
  fi

  if ! "$CROSS_VENV/bin/cargo-zigbuild" --version 2>/dev/null | grep -q " $CARGO_ZIGBUILD_VERSION\$" ||
     ! "$CROSS_VENV/bin/python" -c "import ziglang, importlib.metadata as m; assert m.version('ziglang') == '$ZIGLANG_VERSION'" 2>/dev/null; then
    echo "cross: pip install ziglang==$ZIGLANG_VERSION cargo-zigbuild==$CARGO_ZIGBUILD_VERSION into $CROSS_VENV"
    python3 -m venv "$CROSS_VENV"
    "$CROSS_VENV/bin/pip" install -q --disable-pip-version-check \
      "ziglang==$ZIGLANG_VERSION" "cargo-zigbuild==$CARGO_ZIGBUILD_VERSION"
  fi

  local installed; installed="$(rustup target list --installed)"
  for t in $TARGETS; do
    read -r toolchain _ _ < <(target_fields "$t")
    if [ "$toolchain" = stable ] && ! grep -qx "$t" <<<"$installed"; then
      echo "cross: rustup target add $t"
      rustup target add "$t"
    fi
  done
  if ! [ -d "$(rustup run "$NIGHTLY" rustc --print sysroot 2>/dev/null)/lib/rustlib/src/rust/library" ]; then
    echo "cross: rustup toolchain install $NIGHTLY --component rust-src"
    rustup toolchain install "$NIGHTLY" --profile minimal --component rust-src
  fi
  echo "cross: $(cargo-zigbuild --version), zig $("$CROSS_VENV/bin/python" -m ziglang version)," \
    "$(rustc -V | cut -d' ' -f1-2) + $(rustup run "$NIGHTLY" rustc -V | cut -d' ' -f1-2) ($NIGHTLY)"
}

echo "== cross: installing what the cross tests need"
step "install (apt, pip venv, rustup)" install
for t in $TARGETS; do
  step "unit tests under qemu: $t" bash cross/test.sh unit "$t"
done
for t in $TARGETS; do
  step "release build + size budget: $t" bash cross/build.sh "$t"
done
for t in $TARGETS; do
  step "broker smoke test under qemu: $t" bash cross/test.sh smoke "$t"
done
for t in $TARGETS; do
  step "panic unwinding (--check-unwind) under qemu: $t" bash cross/test.sh unwind "$t"
done
step "smoke harness self-test (host mosquitto)" bash cross/test.sh smoke-selftest

echo "== cross sizes"
for t in $TARGETS; do cat "$SIZES_DIR/$t"; done
echo "== cross step times"
printf '%s\n' "${TIMES[@]}"
