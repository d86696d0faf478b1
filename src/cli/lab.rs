//! `hadiag lab up|down|status|fault|heal|demo`: fault drills on a real cluster of daemons in
//! network namespaces on this machine (root). See `crate::lab` for how the lab is built and
//! the rules it keeps (documentation addresses only, no route out, everything torn down).
//!
//! Exit codes: 0 success, 1 runtime failure, 2 invalid arguments.

use crate::lab::cluster::{self, Cluster};
use crate::lab::drill::{fmt_duration, DrillOptions};
use crate::lab::fault::LabFault;
use crate::lab::layout::LabSpec;
use crate::lab::observe;
use crate::lab::state::{StateFile, DEFAULT_STATE_ROOT};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Args, Debug, Clone)]
pub struct LabArgs {
    #[command(subcommand)]
    pub command: LabCommand,
}

/// Which lab.
#[derive(Args, Debug, Clone)]
pub struct LabName {
    /// Lab name (state in ROOT/NAME/state.json; namespaces hdg-NAME-*).
    #[arg(long, default_value = "lab")]
    pub name: String,
    /// Directory holding lab state directories.
    #[arg(long, default_value = DEFAULT_STATE_ROOT)]
    pub root: PathBuf,
}

impl LabName {
    fn state_path(&self) -> PathBuf {
        StateFile::path_for(&self.root, &self.name)
    }
}

#[derive(Subcommand, Debug, Clone)]
pub enum LabCommand {
    /// Build a lab (hubs, routers, nodes, serial lines, disks) and start a daemon per node.
    Up {
        #[command(flatten)]
        lab: LabName,
        /// Number of nodes (n1, n2, …).
        #[arg(long, default_value_t = 2)]
        nodes: usize,
        /// Network names: up to 3 get a documentation /24 each, 4 to 12 a /26 slice each
        /// (then at most 61 nodes).
        #[arg(long, value_delimiter = ',', default_value = "A,B")]
        networks: Vec<String>,
        /// Serial lines as NODE-NODE (default: a chain n1-n2, n2-n3, …).
        #[arg(long, value_delimiter = ',')]
        serial: Option<Vec<String>>,
        /// No serial lines at all.
        #[arg(long, conflicts_with = "serial")]
        no_serial: bool,
        /// Heartbeat interval in milliseconds (detect multiplier 3).
        #[arg(long, default_value_t = 100)]
        heartbeat_ms: u64,
        /// Build the lab but start no daemons.
        #[arg(long)]
        no_daemons: bool,
        /// hadiag binary to run as the daemons (default: this executable).
        #[arg(long, value_name = "PATH")]
        daemon_exe: Option<PathBuf>,
    },
    /// Remove everything a lab created (also after a crash or a half-built `up`).
    Down {
        #[command(flatten)]
        lab: LabName,
    },
    /// Remove leftovers of crashed lab *tests* (namespaces hdg<pid>-* of dead processes,
    /// loop devices of deleted lab disks).
    Gc,
    /// Show the lab: daemons, each node's verdict, active faults.
    Status {
        #[command(flatten)]
        lab: LabName,
    },
    /// Inject a fault.
    #[command(after_help = concat!("FAULT is one of: ", "nic-down NODE NET | nic-silent NODE NET | nic-tx-only NODE NET | nic-rx-only NODE NET | nic-lossy NODE NET PERCENT | loss PERCENT | hub-down NET | router-down NET | serial-cut NODE NODE | node-kill NODE | node-freeze NODE | disk-fail NODE | disk-hang NODE"))]
    Fault {
        #[command(flatten)]
        lab: LabName,
        /// The fault, e.g. `nic-down n2 A`.
        #[arg(required = true, num_args = 1.., trailing_var_arg = true)]
        fault: Vec<String>,
    },
    /// Undo one fault (same words as `fault`) or all of them (`all` or nothing).
    Heal {
        #[command(flatten)]
        lab: LabName,
        #[arg(num_args = 0.., trailing_var_arg = true)]
        fault: Vec<String>,
    },
    /// Two nodes, the fault matrix of docs/fault-matrix.md with verdicts and timings, one explain;
    /// everything torn down at the end (also on Ctrl-C).
    Demo {
        #[arg(long, default_value = DEFAULT_STATE_ROOT)]
        root: PathBuf,
        /// Seconds to hold the steady rows (1: no fault, 11: 5 % loss).
        #[arg(long, default_value_t = 10)]
        steady_secs: u64,
        /// Seconds to wait for each expected verdict.
        #[arg(long, default_value_t = 15)]
        timeout_secs: u64,
        /// Only these rows of the matrix (e.g. `--rows 4,9`).
        #[arg(long, value_delimiter = ',')]
        rows: Vec<u8>,
        /// hadiag binary to run as the daemons (default: this executable).
        #[arg(long, value_name = "PATH")]
        daemon_exe: Option<PathBuf>,
        /// Draw the drill as a timeline, one lane per row, to this file (`.svg` or `.html`).
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
    },
}

