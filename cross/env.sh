# Sourced by cross/build.sh, cross/test.sh and cross/ci.sh: the pins and the per-target cargo
# command line, in one place. Not executable on its own.
#
# Pins (verified together on this machine; see cross/README.md):
#   stable   the machine's default toolchain (1.95.0 when verified)
#   nightly  NIGHTLY below = rustc 1.97.0-nightly (e50aa6fba 2026-05-19), the one CROSS.md verified.
#            Note the dist date is the day after the commit date: nightly-2026-05-19 is a different
#            compiler (9eb3be26b 2026-05-18).
#   zig      PyPI ziglang 0.17.1, cargo-zigbuild 0.24.1, in a venv under ~/.cache (not the repo).

CROSS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$CROSS_DIR/.." && pwd)"
NIGHTLY="${EDGEMQ_NIGHTLY:-nightly-2026-05-20}"
ZIGLANG_VERSION="0.17.1"
CARGO_ZIGBUILD_VERSION="0.24.1"
CROSS_CACHE="${EDGEMQ_CROSS_CACHE:-$HOME/.cache/edgemq-cross}"
CROSS_VENV="$CROSS_CACHE/venv"
# Where build.sh writes `triple bytes` lines (one file per target, so parallel CI jobs don't clash).
# Cargo builds go to a target dir outside the clone, so CI runs on the same machine reuse the
# (slow, build-std) cross builds; override with CARGO_TARGET_DIR.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/edgemq-cross/target}"
SIZES_DIR="$REPO_DIR/.target/cross/sizes"

export PATH="$CROSS_VENV/bin:$PATH"

# Fields of cross/targets.txt for TRIPLE: prints "toolchain features board" (board "-" = none).
target_fields() {
  local triple="$1" line
  line="$(sed -e 's/#.*//' "$CROSS_DIR/targets.txt" | awk -F'|' -v t="$triple" '
    { for (i = 1; i <= NF; i++) gsub(/^[ \t]+|[ \t]+$/, "", $i) }
    $1 == t { print $2, $3, $4; found = 1 } END { exit !found }')" || {
    echo "cross: $triple is not in cross/targets.txt" >&2; return 1; }
  echo "$line"
}

# All triples of cross/targets.txt, in file order.
all_targets() {
  sed -e 's/#.*//' "$CROSS_DIR/targets.txt" | awk -F'|' 'NF >= 4 { gsub(/[ \t]/, "", $1); print $1 }'
}

# Runs cargo-zigbuild SUBCOMMAND (build|test) for TRIPLE with the toolchain that targets.txt gives,
# adding -Zbuild-std for nightly targets (no prebuilt std: MIPS is tier 3, ARM's rust-std could not
# be downloaded). Extra arguments are passed to cargo.
zig_cargo() {
  local sub="$1" triple="$2"; shift 2
  local toolchain features board
  read -r toolchain features board < <(target_fields "$triple") || return 1
  local -a args=(--locked --target "$triple")
  case "$toolchain" in
    stable) ;;
    nightly)
      # Release: std and panic_unwind, named, because the release profile unwinds (hooks and
      # broker calls are shielded with catch_unwind). The old `std,panic_abort` unwound too (cargo
      # adds panic_unwind to any list with std) but said the opposite of what we ship.
      # `cross/test.sh unwind` checks the binary (edgemq --check-unwind under qemu).
      if [ "$sub" = test ]; then args+=(-Zbuild-std); else args+=(-Zbuild-std=std,panic_unwind); fi ;;
    *) echo "cross: unknown toolchain '$toolchain' for $triple" >&2; return 1 ;;
  esac
  if [ "$toolchain" = nightly ]; then
    RUSTUP_TOOLCHAIN="$NIGHTLY" cargo-zigbuild "$sub" "${args[@]}" "$@"
  else
    cargo-zigbuild "$sub" "${args[@]}" "$@"
  fi
}

# cargo feature arguments for a targets.txt feature set: "default", "none", or "a,b,c" (exactly
# those, without the defaults).
feature_args() {
  case "$1" in
    default) ;;
    none) echo "--no-default-features" ;;
    *) echo "--no-default-features --features $1" ;;
  esac
}

# Path of the release binary for TRIPLE.
bin_path() { echo "$CARGO_TARGET_DIR/$1/release/edgemq"; }

# The qemu-user command line for TRIPLE: the runner from .cargo/config.toml.
runner_for() {
  awk -v sect="[target.$1]" '
    $0 == sect { in_s = 1; next } /^\[/ { in_s = 0 }
    in_s && $1 == "runner" { sub(/^[^"]*"/, ""); sub(/".*$/, ""); print; exit }' \
    "$REPO_DIR/.cargo/config.toml"
}
