#!/usr/bin/env bash
# Times `tracelight` next to grep, ripgrep, jq and zcat on one generated JSON log file.
#
#   crates/tracelight-cli/bench.sh [SIZE] [DIR]      e.g. bench.sh 1GB /tmp/tracelight-bench
#
# Generates DIR/app.log (SIZE, default 1GB) with the gen_logs example and DIR/app.log.1.gz (the
# same lines, gzip -6), warms the page cache, then runs the commands RUNS times each (default 5),
# interleaved (one run of each, then again), and reports the median wall time, the median CPU
# time (user + sys, all threads) and the throughput in GB/s of uncompressed log; then the ratios
# the targets are stated in. Output goes to a file, not /dev/null (GNU grep stops at the first
# match when its output is /dev/null). jq is timed on the first 100 MB of the file only (it runs
# at well under 0.1 GB/s) and its throughput is reported from that slice. ripgrep and jq are
# installed from the system's packages when they are missing and the script runs as root.
# LOAD=1 keeps one core busy during the runs, as on a loaded machine.
set -euo pipefail

SIZE=${1:-1GB}
DIR=${2:-/tmp/tracelight-bench}
RUNS=${RUNS:-5}
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

for tool in rg:ripgrep jq:jq; do
    if ! command -v "${tool%%:*}" >/dev/null && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        apt-get install -y -qq "${tool#*:}" >/dev/null 2>&1 || true
    fi
done

cat "$LOG" "$GZ" "$DIR/slice.log" >/dev/null # warm the page cache

echo "# $(date -u +%Y-%m-%dT%H:%MZ)  nproc=$(nproc)  cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "# file: $LOG ($BYTES bytes), $GZ ($(stat -c %s "$GZ") bytes), request id $ID"
echo "# median of $RUNS interleaved runs; cpu = user + sys seconds of all threads"

KEYS=()
NAMES=()
BYTESOF=()
CMDS=()
add() { # key name bytes command (a string for bash -c)
    KEYS+=("$1")
    NAMES+=("$2")
    BYTESOF+=("$3")
    CMDS+=("$4")
}

add grep_id "grep -F ID" "$BYTES" "grep -F '$ID' '$LOG'"
if command -v rg >/dev/null; then
    add rg_id "rg -F ID" "$BYTES" "rg -F '$ID' '$LOG'"
    add rg_level "rg -F '\"level\":\"ERROR\"'" "$BYTES" "rg -F '\"level\":\"ERROR\"' '$LOG'"
fi
add grep_level "grep -F '\"level\":\"ERROR\"'" "$BYTES" "grep -F '\"level\":\"ERROR\"' '$LOG'"
add zcat_id "zcat .gz | grep -F ID" "$BYTES" "zcat '$GZ' | grep -F '$ID'"
if command -v jq >/dev/null; then
    add jq_id "jq 'select(.request_id==ID)' (first 100 MB)" "$SLICE_BYTES" "jq -c 'select(.request_id == \"$ID\")' '$DIR/slice.log'"
fi
add tl_id "tracelight query --request-id ID --json" "$BYTES" "'$TL' query --request-id '$ID' --json '$LOG'"
add tl_id_t1 "tracelight query --request-id ID --json --threads 1" "$BYTES" "'$TL' query --request-id '$ID' --json --threads 1 '$LOG'"
add tl_level_t1 "tracelight query --level error --json --threads 1" "$BYTES" "'$TL' query --level error --json --threads 1 '$LOG'"
add tl_level "tracelight query --level error --json" "$BYTES" "'$TL' query --level error --json '$LOG'"
add tl_where "tracelight query --where 'status >= 500' --json" "$BYTES" "'$TL' query --where 'status >= 500' --json '$LOG'"
add tl_errors "tracelight errors" "$BYTES" "'$TL' errors --color never '$LOG'"
add tl_gz_id "tracelight query --request-id ID --json (.gz)" "$BYTES" "'$TL' query --request-id '$ID' --json '$GZ'"
add tl_gz_level "tracelight query --level error --count (.gz)" "$BYTES" "'$TL' query --level error --count '$GZ'"
add tl_slow "tracelight slow" "$BYTES" "'$TL' slow --color never '$LOG'"
add tl_count "tracelight query --count (every line validated)" "$BYTES" "'$TL' query --count '$LOG'"
add tl_report "tracelight report -o report.html" "$BYTES" "'$TL' report -o '$DIR/report.html' '$LOG'"

# LOAD=1: keep one core busy during the runs (a shell busy loop), as on a loaded machine.
if [[ ${LOAD:-0} == 1 ]]; then
    bash -c 'while :; do :; done' &
    LOAD_PID=$!
    trap 'kill $LOAD_PID 2>/dev/null' EXIT
    echo "# one core kept busy by a busy loop (LOAD=1)"
fi

TIMEFORMAT='%R %U %S'
for _ in $(seq "$RUNS"); do
    for k in "${!CMDS[@]}"; do
        { time bash -c "${CMDS[$k]}" >"$DIR/out-$k.txt" 2>/dev/null; } 2>>"$DIR/times-$k.txt" || true
    done
done

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
printf '%-52s %8s %8s %8s %9s\n' "command" "wall s" "cpu s" "GB/s" "lines"
declare -A WALL CPU
for k in "${!CMDS[@]}"; do
    w=$(awk '{ print $1 }' "$DIR/times-$k.txt" | median)
    c=$(awk '{ print $2 + $3 }' "$DIR/times-$k.txt" | median)
    WALL[${KEYS[$k]}]=$w
    CPU[${KEYS[$k]}]=$c
    awk -v n="${NAMES[$k]}" -v w="$w" -v c="$c" -v b="${BYTESOF[$k]}" -v l="$(wc -l <"$DIR/out-$k.txt")" \
        'BEGIN { printf "%-52s %8.3f %8.3f %8.2f %9d\n", n, w, c, b / w / 1e9, l }'
    rm -f "$DIR/times-$k.txt"
done

ratio() { # label numerator denominator
    awk -v l="$1" -v a="$2" -v b="$3" 'BEGIN { if (b > 0) printf "%-64s %6.2f\n", l, a / b }'
}
echo
echo "# ratios (target in brackets)"
if command -v rg >/dev/null; then
    ratio "cpu: tracelight --request-id / rg -F ID  [<= 1.10]" "${CPU[tl_id]}" "${CPU[rg_id]}"
    ratio "cpu: tracelight --level error / rg -F level  [<= 1.10]" "${CPU[tl_level]}" "${CPU[rg_level]}"
    ratio "cpu: tracelight --threads 1 --request-id / rg -F ID" "${CPU[tl_id_t1]}" "${CPU[rg_id]}"
    ratio "cpu: tracelight --threads 1 --level error / rg -F level" "${CPU[tl_level_t1]}" "${CPU[rg_level]}"
    ratio "wall: tracelight --request-id / rg -F ID" "${WALL[tl_id]}" "${WALL[rg_id]}"
    ratio "wall: tracelight --level error / rg -F level" "${WALL[tl_level]}" "${WALL[rg_level]}"
fi
ratio "wall: tracelight report / query --count" "${WALL[tl_report]}" "${WALL[tl_count]}"
ratio "cpu: tracelight report / query --count" "${CPU[tl_report]}" "${CPU[tl_count]}"
ratio "wall: zcat | grep -F / tracelight .gz  [>= 3]" "${WALL[zcat_id]}" "${WALL[tl_gz_id]}"
ratio "cpu: zcat | grep -F / tracelight .gz  [>= 3]" "${CPU[zcat_id]}" "${CPU[tl_gz_id]}"