pub fn run(args: LabArgs) -> ExitCode {
    match run_inner(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hadiag lab: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn words_to_fault(words: &[String]) -> Result<LabFault, ExitCode> {
    LabFault::parse(words).map_err(|e| {
        eprintln!("hadiag lab: {e}");
        ExitCode::from(2)
    })
}

fn run_inner(args: LabArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        LabCommand::Up {
            lab,
            nodes,
            networks,
            serial,
            no_serial,
            heartbeat_ms,
            no_daemons,
            daemon_exe,
        } => {
            let mut spec = LabSpec::new(&lab.name, nodes);
            spec.networks = networks;
            if no_serial {
                spec.serial.clear();
            } else if let Some(lines) = serial {
                let mut pairs = Vec::new();
                for l in lines {
                    let Some((a, b)) = l.split_once('-') else {
                        eprintln!("hadiag lab: --serial {l:?}: expected NODE-NODE");
                        return Ok(ExitCode::from(2));
                    };
                    pairs.push((a.to_string(), b.to_string()));
                }
                spec.serial = pairs;
            }
            spec.heartbeat_interval = Duration::from_millis(heartbeat_ms.max(10));
            if let Err(e) = spec.resolve(&lab.root.join(&lab.name)) {
                eprintln!("hadiag lab: {e}");
                return Ok(ExitCode::from(2));
            }
            let mut c = Cluster::build_detached(&spec, &lab.root)?;
            if !no_daemons {
                let exe = match daemon_exe {
                    Some(p) => p,
                    None => std::env::current_exe()?,
                };
                c.start_daemons(&exe)?;
            }
            let layout = c.layout().clone();
            let path = c.detach();
            println!("lab {:?} is up (state: {})", layout.name, path.display());
            for n in &layout.nodes {
                let addrs: Vec<String> = n
                    .interfaces
                    .iter()
                    .map(|i| format!("{} {}={}", i.device, i.network, i.address))
                    .collect();
                println!(
                    "  {:<4} ns {:<20} {}  config {}",
                    n.name,
                    n.ns,
                    addrs.join("  "),
                    n.config.display()
                );
            }
            for net in &layout.networks {
                println!(
                    "  network {}: hub ns {}, router ns {} ({})",
                    net.name, net.hub_ns, net.router_ns, net.reference
                );
            }
            let mut which = format!("--name {}", layout.name);
            if lab.root != std::path::Path::new(DEFAULT_STATE_ROOT) {
                which.push_str(&format!(" --root {}", lab.root.display()));
            }
            println!("try: hadiag lab status {which}; hadiag lab fault {which} nic-down n2 A; hadiag lab down {which}");
            Ok(ExitCode::SUCCESS)
        }
        LabCommand::Down { lab } => {
            let path = lab.state_path();
            if !path.exists() {
                eprintln!(
                    "hadiag lab: no lab {:?} under {} (nothing to do)",
                    lab.name,
                    lab.root.display()
                );
                return Ok(ExitCode::SUCCESS);
            }
            let problems = cluster::down(&path)?;
            if problems.is_empty() {
                println!("lab {:?} removed", lab.name);
                Ok(ExitCode::SUCCESS)
            } else {
                for p in problems {
                    eprintln!("hadiag lab: down: {p}");
                }
                Ok(ExitCode::from(1))
            }
        }
        LabCommand::Gc => {
            let removed = cluster::gc_stale()?;
            if removed.is_empty() {
                println!("nothing stale");
            }
            for r in removed {
                println!("removed {r}");
            }
            Ok(ExitCode::SUCCESS)
        }
        LabCommand::Status { lab } => {
            let c = Cluster::attach(&lab.state_path())?;
            let layout = c.layout();
            println!(
                "lab {:?}: {} nodes, networks {}",
                layout.name,
                layout.nodes.len(),
                layout
                    .networks
                    .iter()
                    .map(|n| n.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            println!("{:<6} {:<10} {:<8} verdict", "node", "daemon", "pid");
            for n in &layout.nodes {
                let st = observe::daemon_state(c.state(), &n.name);
                let pid = c
                    .daemon(&n.name)
                    .map_or("-".to_string(), |r| r.pid.to_string());
                let verdict = match st {
                    observe::DaemonState::Running => match observe::node_verdict(n) {
                        Ok(v) => format!(
                            "{}  {}",
                            v.short(),
                            v.incident
                                .map(|i| format!("incident {i}"))
                                .unwrap_or_default()
                        ),
                        Err(e) => format!("(API: {e})"),
                    },
                    _ => "-".into(),
                };
                println!("{:<6} {:<10} {:<8} {}", n.name, st.token(), pid, verdict);
            }
            if c.state().faults.is_empty() {
                println!("active faults: none");
            } else {
                let now = crate::lab::fault::unix_ms();
                println!("active faults:");
                for f in &c.state().faults {
                    let age = Duration::from_millis(now.saturating_sub(f.injected_at_unix_ms));
                    println!(
                        "  {:<28} for {}",
                        f.fault.to_string(),
                        fmt_duration(Some(age))
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        LabCommand::Fault { lab, fault } => {
            let f = match words_to_fault(&fault) {
                Ok(f) => f,
                Err(code) => return Ok(code),
            };
            let mut c = Cluster::attach(&lab.state_path())?;
            c.inject(&f)?;
            println!("injected: {f}");
            Ok(ExitCode::SUCCESS)
        }
        LabCommand::Heal { lab, fault } => {
            let mut c = Cluster::attach(&lab.state_path())?;
            if fault.is_empty() || (fault.len() == 1 && fault[0] == "all") {
                let healed = c.heal_all()?;
                if healed.is_empty() {
                    println!("no active faults");
                }
                for f in healed {
                    println!("healed: {f}");
                }
            } else {
                let f = match words_to_fault(&fault) {
                    Ok(f) => f,
                    Err(code) => return Ok(code),
                };
                c.heal(&f)?;
                println!("healed: {f}");
            }
            Ok(ExitCode::SUCCESS)
        }
        LabCommand::Demo {
            root,
            steady_secs,
            timeout_secs,
            rows,
            daemon_exe,
            report,
        } => {
            if let Some(path) = &report {
                if let Err(e) = crate::lab::report::ReportFormat::of(path) {
                    eprintln!("hadiag lab: --report: {e}");
                    return Ok(ExitCode::from(2));
                }
            }
            let opts = crate::lab::demo::DemoOptions {
                steady: Duration::from_secs(steady_secs),
                drill: DrillOptions {
                    verdict_timeout: Duration::from_secs(timeout_secs),
                    ..DrillOptions::default()
                },
                rows,
                exe: match daemon_exe {
                    Some(p) => p,
                    None => std::env::current_exe()?,
                },
                report,
            };
            let results = crate::lab::demo::run(&root, &opts, &mut std::io::stdout())?;
            let failed = results.iter().filter(|r| !r.ok()).count();
            println!(
                "{} of {} rows as expected",
                results.len() - failed,
                results.len()
            );
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::fault::FAULT_USAGE;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Top {
        #[command(subcommand)]
        cmd: Sub,
    }

    #[derive(clap::Subcommand, Debug)]
    enum Sub {
        Lab(LabArgs),
    }

    #[test]
    fn parses_fault_words_after_options() {
        let t = Top::try_parse_from([
            "hadiag",
            "lab",
            "fault",
            "--name",
            "x",
            "nic-lossy",
            "n2",
            "A",
            "20",
        ])
        .expect("parse");
        let Sub::Lab(LabArgs {
            command: LabCommand::Fault { lab, fault },
        }) = t.cmd
        else {
            panic!("not fault")
        };
        assert_eq!(lab.name, "x");
        assert_eq!(
            LabFault::parse(&fault).expect("fault").to_string(),
            "nic-lossy n2 A 20"
        );
        let t = Top::try_parse_from(["hadiag", "lab", "heal"]).expect("parse");
        assert!(matches!(
            t.cmd,
            Sub::Lab(LabArgs {
                command: LabCommand::Heal { .. }
            })
        ));
        assert!(FAULT_USAGE.contains("disk-hang"));
    }
}
