#[green::main(workers = "four")]
fn main() {}
