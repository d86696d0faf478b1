//! The subcommands of the `hadiag` binary. `anyhow` and exit codes live here, nowhere else.
//!
//! Exit codes: 0 success, 1 runtime failure, 2 invalid input (config or arguments).

pub mod check;
pub mod check_config;
pub mod explain;
pub mod lab;
pub mod run;
pub mod status;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "hadiag",
    version,
    about = "Diagnostic prober and failure classifier for HA clusters"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Show the live state of the local daemon: networks × nodes, serial, disks, monitors, verdict.
    Status(status::StatusArgs),
    /// Explain a verdict or incident: evidence, reasoning, what each node saw, actions, timeline.
    Explain(explain::ExplainArgs),
    /// Run the daemon (probes, heartbeats, diagnosis, hooks) until SIGTERM/SIGINT.
    Run {
        /// Configuration file (YAML).
        #[arg(long)]
        config: std::path::PathBuf,
        /// This node's name (default: the host name).
        #[arg(long)]
        node: Option<String>,
    },
    /// Fault drills on this machine: build a cluster in network namespaces, inject faults, demo.
    Lab(lab::LabArgs),
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
        Command::Status(args) => status::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Run { config, node } => run::run(&config, node.as_deref()),
        Command::Lab(args) => lab::run(args),
        Command::CheckConfig { file, node } => check_config::run(&file, node.as_deref()),
    }
}
