//! The standalone `edgemq` binary.

fn main() {
    println!("edgemq {}", env!("CARGO_PKG_VERSION"));
}
