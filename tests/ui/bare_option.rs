#[green::main(workers)]
fn main() {}
