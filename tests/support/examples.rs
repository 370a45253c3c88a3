//! For the tests of the `examples` package: where cargo put the example binaries.
use std::path::PathBuf;

/// The example binary cargo built next to the running test's own executable (`cargo test` on
/// the `examples` package builds every example first).
pub fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let path = profile_dir.join("examples").join(name);
    assert!(path.exists(), "{} is not built", path.display());
    path
}
