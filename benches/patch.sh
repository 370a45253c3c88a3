#!/usr/bin/env bash
# The patch benchmark: the same unmodified ureq scraper (patch/examples/scraper.rs, 100 pages
# fetched 100 at a time from a local service that takes 100 ms per page) built with greennet's
# `patch` feature and without it, run alternately. Prints each run and the median ratio, and
# writes target/bench/patch.tsv for bench_report.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
out=target/bench/patch.tsv
mkdir -p target/bench
manifest=patch/Cargo.toml
cargo build --release -q --manifest-path "$manifest" --example scraper
cp patch/target/release/examples/scraper target/bench/scraper-patch
cargo build --release -q --manifest-path "$manifest" --example scraper --no-default-features
cp patch/target/release/examples/scraper target/bench/scraper-nopatch
printf 'variant\tround\tms\n' > "$out"
for round in $(seq "$rounds"); do
    for variant in patch nopatch; do
        line=$(timeout 300 "target/bench/scraper-$variant" 100 100 100)
        echo "$line"
        ms=$(sed -E 's/.*: ([0-9]+) ms$/\1/' <<<"$line")
        printf '%s\t%s\t%s\n' "$variant" "$round" "$ms" >> "$out"
    done
done
median() { awk -F'\t' -v v="$1" '$1 == v { print $3 }' "$out" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
on=$(median patch)
off=$(median nopatch)
awk -v on="$on" -v off="$off" 'BEGIN { printf "median: patch %d ms, without %d ms: %.1fx faster with patch\n", on, off, off / on }'
