//! Micro-benchmarks, each beside std threads and tokio tasks doing the same thing:
//! spawn + join, a yield ping-pong between two coroutines, an mpsc round trip, and a contended
//! mutex. `just bench` runs them; docs/benchmarks.md quotes ratios from one run.
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn spawn_join(c: &mut Criterion) {
    let mut group = c.benchmark_group("spawn_join");
    group.bench_function("greennet", |b| {
        greennet::run(|| b.iter(|| greennet::thread::spawn(|| black_box(1)).join().unwrap()))
    });
    group.bench_function("std_thread", |b| {
        b.iter(|| std::thread::spawn(|| black_box(1)).join().unwrap())
    });
    let rt = tokio_rt();
    group.bench_function("tokio", |b| {
        // Spawn from inside a task, as greennet spawns from a coroutine, and time the loop
        // there, so the figure is the task's, not block_on's.
        b.iter_custom(|iters| {
            rt.block_on(async move {
                tokio::spawn(async move {
                    let start = std::time::Instant::now();
                    for _ in 0..iters {
                        tokio::spawn(async { black_box(1) }).await.unwrap();
                    }
                    start.elapsed()
                })
                .await
                .unwrap()
            })
        })
    });
    group.finish();
}

/// One coroutine yields to the scheduler and is resumed: two context switches per yield.
fn yield_switch(c: &mut Criterion) {
    let mut group = c.benchmark_group("yield");
    group.bench_function("greennet", |b| {
        b.iter_custom(|iters| {
            greennet::run(move || {
                let start = std::time::Instant::now();
                for _ in 0..iters {
                    greennet::thread::yield_now();
                }
                start.elapsed()
            })
        })
    });
    let rt = tokio_rt();
    group.bench_function("tokio", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async move {
                tokio::spawn(async move {
                    let start = std::time::Instant::now();
                    for _ in 0..iters {
                        tokio::task::yield_now().await;
                    }
                    start.elapsed()
                })
                .await
                .unwrap()
            })
        })
    });
    group.finish();
}

/// Two parties take turns through a shared counter, yielding while it is not their turn.
/// Timed from inside the runtime, from the first spawn to the last join.
fn yield_ping_pong(c: &mut Criterion) {
    const TURNS: usize = 1_000;
    fn take_turns(turn: &AtomicUsize, me: usize, mut yield_now: impl FnMut()) {
        while turn.load(Ordering::Acquire) < TURNS {
            let t = turn.load(Ordering::Acquire);
            if t % 2 == me {
                turn.store(t + 1, Ordering::Release);
            }
            yield_now();
        }
    }
    let mut group = c.benchmark_group("yield_ping_pong_1000_turns");
    group.bench_function("greennet", |b| {
        b.iter_custom(|iters| {
            greennet::run(move || {
                let start = std::time::Instant::now();
                for _ in 0..iters {
                    let turn = Arc::new(AtomicUsize::new(0));
                    let players: Vec<_> = (0..2)
                        .map(|me| {
                            let turn = turn.clone();
                            greennet::thread::spawn(move || {
                                take_turns(&turn, me, greennet::thread::yield_now)
                            })
                        })
                        .collect();
                    players.into_iter().for_each(|p| p.join().unwrap());
                }
                start.elapsed()
            })
        })
    });
    let rt = tokio_rt();
    group.bench_function("tokio", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async move {
                tokio::spawn(async move {
                    let start = std::time::Instant::now();
                    for _ in 0..iters {
                        let turn = Arc::new(AtomicUsize::new(0));
                        let players: Vec<_> = (0..2)
                            .map(|me| {
                                let turn = turn.clone();
                                tokio::spawn(async move {
                                    while turn.load(Ordering::Acquire) < TURNS {
                                        let t = turn.load(Ordering::Acquire);
                                        if t % 2 == me {
                                            turn.store(t + 1, Ordering::Release);
                                        }
                                        tokio::task::yield_now().await;
                                    }
                                })
                            })
                            .collect();
                        for p in players {
                            p.await.unwrap();
                        }
                    }
                    start.elapsed()
                })
                .await
                .unwrap()
            })
        })
    });
    group.finish();
}

