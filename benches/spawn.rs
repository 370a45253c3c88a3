//! Spawn-and-join cost: a greennet coroutine (spawned from a coroutine, the server's case)
//! beside a std thread. `just bench` runs it; see docs/benchmarks.md for how results are quoted.
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

fn spawn_join(c: &mut Criterion) {
    let mut group = c.benchmark_group("spawn_join");
    group.bench_function("greennet_coroutine", |b| {
        greennet::run(|| {
            b.iter(|| greennet::thread::spawn(|| black_box(1)).join().unwrap());
        })
    });
    group.bench_function("std_thread", |b| {
        b.iter(|| std::thread::spawn(|| black_box(1)).join().unwrap());
    });
    group.finish();
}

criterion_group!(benches, spawn_join);
criterion_main!(benches);
