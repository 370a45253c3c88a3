# Everyday commands. Each is one line that calls cargo or a script in the repo.

# Run the seed's hello server on greennet (127.0.0.1:8000, or the port given).
demo port="8000":
    cargo run --release --example green_hello -- {{port}}

# Run every test: the workspace, then the `patch` feature's suite (a workspace of its own).
test:
    cargo test --workspace && cargo test --manifest-path patch/Cargo.toml

# Formatting and lints, as CI checks them.
lint:
    cargo fmt --all --check && cargo clippy --workspace --all-targets -- -D warnings

# Every benchmark (criterion micro-benchmarks, the wrk load matrix, capacity, the patch
# scraper with and without the feature), then the report
# that rewrites the generated part of docs/benchmarks.md and docs/load.svg. About 30 minutes.
bench:
    benches/run_all.sh

# The soak run: servers, clients, pools and timeouts under a mixed load for SECS seconds (default
# 60), checking that no byte is lost and no descriptor or memory leaks; ends with `soak: PASS`.
soak secs="60":
    cargo run --release -p examples --example soak -- {{secs}}