/// A request goes one way on a channel and the answer comes back on another.
fn mpsc_round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("mpsc_round_trip");
    group.bench_function("greennet", |b| {
        greennet::run(|| {
            let (to_tx, to_rx) = greennet::sync::mpsc::channel::<u64>();
            let (back_tx, back_rx) = greennet::sync::mpsc::channel::<u64>();
            let echo = greennet::thread::spawn(move || {
                for v in to_rx {
                    back_tx.send(v).unwrap();
                }
            });
            b.iter(|| {
                to_tx.send(black_box(7)).unwrap();
                back_rx.recv().unwrap()
            });
            drop(to_tx);
            echo.join().unwrap();
        })
    });
    group.bench_function("std_thread", |b| {
        let (to_tx, to_rx) = std::sync::mpsc::channel::<u64>();
        let (back_tx, back_rx) = std::sync::mpsc::channel::<u64>();
        let echo = std::thread::spawn(move || {
            for v in to_rx {
                back_tx.send(v).unwrap();
            }
        });
        b.iter(|| {
            to_tx.send(black_box(7)).unwrap();
            back_rx.recv().unwrap()
        });
        drop(to_tx);
        echo.join().unwrap();
    });
    let rt = tokio_rt();
    group.bench_function("tokio", |b| {
        let (to_tx, mut to_rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
        let (back_tx, back_rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
        rt.spawn(async move {
            while let Some(v) = to_rx.recv().await {
                back_tx.send(v).unwrap();
            }
        });
        // The requester is a task too, as greennet's is a coroutine.
        let requester = std::sync::Arc::new(tokio::sync::Mutex::new((to_tx, back_rx)));
        b.iter_custom(|iters| {
            let requester = requester.clone();
            rt.block_on(async move {
                tokio::spawn(async move {
                    let mut ends = requester.lock().await;
                    let start = std::time::Instant::now();
                    for _ in 0..iters {
                        ends.0.send(black_box(7)).unwrap();
                        ends.1.recv().await.unwrap();
                    }
                    start.elapsed()
                })
                .await
                .unwrap()
            })
        });
    });
    group.finish();
}

/// Eight parties each take a shared mutex 1,000 times.
fn contended_mutex(c: &mut Criterion) {
    const PARTIES: usize = 8;
    const ROUNDS: usize = 1_000;
    let mut group = c.benchmark_group("contended_mutex_8x1000");
    group.bench_function(BenchmarkId::new("greennet", PARTIES), |b| {
        b.iter(|| {
            greennet::run(|| {
                let m = Arc::new(greennet::sync::Mutex::new(0usize));
                let hs: Vec<_> = (0..PARTIES)
                    .map(|_| {
                        let m = m.clone();
                        greennet::thread::spawn(move || {
                            for _ in 0..ROUNDS {
                                *m.lock().unwrap() += 1;
                            }
                        })
                    })
                    .collect();
                hs.into_iter().for_each(|h| h.join().unwrap());
                assert_eq!(*m.lock().unwrap(), PARTIES * ROUNDS);
            })
        })
    });
    group.bench_function(BenchmarkId::new("std_thread", PARTIES), |b| {
        b.iter(|| {
            let m = Arc::new(std::sync::Mutex::new(0usize));
            let hs: Vec<_> = (0..PARTIES)
                .map(|_| {
                    let m = m.clone();
                    std::thread::spawn(move || {
                        for _ in 0..ROUNDS {
                            *m.lock().unwrap() += 1;
                        }
                    })
                })
                .collect();
            hs.into_iter().for_each(|h| h.join().unwrap());
        })
    });
    let rt = tokio_rt();
    group.bench_function(BenchmarkId::new("tokio", PARTIES), |b| {
        b.iter(|| {
            rt.block_on(async {
                let m = Arc::new(tokio::sync::Mutex::new(0usize));
                let hs: Vec<_> = (0..PARTIES)
                    .map(|_| {
                        let m = m.clone();
                        tokio::spawn(async move {
                            for _ in 0..ROUNDS {
                                *m.lock().await += 1;
                            }
                        })
                    })
                    .collect();
                for h in hs {
                    h.await.unwrap();
                }
            })
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    spawn_join,
    yield_switch,
    yield_ping_pong,
    mpsc_round_trip,
    contended_mutex
);
criterion_main!(benches);
