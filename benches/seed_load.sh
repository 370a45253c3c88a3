#!/usr/bin/env bash
# The seed workload (one request per connection, five writes, close) against the threaded
# baseline and its greennet migration, interleaved, several rounds, on 127.0.0.1 only.
# Usage: benches/seed_load.sh [CONNECTIONS] [SECONDS] [ROUNDS]
# Extra environment (e.g. GREENNET_WORKERS=1) is passed to the servers.
set -euo pipefail
conns=${1:-500}
secs=${2:-8}
rounds=${3:-3}
port=18201
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release -q --example threaded_baseline --example green_hello
ulimit -n "$(ulimit -Hn)"
for round in $(seq "$rounds"); do
    for name in threaded_baseline green_hello; do
        "target/release/examples/$name" "$port" >/dev/null 2>&1 &
        pid=$!
        for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
        rps=$(timeout $((secs + 30)) wrk -t2 -c"$conns" -d"${secs}s" --timeout 2s \
            -H 'Connection: close' "http://127.0.0.1:$port/" | awk '/Requests\/sec/ {print $2}')
        echo "round=$round server=$name connections=$conns req/s=$rps"
        kill "$pid"
        wait "$pid" 2>/dev/null || true
    done
done
