//! Project automation, run as `cargo xtask <task>` (an alias in `.cargo/config.toml`).
//!
//! Tasks:
//! - `codegen [--check]`: regenerate `crates/lockgate-shapes/src/generated.rs` from the service model;
//!   with `--check`, fail instead of writing when the file is stale.

mod codegen;
mod json;
mod tidy;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("codegen") => codegen::run(args.iter().any(|a| a == "--check")),
        _ => {
            eprintln!("usage: cargo xtask codegen [--check]");
            std::process::exit(2);
        }
    }
}
