//! The subcommands of the `hadiag` binary. `anyhow` and exit codes live here, nowhere else.
//!
//! Exit codes: 0 success, 1 runtime failure, 2 invalid input (config or arguments).

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "hadiag", version, about = "Diagnostic prober and failure classifier for HA clusters")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Validate a configuration file and print the resolved topology.
    CheckConfig {
        /// Configuration file (YAML).
        file: std::path::PathBuf,
        /// Show the topology as seen from this node.
        #[arg(long)]
        node: Option<String>,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { file, node } => {
            let _ = (file, node);
            eprintln!("check-config: not built yet");
            ExitCode::from(1)
        }
    }
}
