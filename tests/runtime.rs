//! Runtime configuration and `#[green::main]`, through child processes (each configures its own
//! runtime) and in this process (whose runtime starts with the first test that needs it).
use std::process::{Command, Output};

fn probe(bin: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .env_remove("GREENNET_WORKERS")
        .env_remove("GREENNET_STACK_SIZE")
        .env("RUST_BACKTRACE", "0");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run probe")
}

const PROBE: &str = env!("CARGO_BIN_EXE_greennet-probe");
const MAIN_PROBE: &str = env!("CARGO_BIN_EXE_greennet-main-probe");

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn defaults_are_one_worker_per_core_and_64k_stacks() {
    let out = probe(PROBE, &["config"], &[]);
    let cores = std::thread::available_parallelism().unwrap().get();
    assert_eq!(
        stdout(&out).trim(),
        format!("workers={cores} stack_size=65536"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn environment_sets_workers_and_stack_size() {
    let env = [("GREENNET_WORKERS", "3"), ("GREENNET_STACK_SIZE", "131072")];
    let out = probe(PROBE, &["config"], &env);
    assert_eq!(stdout(&out).trim(), "workers=3 stack_size=131072");
}

#[test]
fn code_takes_precedence_over_environment() {
    let env = [("GREENNET_WORKERS", "1"), ("GREENNET_STACK_SIZE", "40000")];
    let out = probe(PROBE, &["config-code"], &env);
    assert_eq!(stdout(&out).trim(), "workers=3 stack_size=131072");
}

#[test]
fn malformed_environment_is_a_clear_error() {
    let out = probe(PROBE, &["config"], &[("GREENNET_WORKERS", "many")]);
    assert_eq!(out.status.code(), Some(3));
    let text = stdout(&out);
    assert!(text.contains("kind=InvalidInput"), "{text}");
    assert!(text.contains("GREENNET_WORKERS=\"many\""), "{text}");
    let out = probe(PROBE, &["config"], &[("GREENNET_STACK_SIZE", "0")]);
    assert!(stdout(&out).contains("at least 1"), "{}", stdout(&out));
}

#[test]
fn reconfiguring_a_running_runtime_is_an_error() {
    let running = greennet::runtime::Builder::new().start().unwrap();
    assert_eq!(greennet::runtime::config(), Some(running));
    // Asking again for what runs is fine; asking for something else is not.
    greennet::runtime::Builder::new()
        .workers(running.workers)
        .start()
        .unwrap();
    let err = greennet::runtime::Builder::new()
        .workers(running.workers + 1)
        .start()
        .unwrap_err();
    assert!(err.to_string().contains("already started"), "{err}");
    let err = greennet::runtime::Builder::new()
        .stack_size(running.stack_size * 2)
        .start()
        .unwrap_err();
    assert!(err.to_string().contains("stack_size"), "{err}");
    let panicked = std::panic::catch_unwind(|| {
        greennet::runtime::Builder::new()
            .workers(running.workers + 1)
            .run(|| ())
    });
    assert!(panicked.is_err());
}

#[test]
fn stack_overflow_is_reported_with_name_and_setting() {
    let out = probe(PROBE, &["overflow"], &[]);
    let (o, e) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "{o}\n{e}");
    assert!(
        e.contains("coroutine 'deep' has overflowed its stack of 65536 bytes"),
        "{e}"
    );
    assert!(e.contains("GREENNET_STACK_SIZE"), "{e}");
    assert!(
        o.contains("join error: coroutine 'deep' has overflowed"),
        "{o}"
    );
    assert!(o.contains("after overflow: 7"), "{o}");
}

#[test]
fn green_main_runs_the_body_with_its_options() {
    let out = probe(MAIN_PROBE, &["ok"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "answer=42");
    let out = probe(MAIN_PROBE, &["name"], &[("GREENNET_WORKERS", "1")]);
    let text = stdout(&out);
    assert!(text.contains("name=Some(\"main\")"), "{text}");
    // The macro's `workers = 2` beats the environment's 1.
    assert!(text.contains("workers: 2"), "{text}");
}

#[test]
fn green_main_error_exits_like_std() {
    let out = probe(MAIN_PROBE, &["fail"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("Error: \"the body failed\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_child_that_panics_as_it_starts_is_reported() {
    let out = probe(PROBE, &["panic-child"], &[]);
    let e = stderr(&out);
    assert!(out.status.success(), "{e}");
    assert!(e.contains("thread 'eager' panicked at"), "{e}");
    assert!(e.contains("child gave up at once"), "{e}");
}

#[test]
fn green_main_panic_exits_like_std() {
    let out = probe(MAIN_PROBE, &["panic"], &[]);
    assert_eq!(out.status.code(), Some(101));
    let e = stderr(&out);
    assert!(e.contains("thread 'main' panicked at"), "{e}");
    assert!(e.contains("the body panicked"), "{e}");
}

#[test]
fn the_mapping_limit_is_a_spawn_error_that_names_the_sysctl() {
    let out = probe(PROBE, &["until-refused"], &[]);
    let (o, e) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "{o}\n{e}");
    assert!(o.contains("kind=OutOfMemory"), "{o}");
    // Each coroutine stack is two mappings; where the kernel's limit is what stopped us, the
    // error says so and names the setting.
    let limit: usize = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let parked: usize = o
        .split_whitespace()
        .find_map(|w| w.strip_prefix("parked="))
        .unwrap()
        .parse()
        .unwrap();
    if parked * 2 + 1_000 >= limit {
        assert!(o.contains("vm.max_map_count"), "{o}");
    }
    // The refusal is translated quietly: no panic message from may's allocator.
    assert!(!e.contains("panicked"), "{e}");
}
