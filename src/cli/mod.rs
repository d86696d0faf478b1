//! The subcommands of the `hadiag` binary. `anyhow` and exit codes live here, nowhere else.
//!
//! Exit codes: 0 success, 1 runtime failure, 2 invalid input (config or arguments).

pub mod check;
pub mod check_config;
pub mod explain;
pub mod fence_agent;
pub mod keygen;
pub mod lab;
pub mod maintenance;
pub mod run;
pub mod status;

use crate::daemon;
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
    /// Take this node out of service for planned maintenance: peers record maintenance, not a
    /// failure (no takeover, no fencing) until `resume`. Persists across daemon restarts.
    Quiesce {
        #[command(flatten)]
        control: maintenance::ControlArgs,
        /// Why (shown by status, logged and journaled).
        #[arg(long)]
        reason: Option<String>,
        /// Quiesce even though this node runs services it took over from a peer.
        #[arg(long)]
        force: bool,
    },
    /// End planned maintenance started with `quiesce`. Refused until every peer hears this
    /// node again on every path (so its absence is not judged a failure), unless --force.
    Resume {
        #[command(flatten)]
        control: maintenance::ControlArgs,
        /// Resume even though a peer does not hear this node on every path yet.
        #[arg(long)]
        force: bool,
    },
    /// Stop the local daemon. By default the stop is announced as maintenance (no takeover, no
    /// fencing); with --failover it is not, and peers take over as after a failure.
    Leave {
        #[command(flatten)]
        control: maintenance::ControlArgs,
        /// Stop without announcement so peers take over this node's services.
        #[arg(long)]
        failover: bool,
        /// Announce the leave even though this node runs services it took over from a peer.
        #[arg(long, conflicts_with = "failover")]
        force: bool,
    },
    /// Leave an isolation that waits for the operator (policy resume_on_heal: false).
    Rejoin {
        #[command(flatten)]
        control: maintenance::ControlArgs,
    },
    /// Write a new cluster authentication key (32 random bytes, mode 0600).
    Keygen(keygen::KeygenArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff).
    Manpage,
    /// Validate a configuration file and print the resolved topology.
    CheckConfig {
        /// Configuration file (YAML).
        file: std::path::PathBuf,
        /// Show the topology as seen from this node.
        #[arg(long)]
        node: Option<String>,
    },
    /// Pacemaker fence agent `fence_hadiag` (a fencing gate; see docs/pacemaker.md): reads
    /// `name=value` lines on stdin, or fence-agent options such as `-o metadata`.
    FenceAgent {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<String>,
    },
}

/// The man page: `hadiag(1)` with every subcommand's options.
pub fn manpage(out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let cmd = <Cli as clap::CommandFactory>::command();
    clap_mangen::Man::new(cmd.clone()).render(out)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = sub.get_name();
        writeln!(out, ".SH \"HADIAG {}\"", name.to_uppercase())?;
        let mut buf = Vec::new();
        let man = clap_mangen::Man::new(sub.clone());
        man.render_description_section(&mut buf)?;
        man.render_options_section(&mut buf)?;
        // Sub-sections of this command's section, not new top-level sections.
        let text = String::from_utf8_lossy(&buf).replace(".SH ", ".SS ");
        out.write_all(text.as_bytes())?;
    }
    Ok(())
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Status(args) => status::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Run { config, node } => run::run(&config, node.as_deref()),
        Command::Lab(args) => lab::run(args),
        Command::CheckConfig { file, node } => check_config::run(&file, node.as_deref()),
        Command::FenceAgent { args } => fence_agent::run(args),
        Command::Keygen(args) => keygen::run(args),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "hadiag", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Manpage => match manpage(&mut std::io::stdout()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("hadiag manpage: {e}");
                ExitCode::from(1)
            }
        },
        Command::Quiesce {
            control,
            reason,
            force,
        } => maintenance::run(
            "quiesce",
            &control,
            daemon::control::ControlRequest::Quiesce { reason, force },
        ),
        Command::Resume { control, force } => maintenance::run(
            "resume",
            &control,
            daemon::control::ControlRequest::Resume { force },
        ),
        Command::Leave {
            control,
            failover,
            force,
        } => maintenance::run(
            "leave",
            &control,
            daemon::control::ControlRequest::Leave { failover, force },
        ),
        Command::Rejoin { control } => {
            maintenance::run("rejoin", &control, daemon::control::ControlRequest::Rejoin)
        }
    }
}
