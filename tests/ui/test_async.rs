#[green::test]
async fn checks() {}

fn main() {}
