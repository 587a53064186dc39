#!/usr/bin/env bash
# Times `tracelight` next to grep, ripgrep, jq and zcat on one generated JSON log file.
#
#   crates/tracelight-cli/bench.sh [SIZE] [DIR]      e.g. bench.sh 1GB /tmp/tracelight-bench
#
# Generates DIR/app.log (SIZE, default 1GB) with the gen_logs example and DIR/app.log.1.gz (the
# same lines, gzip -6), warms the page cache, then runs each command RUNS times (default 3) and
# reports the best wall time and the throughput in GB/s of uncompressed log. Output goes to a
# file, not /dev/null (GNU grep stops at the first match when its output is /dev/null).
# jq is timed on the first 100 MB of the file only (it runs at well under 0.1 GB/s; a whole
# gigabyte would take minutes) and its throughput is reported from that slice.
set -euo pipefail

SIZE=${1:-1GB}
DIR=${2:-/tmp/tracelight-bench}
RUNS=${RUNS:-3}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}

cd "$ROOT"
cargo build --quiet --release -p tracelight-cli --bin tracelight --example gen_logs
TL=$TARGET/release/tracelight
GEN=$TARGET/release/examples/gen_logs

mkdir -p "$DIR"
LOG=$DIR/app.log
GZ=$DIR/app.log.1.gz
if [[ ! -f $LOG || ! -f $DIR/id.txt || $(cat "$DIR/size.txt" 2>/dev/null) != "$SIZE" ]]; then
    echo "generating $SIZE in $LOG ..." >&2
    "$GEN" "$SIZE" "$LOG" >"$DIR/id.txt"
    echo "$SIZE" >"$DIR/size.txt"
    rm -f "$GZ"
fi
if [[ ! -f $GZ ]]; then
    echo "compressing to $GZ ..." >&2
    gzip -6 -c "$LOG" >"$GZ"
fi
ID=$(cat "$DIR/id.txt")
BYTES=$(stat -c %s "$LOG")
head -c 100000000 "$LOG" >"$DIR/slice.log"
SLICE_BYTES=$(stat -c %s "$DIR/slice.log")

if ! command -v jq >/dev/null; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        apt-get install -y -qq jq >/dev/null 2>&1 || true
    fi
fi

cat "$LOG" "$GZ" "$DIR/slice.log" >/dev/null # warm the page cache

echo "# $(date -u +%Y-%m-%dT%H:%MZ)  nproc=$(nproc)  cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "# file: $LOG ($BYTES bytes), $GZ ($(stat -c %s "$GZ") bytes), request id $ID"
printf '%-58s %9s %9s %9s\n' "command" "seconds" "GB/s" "lines"

bench() { # name bytes command...
    local name=$1 bytes=$2
    shift 2
    local best=""
    for _ in $(seq "$RUNS"); do
        local s e
        s=$(date +%s%N)
        "$@" >"$DIR/out.txt" 2>/dev/null || true
        e=$(date +%s%N)
        local ns=$((e - s))
        if [[ -z $best || $ns -lt $best ]]; then best=$ns; fi
    done
    local lines
    lines=$(wc -l <"$DIR/out.txt")
    awk -v n="$name" -v ns="$best" -v b="$bytes" -v l="$lines" \
        'BEGIN { printf "%-58s %9.3f %9.2f %9d\n", n, ns / 1e9, b / ns, l }'
}

bench "grep -F ID" "$BYTES" grep -F "$ID" "$LOG"
if command -v rg >/dev/null; then
    bench "rg -F ID" "$BYTES" rg -F "$ID" "$LOG"
fi
bench "grep -F '\"level\":\"ERROR\"'" "$BYTES" grep -F '"level":"ERROR"' "$LOG"
bench "zcat .gz | grep -F ID" "$BYTES" bash -c "zcat '$GZ' | grep -F '$ID'"
if command -v jq >/dev/null; then
    bench "jq 'select(.request_id==ID)' (first 100 MB)" "$SLICE_BYTES" \
        jq -c "select(.request_id == \"$ID\")" "$DIR/slice.log"
else
    echo "jq: not installed, skipped"
fi
bench "tracelight query --request-id ID --json" "$BYTES" "$TL" query --request-id "$ID" --json "$LOG"
bench "tracelight query --level error --json" "$BYTES" "$TL" query --level error --json "$LOG"
bench "tracelight query --where 'status >= 500' --json" "$BYTES" "$TL" query --where 'status >= 500' --json "$LOG"
bench "tracelight errors" "$BYTES" "$TL" errors --color never "$LOG"
bench "tracelight query --request-id ID --json (.gz)" "$BYTES" "$TL" query --request-id "$ID" --json "$GZ"
bench "tracelight query --level error --count (.gz)" "$BYTES" "$TL" query --level error --count "$GZ"
bench "tracelight slow" "$BYTES" "$TL" slow --color never "$LOG"
bench "tracelight query --count (every line validated)" "$BYTES" "$TL" query --count "$LOG"
