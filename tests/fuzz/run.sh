#!/usr/bin/env bash
# Runs the fuzz targets on nightly for SECONDS seconds in total (default 60), after seeding the
# corpora: `run.sh 60` runs decode for 30 s and core for 30 s; `run.sh 600 core` runs core
# alone for 600 s. For CI: `bash tests/fuzz/run.sh 60`. Needs `cargo install cargo-fuzz`.
# Prints the executions each target reached. Crashes are left in tests/fuzz/artifacts/<target>/
# and make this script fail (after every target ran).
set -euo pipefail
secs="${1:-60}"
targets=("${@:2}")
[ ${#targets[@]} -eq 0 ] && targets=(decode core)
each=$(( secs / ${#targets[@]} ))
[ "$each" -ge 1 ] || each=1
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
"$here/seed.sh"
cd "$root"
# A target dir outside the clone: CI on the same machine reuses the (slow, sanitizer) builds,
# one per target (their flags differ, so a shared one would rebuild at every switch).
base="${CARGO_TARGET_DIR:-$HOME/.cache/edgemq-fuzz/target}"
logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
failed=()
for t in "${targets[@]}"; do
    echo "== $t: ${each} s"
    # decode runs under AddressSanitizer. core looks for logic errors (its invariants, panics)
    # in code without unsafe, where the sanitizer would cost 8x the executions.
    sanitizer=address
    [ "$t" = core ] && sanitizer=none
    # -max_total_time bounds the run; -timeout bounds one input; one job, one worker (2-core boxes).
    set +e
    CARGO_TARGET_DIR="$base/$t" cargo +nightly fuzz run "$t" --fuzz-dir tests/fuzz -s "$sanitizer" -- \
        -max_total_time="$each" -timeout=10 -max_len=4096 -rss_limit_mb=1024 -print_final_stats=1 \
        2>&1 | tee "$logs/$t.log"
    status="${PIPESTATUS[0]}"
    set -e
    [ "$status" -eq 0 ] || failed+=("$t")
done
echo "== executions"
for t in "${targets[@]}"; do
    n="$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$t.log" | tail -n1)"
    echo "$t: ${n:-?} executions in ${each} s"
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "failed: ${failed[*]} (see tests/fuzz/artifacts/)" >&2
    exit 1
fi
