//! The conformance harness shared by the `conformance_*` suites: each case body is compiled
//! three times, with std's items in scope, with greennet's inside a coroutine, and with
//! greennet's on a plain thread, so one body states std's contract for all three.

/// `conformance! { std { use ...; } green { use ...; } case => { body } ... }`
macro_rules! conformance {
    (std { $($std_use:item)* } green { $($green_use:item)* } $($case:ident => $body:block)*) => {
        mod std_impl {
            #[allow(unused_imports)]
            use super::*;
            $(#[allow(unused_imports)] $std_use)*
            $(#[test] fn $case() $body)*
        }
        mod green_coroutine {
            #[allow(unused_imports)]
            use super::*;
            $(#[allow(unused_imports)] $green_use)*
            $(#[test] fn $case() { greennet::run(|| $body) })*
        }
        mod green_thread {
            #[allow(unused_imports)]
            use super::*;
            $(#[allow(unused_imports)] $green_use)*
            $(#[test] fn $case() $body)*
        }
    };
}
