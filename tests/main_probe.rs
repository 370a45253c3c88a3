//! A `#[green::main]` program for the tests: `greennet-main-probe ok|fail|panic|name`.
use std::error::Error;

#[green::main(workers = 2)]
fn main() -> Result<(), Box<dyn Error>> {
    match std::env::args().nth(1).as_deref() {
        Some("ok") => {
            let answer = greennet::thread::spawn(|| 40 + 2).join().unwrap();
            println!("answer={answer}");
            Ok(())
        }
        // A non-Send error type, as `Box<dyn Error>` is: std prints it and exits with 1.
        Some("fail") => Err("the body failed".into()),
        Some("panic") => panic!("the body panicked"),
        Some("name") => {
            println!("name={:?}", greennet::thread::current().name());
            println!("config={:?}", greennet::runtime::config());
            Ok(())
        }
        other => Err(format!("unknown mode {other:?}").into()),
    }
}
