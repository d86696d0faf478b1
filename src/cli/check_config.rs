//! `hadiag check-config FILE [--node NAME]`: validate a configuration and print the resolved
//! topology (exit 0), or every error found, one per line as `file:line:column: path: cause`
//! (exit 2).

use crate::config;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

/// Exit code for invalid input: 2 = configuration or arguments (see `crate::cli`).
const EXIT_INVALID: u8 = 2;

/// The text `check-config` prints and its exit code, without printing (for tests).
pub fn report(file: &Path, node: Option<&str>) -> (String, String, u8) {
    match config::load(file) {
        Err(e) => {
            let mut err = String::new();
            for x in &e.errors {
                err.push_str(&format!("{x}\n"));
            }
            for w in &e.warnings {
                err.push_str(&format!("warning: {w}\n"));
            }
            err.push_str(&format!(
                "{}: {} error{} found\n",
                file.display(),
                e.errors.len(),
                if e.errors.len() == 1 { "" } else { "s" }
            ));
            (String::new(), err, EXIT_INVALID)
        }
        Ok(c) => match node.map(|n| c.local_node(Some(n))).transpose() {
            Err(e) => (String::new(), format!("error: {e}\n"), EXIT_INVALID),
            Ok(local) => (config::render::describe(&c, local), String::new(), 0),
        },
    }
}

pub fn run(file: &Path, node: Option<&str>) -> ExitCode {
    let (out, err, code) = report(file, node);
    // A closed stdout (e.g. `| head`) is not a configuration error: ignore write failures.
    let _ = std::io::stdout().write_all(out.as_bytes());
    let _ = std::io::stderr().write_all(err.as_bytes());
    ExitCode::from(code)
}
