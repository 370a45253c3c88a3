#!/usr/bin/env bash
# Capacity: resident memory per held idle keep-alive connection (1,000 and 19,000 connections;
# processes here may hold at most 20,000 files) for each server, and per parked coroutine
# (greennet and raw may) at 100,000 and 1,000,000 coroutines.
#
# Each coroutine stack is two kernel mappings, so 100,000 coroutines need vm.max_map_count above
# the default 65,530. Run as root, this script RAISES vm.max_map_count to 2,200,000 for the
# coroutine runs, says so, and restores the old value when it exits. Set GREENNET_BENCH_SYSCTL=no
# to leave the kernel alone (the runs beyond the limit then record the refusal).
# Writes target/bench/capacity.tsv for bench_report.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p benches --examples
ulimit -n "$(ulimit -Hn)"
mkdir -p target/bench
out=target/bench/capacity.tsv
printf 'kind\tserver\tcount\tresult\tbytes_each\tkernel_stack_bytes_each\n' > "$out"

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
kernel_stack_kib() { awk '/^KernelStack:/ {print $2}' /proc/meminfo; }

port=18700
for n in 1000 19000; do
    for server in threaded green may tokio; do
        port=$((port + 1))
        "target/release/examples/bench_$server" "$port" keep-alive >/dev/null 2>&1 &
        pid=$!
        for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
        # Warm the server with a few connections, let them go, then take the baseline.
        target/release/examples/bench_hold "$port" 10 </dev/null >/dev/null
        sleep 0.5
        rss0=$(rss_kib "$pid")
        ks0=$(kernel_stack_kib)
        coproc HOLD { exec target/release/examples/bench_hold "$port" "$n"; }
        line=""
        read -r -t 120 -u "${HOLD[0]}" line || line="no answer in 120 s"
        sleep 1
        rss1=$(rss_kib "$pid")
        ks1=$(kernel_stack_kib)
        alive=yes
        kill -0 "$pid" 2>/dev/null || alive=no
        # Closing the client's standard input lets it exit and drop its connections.
        hold_pid=$HOLD_PID
        exec {HOLD[1]}>&-
        wait "$hold_pid" 2>/dev/null || true
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        case "$line" in
            "held $n") result="held"; held=$n ;;
            "failed after "*) held=${line#failed after }; held=${held%%:*}; result="failed after $held" ;;
            *) held=0; result="$line" ;;
        esac
        [ "$alive" = yes ] || result="$result; server died"
        each=0; kst=0
        if [ "$alive" = yes ] && [ "$held" -gt 0 ]; then
            each=$(( (rss1 - rss0) * 1024 / held ))
            kst=$(( (ks1 - ks0) * 1024 / held ))
        fi
        printf 'connections\t%s\t%s\t%s\t%s\t%s\n' "$server" "$n" "$result" "$each" "$kst" | tee -a "$out"
    done
done

park() { # KIND COUNT [may]
    local line
    line=$(target/release/examples/bench_park "$2" ${3:-} 2>&1 | tail -1) || true
    local result each=0
    case "$line" in
        "parked "*) result=parked; each=$(awk '{print $4}' <<<"$line") ;;
        "refused after "*) result="${line%%:*} (vm.max_map_count $(cat /proc/sys/vm/max_map_count))" ;;
        *) result=$(tr '\t|' '  ' <<<"$line") ;;
    esac
    printf 'coroutines\t%s\t%s\t%s\t%s\t0\n' "$1" "$2" "$result" "$each" | tee -a "$out"
}

limit=$(cat /proc/sys/vm/max_map_count)
echo "vm.max_map_count is $limit"
park green 100000
if [ "${GREENNET_BENCH_SYSCTL:-yes}" != no ] && [ -w /proc/sys/vm/max_map_count ]; then
    echo "RAISING vm.max_map_count from $limit to 2200000 for the coroutine runs (restored on exit)"
    trap 'echo "$limit" > /proc/sys/vm/max_map_count; echo "vm.max_map_count restored to $limit"' EXIT
    echo 2200000 > /proc/sys/vm/max_map_count
    printf 'sysctl\tvm.max_map_count\t2200000\traised from %s for the runs below\t0\t0\n' "$limit" >> "$out"
    for n in 100000 1000000; do
        park green "$n"
        park may "$n" may
    done
fi
