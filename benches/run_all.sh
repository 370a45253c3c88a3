#!/usr/bin/env bash
# Every benchmark, then the report: what `just bench` runs. About 30 minutes on 2 cores.
# Options pass through the environment: LOAD_SECONDS (10), LOAD_ROUNDS (3), HTTP_ROUNDS (15), and
# GREENNET_BENCH_SYSCTL=no to keep capacity.sh from raising vm.max_map_count.
set -euo pipefail
cd "$(dirname "$0")/.."
benches/monitor.sh
cargo bench -p benches --bench micro -- --warm-up-time 1 --measurement-time 5
benches/load.sh "${LOAD_SECONDS:-10}" "${LOAD_ROUNDS:-3}" 50 500 5000
benches/capacity.sh
benches/profile.sh
benches/patch.sh
cargo run --release -q -p benches --example bench_report
