//! The classifier micro-benchmark of `benches/classify.rs`, runnable as an example:
//! `cargo run --release --example classify_bench`.

#[path = "../benches/classify.rs"]
mod classify;

fn main() {
    classify::main();
}
