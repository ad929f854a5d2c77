#!/usr/bin/env bash
# Builds the static, stripped release binary for each target of cross/targets.txt (or only the
# triples given), records its size and fails when a size exceeds cross/size-budget.txt.
#
#   bash cross/build.sh                          # the whole matrix, one target at a time
#   bash cross/build.sh mips-unknown-linux-musl  # one target (or several)
#   bash cross/build.sh --feature-costs aarch64-unknown-linux-musl
#                                                # size with no features, each feature alone, default
#
# Needs the tools that cross/ci.sh installs (cargo-zigbuild + zig venv, pinned nightly + rust-src).
# Sizes are written to .target/cross/sizes/TRIPLE as "TRIPLE BYTES", and each binary is copied to
# .target/cross/bin/TRIPLE/edgemq (the build context of cross/Containerfile).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$REPO_DIR"

budget_for() {
  sed -e 's/#.*//' "$CROSS_DIR/size-budget.txt" | awk -v t="$1" '$1 == t { print $2; found = 1 } END { exit !found }'
}

# Checks that the binary is what we ship: static (not static-pie, not dynamic) and stripped.
check_binary() {
  local bin="$1" desc
  desc="$(file -b "$bin")"
  case "$desc" in
    *"statically linked"*) ;;
    *) echo "cross: $bin is not a plain static executable: $desc" >&2; return 1 ;;
  esac
  case "$desc" in
    *", stripped"*) ;;
    *) echo "cross: $bin is not stripped: $desc" >&2; return 1 ;;
  esac
}

# build_one TRIPLE [FEATURE-SET]: builds; prints the size in bytes on stdout (logs go to stderr).
build_one() {
  local triple="$1" toolchain features board
  read -r toolchain features board < <(target_fields "$triple")
  features="${2:-$features}"
  if [ "$board" != - ] && [ -d boards ] && [ ! -f "boards/$board.conf" ]; then
    echo "cross: warning: board profile boards/$board.conf (for $triple) does not exist" >&2
  fi
  # shellcheck disable=SC2046 # feature_args is a word list on purpose
  zig_cargo zigbuild "$triple" --release --bin edgemq $(feature_args "$features") >&2
  local bin; bin="$(bin_path "$triple")"
  check_binary "$bin" >&2
  stat -c %s "$bin"
}

if [ "${1:-}" = --feature-costs ]; then
  triple="${2:?usage: cross/build.sh --feature-costs TRIPLE}"
  features="$(python3 - <<'EOF'
import tomllib
f = tomllib.load(open("Cargo.toml", "rb")).get("features", {})
print(" ".join(k for k in f if k != "default"))
EOF
)"
  base="$(build_one "$triple" none)"
  rows=("| no features (\`--no-default-features\`) | $base | 0 |")
  for f in $features; do
    n="$(build_one "$triple" "$f")"
    rows+=("| \`$f\` alone | $n | $((n - base)) |")
  done
  n="$(build_one "$triple" default)"   # last, so .target/ is left with the default build
  rows+=("| default ($(python3 -c 'import tomllib; print(", ".join(tomllib.load(open("Cargo.toml","rb"))["features"]["default"]))')) | $n | $((n - base)) |")
  echo
  echo "Feature costs, $triple, stripped release bytes:"
  echo "| features | bytes | over no features |"
  echo "|---|---:|---:|"
  printf '%s\n' "${rows[@]}"
  exit 0
fi

if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(all_targets); fi
mkdir -p "$SIZES_DIR"
failed=0
summary=()
for triple in "${targets[@]}"; do
  echo "== cross build $triple" >&2
  start=$SECONDS
  if ! budget="$(budget_for "$triple")"; then
    echo "cross: no budget for $triple in cross/size-budget.txt" >&2; failed=1; continue
  fi
  if ! size="$(build_one "$triple")"; then
    summary+=("$triple BUILD-FAILED")
    failed=1; continue
  fi
  echo "$triple $size" > "$SIZES_DIR/$triple"
  # The image build context of cross/Containerfile.
  mkdir -p "$REPO_DIR/.target/cross/bin/$triple"
  cp "$(bin_path "$triple")" "$REPO_DIR/.target/cross/bin/$triple/edgemq"
  verdict="ok"
  if [ "$size" -gt "$budget" ]; then verdict="OVER BUDGET"; failed=1; fi
  summary+=("$(printf '%-32s %9s bytes  budget %9s  %3s%%  %s  (%ss)' \
    "$triple" "$size" "$budget" "$((size * 100 / budget))" "$verdict" "$((SECONDS - start))")")
done
echo "== cross sizes (stripped, static)"
printf '%s\n' "${summary[@]}"
exit "$failed"
