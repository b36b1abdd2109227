//! The `watchpost` binary: flags and config in, modules wired, signals handled.

fn main() -> anyhow::Result<()> {
    println!("watchpost {}", env!("CARGO_PKG_VERSION"));
    Ok(())
}
