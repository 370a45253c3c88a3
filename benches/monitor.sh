#!/usr/bin/env bash
# What the blocking monitor costs: greennet's micro-benchmarks (spawn+join, yield, yield
# ping-pong, mpsc round trip, contended mutex) run with GREENNET_MONITOR=0 and =1, saved as
# criterion baselines `monitor-off` and `monitor-on`, which bench_report compares. Runs before
# the main micro-benchmarks in run_all.sh, so that their `new` results are the default run's.
set -euo pipefail
cd "$(dirname "$0")/.."
for mode in off on; do
    flag=0
    [ "$mode" = on ] && flag=1
    GREENNET_MONITOR=$flag cargo bench -q -p benches --bench micro -- \
        --warm-up-time 1 --measurement-time 4 --save-baseline "monitor-$mode" greennet
done
