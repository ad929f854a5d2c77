#!/usr/bin/env bash
# Seeds tests/fuzz/corpus/decode from tests/vectors/packets/*.hex: each vector's bytes, prefixed
# with a selector byte for its version (0 = 3.1, 1 = 3.1.1, 2 = 5.0; see fuzz_targets/decode.rs).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
vectors="$here/../vectors/packets"
corpus="$here/corpus/decode"
mkdir -p "$corpus"
n=0
for f in "$vectors"/*.hex; do
    version="$(head -n1 "$f" | sed -n 's/.*version=\([0-9.]*\).*/\1/p')"
    case "$version" in
        3.1) sel=00 ;;
        3.1.1) sel=01 ;;
        5.0) sel=02 ;;
        *) echo "seed.sh: no version in $f" >&2; exit 1 ;;
    esac
    hex="$sel $(sed -e '1d' -e 's/#.*//' "$f" | tr -s ' \n' ' ')"
    printf '%s' "$hex" | xxd -r -p > "$corpus/$(basename "$f" .hex)"
    n=$((n + 1))
done
echo "seeded $n inputs into $corpus"

# tests/fuzz/corpus/core: a few pseudo-random programs (an options byte, then steps; see
# tests/common/core_steps.rs), the kind tests/core_steps.rs runs, so the fuzzer starts deep.
corpus="$here/corpus/core"
mkdir -p "$corpus"
for i in 1 2 3 4 5 6 7 8; do
    awk -v seed="$i" 'BEGIN { x = seed * 7919; for (n = 0; n < 1601; n++) { x = (x * 1103515245 + 12345) % 2147483648; printf "%02x", int(x / 65536) % 256 } }' \
        | xxd -r -p > "$corpus/seed-$i"
done
echo "seeded 8 programs into $corpus"
