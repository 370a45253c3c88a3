//! sync conformance: each case is one body, run against std::sync with std::thread, and against
//! greennet::sync with greennet::thread both inside a coroutine and on a plain thread. The
//! expectations come from std's documented contract.
use std::time::{Duration, Instant};

#[macro_use]
#[path = "support/conformance.rs"]
mod support;

conformance! {
    std { use std::{sync, thread}; }
    green { use greennet::{sync, thread}; }

    mutex_excludes_and_try_lock_reports_would_block => {
        let m = sync::Mutex::new(5);
        {
            let mut g = m.lock().unwrap();
            *g += 1;
            assert!(matches!(m.try_lock(), Err(sync::TryLockError::WouldBlock)));
        }
        assert_eq!(*m.try_lock().unwrap(), 6);
        let mut m = m;
        *m.get_mut().unwrap() += 1;
        assert_eq!(m.into_inner().unwrap(), 7);
    }

    mutex_serialises_many_lockers => {
        let m = sync::Arc::new(sync::Mutex::new(0u32));
        let hs: Vec<_> = (0..16).map(|_| {
            let m = m.clone();
            thread::spawn(move || for _ in 0..200 {
                let mut g = m.lock().unwrap();
                let v = *g;
                thread::yield_now();
                *g = v + 1;
            })
        }).collect();
        hs.into_iter().for_each(|h| h.join().unwrap());
        assert_eq!(*m.lock().unwrap(), 3200);
    }

    a_panic_while_locked_poisons => {
        let m = sync::Arc::new(sync::Mutex::new(1));
        let m2 = m.clone();
        let r = thread::spawn(move || {
            let _g = m2.lock().unwrap();
            panic!("poison it");
        }).join();
        assert!(r.is_err());
        assert!(m.is_poisoned());
        let g = m.lock().unwrap_err().into_inner();
        assert_eq!(*g, 1);
        drop(g);
        assert!(matches!(m.try_lock(), Err(sync::TryLockError::Poisoned(_))));
        m.clear_poison();
        assert!(m.lock().is_ok());
    }

    condvar_notify_wakes_a_waiter => {
        let pair = sync::Arc::new((sync::Mutex::new(false), sync::Condvar::new()));
        let p2 = pair.clone();
        let h = thread::spawn(move || {
            let (m, c) = &*p2;
            let mut ready = m.lock().unwrap();
            while !*ready {
                ready = c.wait(ready).unwrap();
            }
        });
        thread::sleep(Duration::from_millis(20));
        *pair.0.lock().unwrap() = true;
        pair.1.notify_one();
        h.join().unwrap();
    }

    condvar_wait_while_and_notify_all => {
        let state = sync::Arc::new((sync::Mutex::new(0u32), sync::Condvar::new()));
        let hs: Vec<_> = (0..5).map(|_| {
            let s = state.clone();
            thread::spawn(move || {
                let g = s.1.wait_while(s.0.lock().unwrap(), |n| *n == 0).unwrap();
                *g
            })
        }).collect();
        thread::sleep(Duration::from_millis(20));
        *state.0.lock().unwrap() = 9;
        state.1.notify_all();
        for h in hs {
            assert_eq!(h.join().unwrap(), 9);
        }
    }

    condvar_wait_timeout_times_out => {
        let m = sync::Mutex::new(());
        let c = sync::Condvar::new();
        let start = Instant::now();
        let (g, r) = c.wait_timeout(m.lock().unwrap(), Duration::from_millis(30)).unwrap();
        assert!(r.timed_out());
        drop(g);
        assert!(start.elapsed() >= Duration::from_millis(30));
        assert!(start.elapsed() < Duration::from_secs(5));
        let (_g, r) = c
            .wait_timeout_while(m.lock().unwrap(), Duration::from_millis(10), |_| true)
            .unwrap();
        assert!(r.timed_out());
    }

    barrier_releases_all_with_one_leader => {
        let b = sync::Arc::new(sync::Barrier::new(6));
        let hs: Vec<_> = (0..6).map(|_| {
            let b = b.clone();
            thread::spawn(move || b.wait().is_leader())
        }).collect();
        let leaders = hs.into_iter().map(|h| h.join().unwrap()).filter(|l| *l).count();
        assert_eq!(leaders, 1);
    }

    channel_delivers_in_order_and_reports_disconnect => {
        let (tx, rx) = sync::mpsc::channel();
        let h = thread::spawn(move || for i in 0..100 { tx.send(i).unwrap(); });
        let got: Vec<i32> = rx.iter().collect();
        h.join().unwrap();
        assert_eq!(got, (0..100).collect::<Vec<_>>());
        assert_eq!(rx.recv(), Err(sync::mpsc::RecvError));
        assert_eq!(rx.try_recv(), Err(sync::mpsc::TryRecvError::Disconnected));
    }

    try_recv_and_recv_timeout => {
        let (tx, rx) = sync::mpsc::channel::<u8>();
        assert_eq!(rx.try_recv(), Err(sync::mpsc::TryRecvError::Empty));
        let start = Instant::now();
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(30)),
            Err(sync::mpsc::RecvTimeoutError::Timeout)
        );
        assert!(start.elapsed() >= Duration::from_millis(30));
        tx.send(3).unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(3));
        assert_eq!(rx.try_iter().count(), 0);
        drop(rx);
        assert_eq!(tx.send(4), Err(sync::mpsc::SendError(4)));
    }

    bounded_channel_makes_senders_wait => {
        let (tx, rx) = sync::mpsc::sync_channel(2);
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        assert_eq!(tx.try_send(3), Err(sync::mpsc::TrySendError::Full(3)));
        let h = thread::spawn(move || { tx.send(3).unwrap(); tx.send(4).unwrap(); });
        thread::sleep(Duration::from_millis(20));
        let got: Vec<i32> = rx.iter().take(4).collect();
        h.join().unwrap();
        assert_eq!(got, [1, 2, 3, 4]);
    }

    rendezvous_send_returns_after_the_receive => {
        let (tx, rx) = sync::mpsc::sync_channel(0);
        let received = sync::Arc::new(sync::atomic::AtomicBool::new(false));
        let r2 = received.clone();
        let h = thread::spawn(move || {
            thread::sleep(Duration::from_millis(30));
            let v = rx.recv().unwrap();
            r2.store(true, sync::atomic::Ordering::SeqCst);
            v
        });
        tx.send(7).unwrap();
        // send returned: the receiver has the message (it may not have stored the flag yet).
        assert_eq!(h.join().unwrap(), 7);
        assert!(received.load(sync::atomic::Ordering::SeqCst));
    }

    into_iter_ends_when_senders_are_gone => {
        let (tx, rx) = sync::mpsc::channel();
        let tx2 = tx.clone();
        thread::spawn(move || tx.send(1).unwrap());
        thread::spawn(move || tx2.send(2).unwrap());
        let mut got: Vec<i32> = rx.into_iter().collect();
        got.sort();
        assert_eq!(got, [1, 2]);
    }

    rwlock_shares_reads_and_excludes_writes => {
        let l = sync::Arc::new(sync::RwLock::new(1));
        {
            let a = l.read().unwrap();
            let b = l.try_read().unwrap();
            assert_eq!(*a + *b, 2);
            assert!(matches!(l.try_write(), Err(sync::TryLockError::WouldBlock)));
        }
        *l.write().unwrap() += 1;
        let writers: Vec<_> = (0..8).map(|_| {
            let l = l.clone();
            thread::spawn(move || for _ in 0..50 {
                let mut w = l.write().unwrap();
                let v = *w;
                thread::yield_now();
                *w = v + 1;
            })
        }).collect();
        let readers: Vec<_> = (0..8).map(|_| {
            let l = l.clone();
            thread::spawn(move || for _ in 0..50 {
                assert!(*l.read().unwrap() >= 2);
                thread::yield_now();
            })
        }).collect();
        writers.into_iter().chain(readers).for_each(|h| h.join().unwrap());
        assert_eq!(*l.read().unwrap(), 402);
    }

    rwlock_write_panic_poisons => {
        let l = sync::Arc::new(sync::RwLock::new(0));
        let l2 = l.clone();
        assert!(thread::spawn(move || { let _w = l2.write().unwrap(); panic!("poison"); }).join().is_err());
        assert!(l.is_poisoned());
        assert!(l.read().is_err());
        l.clear_poison();
        assert!(l.read().is_ok());
    }

    once_runs_exactly_once => {
        static ONCE: sync::Once = sync::Once::new();
        static RUNS: sync::atomic::AtomicUsize = sync::atomic::AtomicUsize::new(0);
        let hs: Vec<_> = (0..8).map(|_| thread::spawn(|| {
            ONCE.call_once(|| {
                thread::sleep(Duration::from_millis(20));
                RUNS.fetch_add(1, sync::atomic::Ordering::SeqCst);
            });
            assert!(ONCE.is_completed());
        })).collect();
        hs.into_iter().for_each(|h| h.join().unwrap());
        assert_eq!(RUNS.load(sync::atomic::Ordering::SeqCst), 1);
    }

    once_lock_initialises_once => {
        let cell = sync::Arc::new(sync::OnceLock::new());
        assert!(cell.get().is_none());
        let hs: Vec<_> = (0..8).map(|i| {
            let cell = cell.clone();
            thread::spawn(move || *cell.get_or_init(|| { thread::sleep(Duration::from_millis(20)); i }))
        }).collect();
        let seen: Vec<i32> = hs.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(seen.iter().all(|v| *v == seen[0]));
        assert_eq!(cell.set(99), Err(99));
        let mut cell = sync::Arc::try_unwrap(cell).unwrap();
        assert_eq!(cell.take(), Some(seen[0]));
        assert_eq!(cell.into_inner(), None);
    }

    lazy_lock_makes_its_value_on_first_use => {
        let lazy = sync::LazyLock::new(|| vec![1, 2, 3]);
        assert_eq!(format!("{lazy:?}"), "LazyLock(<uninit>)");
        assert_eq!(lazy.len(), 3);
        assert_eq!(*sync::LazyLock::force(&lazy), [1, 2, 3]);
        assert_eq!(format!("{lazy:?}"), "LazyLock([1, 2, 3])");
    }
}
