//! The compile errors of `#[green::main]` and `#[green::test]` say what to do.
#[test]
fn macro_misuse_is_a_clear_compile_error() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/*.rs");
}

#[green::test]
fn green_test_can_return_a_result() -> Result<(), std::io::Error> {
    let l = greennet::net::TcpListener::bind("127.0.0.1:0")?;
    l.local_addr()?;
    Ok(())
}

#[green::test]
#[should_panic(expected = "inside green test")]
fn green_test_panics_fail_the_test() {
    panic!("inside green test");
}
