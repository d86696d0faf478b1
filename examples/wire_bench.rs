//! The wire codec micro-benchmark of `benches/wire.rs`, runnable as an example:
//! `cargo run --release --example wire_bench`.

#[path = "../benches/wire.rs"]
mod wire;

fn main() {
    wire::main();
}
