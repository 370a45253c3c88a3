#[green::main]
struct Server;

fn main() {}
