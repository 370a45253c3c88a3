#!/usr/bin/env bash
# The load benchmark: the same hello server on std threads, greennet, raw may and tokio, driven by
# wrk on 127.0.0.1 in two workloads (close: a new connection per request, as the seed; keep-alive)
# at several connection counts, then an HTTP hello world with keep-alive on greennet::http,
# may_minihttp and hyper (HTTP_CONNECTIONS, default 500). Servers are interleaved within each
# round, several rounds; every run is bounded in time. Writes target/bench/load.tsv (one line per
# run) for bench_report.
#
# Usage: benches/load.sh [SECONDS] [ROUNDS] [CONNECTIONS...]   (defaults: 10 3 50 500 5000)
# The HTTP comparison runs HTTP_ROUNDS rounds (default 15, or ROUNDS if more): one in each of
# the ROUNDS rounds, then rounds of its own. Its servers differ by less than one round's noise,
# and five rounds left its verdict to chance. HTTP_ONLY=1 runs only the HTTP servers, into
# target/bench/load-http.tsv (the report's load.tsv is left alone).
set -euo pipefail
secs=${1:-10}
rounds=${2:-3}
shift $(( $# > 2 ? 2 : $# ))
conns=("$@")
[ ${#conns[@]} -gt 0 ] || conns=(50 500 5000)
servers=(threaded green may tokio)
modes=(close keep-alive)
http_servers=(http_green http_minihttp http_hyper)
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release -q -p benches --examples
ulimit -n "$(ulimit -Hn)"
mkdir -p target/bench
out=target/bench/load.tsv
[ "${HTTP_ONLY:-0}" = 1 ] && out=target/bench/load-http.tsv
printf 'round\tserver\tmode\tconnections\treq_per_s\tp50_ms\tp99_ms\terrors\n' > "$out"

# wrk prints latencies as 850.00us, 1.20ms or 1.02s; the report wants milliseconds.
to_ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /[0-9]s$/ && v !~ /ms$/) n *= 1000; printf "%.3f", n }'; }

port=18400
# One wrk run: SERVER MODE CONNECTIONS, appended to $out.
run() {
    local server=$1 mode=$2 c=$3
    # A fresh port per run keeps one run's TIME_WAIT sockets out of the next.
    port=$((port + 1))
    "target/release/examples/bench_$server" "$port" "$mode" >/dev/null 2>&1 &
    local pid=$!
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
    local header=()
    [ "$mode" = close ] && header=(-H 'Connection: close')
    local report
    report=$(timeout $((secs + 30)) wrk -t2 -c"$c" -d"${secs}s" --timeout 2s --latency \
        "${header[@]}" "http://127.0.0.1:$port/" || true)
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    local rps p50 p99 errors
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$report")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$report")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$report")
    errors=$(awk '/Socket errors/ { gsub(",", ""); s += $4 + $6 + $8 + $10 } /Non-2xx/ { s += $NF } END { print s + 0 }' <<<"$report")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$server" "$mode" "$c" "${rps:-0}" \
        "$(to_ms "${p50:-0}")" "$(to_ms "${p99:-0}")" "${errors:-0}" | tee -a "$out"
}

# HTTP hello world, keep-alive: greennet::http beside may_minihttp and hyper on tokio.
http_round() {
    for c in ${HTTP_CONNECTIONS:-500}; do
        for server in "${http_servers[@]}"; do
            run "$server" http "$c"
        done
    done
}

for round in $(seq "$rounds"); do
    [ "${HTTP_ONLY:-0}" = 1 ] || for mode in "${modes[@]}"; do
        for c in "${conns[@]}"; do
            for server in "${servers[@]}"; do
                run "$server" "$mode" "$c"
            done
        done
    done
    http_round
done
# The HTTP comparison's own rounds, after the others.
http_rounds=${HTTP_ROUNDS:-15}
[ "${HTTP_ONLY:-0}" = 1 ] && http_rounds=$rounds
for round in $(seq $((rounds + 1)) "$http_rounds"); do
    http_round
done
