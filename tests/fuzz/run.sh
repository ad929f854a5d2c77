#!/usr/bin/env bash
# Runs the decode fuzz target for exactly SECONDS seconds (default 60) on nightly, after seeding
# the corpus from the vectors. For CI: `tests/fuzz/run.sh 60`. Needs `cargo install cargo-fuzz`.
# Crashes are left in tests/fuzz/artifacts/decode/ and make this script fail.
set -euo pipefail
secs="${1:-60}"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
"$here/seed.sh"
cd "$root"
# A target dir outside the clone: CI on the same machine reuses the (slow, sanitizer) build.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/edgemq-fuzz/target}"
# -max_total_time bounds the run; -timeout bounds one input; one job, one worker (2-core boxes).
exec cargo +nightly fuzz run decode --fuzz-dir tests/fuzz -- \
    -max_total_time="$secs" -timeout=10 -max_len=4096 -rss_limit_mb=1024 -print_final_stats=1
