//! Lab benchmark: fault → verdict and fault → agreed isolation times on real daemons in
//! network namespaces, and a soak under 5 % loss (needs root). Run:
//!
//! ```text
//! cargo bench --bench lab -- [--profile 100ms|20ms] [--injections 20] [--kinds nic-down,cut-off] [--soak-minutes 5]
//! cargo bench --bench lab -- --profile 20ms --soak-only --soak-minutes 5   # soak alone
//! ```
//!
//! (needs `[[bench]] name = "lab" harness = false` in Cargo.toml). Prints a table; asserts
//! nothing. Under `cargo test --all-targets` (no `--bench` argument) it does a one-injection
//! smoke run only.

use hadiag::lab::bench::{self, BenchOptions, Profile};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let mut opts = BenchOptions {
        injections: 20,
        profile: Profile::Standard,
        kinds: Vec::new(),
        soak: Duration::ZERO,
        exe: match std::env::var("HADIAG_LAB_DAEMON_EXE") {
            Ok(p) => PathBuf::from(p),
            Err(_) => PathBuf::from(option_env!("CARGO_BIN_EXE_hadiag").unwrap_or("hadiag")),
        },
        root: std::env::temp_dir().join("hadiag-lab-bench"),
    };
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it:
    // then only a smoke run (one injection) so the test suite stays fast.
    let benching = std::env::args().any(|a| a == "--bench");
    if !benching {
        opts.injections = 1;
        opts.kinds = vec!["nic-down".into()];
    }
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |what: &str| args.next().ok_or_else(|| format!("{a}: missing {what}"));
        let r: Result<(), String> = match a.as_str() {
            "--bench" => Ok(()), // passed by `cargo bench`
            "--injections" => value("a count").and_then(|v| {
                v.parse()
                    .map(|n| opts.injections = n)
                    .map_err(|e| format!("--injections: {e}"))
            }),
            "--kinds" => {
                value("kinds").map(|v| opts.kinds = v.split(',').map(String::from).collect())
            }
            "--profile" => value("100ms or 20ms").and_then(|v| {
                Profile::parse(&v)
                    .map(|p| opts.profile = p)
                    .ok_or_else(|| format!("--profile {v:?}: use 100ms or 20ms"))
            }),
            // No injections: the soak alone (with --soak-minutes).
            "--soak-only" => {
                opts.injections = 0;
                Ok(())
            }
            "--soak-minutes" => value("minutes").and_then(|v| {
                v.parse::<f64>()
                    .map(|m| opts.soak = Duration::from_secs_f64(m.max(0.0) * 60.0))
                    .map_err(|e| format!("--soak-minutes: {e}"))
            }),
            other => Err(format!("unknown argument {other:?}")),
        };
        if let Err(e) = r {
            eprintln!("lab bench: {e}");
            return ExitCode::from(2);
        }
    }
    if let Err(e) = std::fs::create_dir_all(&opts.root) {
        eprintln!("lab bench: {}: {e}", opts.root.display());
        return ExitCode::from(1);
    }
    match bench::run(&opts, &mut std::io::stdout()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lab bench: {e}");
            ExitCode::from(1)
        }
    }
}
