#!/usr/bin/env bash
# Where the time goes: server CPU and system calls per request, for the three event-loop servers
# in both workloads at 500 connections, counted with `perf stat` while wrk drives the server.
# Needs perf (Debian package linux-perf) and kernel tracepoints; skips itself if either is
# missing. Writes target/bench/profile.tsv for bench_report.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/bench/profile.tsv
mkdir -p target/bench
if ! command -v perf >/dev/null || ! perf stat -e 'syscalls:sys_enter_read' -- true >/dev/null 2>&1; then
    echo "perf or its syscall tracepoints are unavailable: skipping the profile" >&2
    rm -f "$out"
    exit 0
fi
cargo build --release -q -p benches --examples
ulimit -n "$(ulimit -Hn)"
secs=${1:-5}
calls=(recvfrom read sendto write epoll_wait epoll_ctl accept4 fcntl ioctl close futex)
events="task-clock"
for c in "${calls[@]}"; do events="$events,syscalls:sys_enter_$c"; done
printf 'server\tmode\trequests\tcpu_us_per_req\tsyscalls_per_req\treads_per_req\tepoll_ctl_per_req\n' > "$out"
port=18800
for mode in close keep-alive; do
    for server in green may tokio; do
        port=$((port + 1))
        "target/release/examples/bench_$server" "$port" "$mode" >/dev/null 2>&1 &
        pid=$!
        for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
        header=()
        [ "$mode" = close ] && header=(-H 'Connection: close')
        perf stat -x, -e "$events" -p "$pid" -o target/bench/perf.csv -- sleep "$secs" &
        perf_pid=$!
        report=$(timeout $((secs + 30)) wrk -t2 -c500 -d"${secs}s" --timeout 2s "${header[@]}" \
            "http://127.0.0.1:$port/" || true)
        wait "$perf_pid" || true
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        requests=$(awk '/requests in/ {print $1}' <<<"$report")
        awk -F, -v s="$server" -v m="$mode" -v r="${requests:-0}" '
            $3 == "task-clock" { cpu = $1 }
            $3 ~ /^syscalls:/ { n = $1 + 0; total += n
                if ($3 ~ /enter_(recvfrom|read)$/) reads += n
                if ($3 ~ /enter_epoll_ctl$/) ctl += n }
            END { if (r > 0) printf "%s\t%s\t%d\t%.2f\t%.2f\t%.2f\t%.2f\n", s, m, r, cpu * 1000 / r, total / r, reads / r, ctl / r }
        ' target/bench/perf.csv | tee -a "$out"
    done
done
