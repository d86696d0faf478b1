//! `hadiag quiesce | resume | leave | rejoin`: take this node out of service and back, over the
//! running daemon's local control channel (a Unix socket in its state directory, see
//! `crate::daemon::control`). Run them as root or as the daemon's user.
//!
//! Exit codes: 0 done, 1 refused by the daemon or daemon unreachable, 2 bad configuration or
//! arguments. This module only sends a request and prints the reply.

use crate::daemon::control::{self, ControlRequest};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// Where the local daemon's control socket is.
#[derive(Args, Debug, Clone)]
pub struct ControlArgs {
    /// Configuration file of the daemon (for its state directory and node name).
    #[arg(
        long,
        short = 'c',
        value_name = "FILE",
        default_value = "/etc/hadiag/hadiag.yaml"
    )]
    pub config: PathBuf,
    /// This node's name (default: the host name).
    #[arg(long)]
    pub node: Option<String>,
    /// Control socket path (overrides the configuration).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
}

impl ControlArgs {
    fn socket(&self) -> Result<PathBuf, String> {
        if let Some(s) = &self.socket {
            return Ok(s.clone());
        }
        let cfg = crate::config::load(&self.config).map_err(|e| e.to_string())?;
        let me = cfg
            .local_node(self.node.as_deref())
            .map_err(|e| e.to_string())?;
        let name = cfg.topology.node_name(me).to_string();
        Ok(control::socket_path(&cfg.state_dir, &name))
    }
}

/// Sends `req` and prints the daemon's answer.
pub fn run(verb: &str, args: &ControlArgs, req: ControlRequest) -> ExitCode {
    let socket = match args.socket() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hadiag {verb}: {e}");
            return ExitCode::from(2);
        }
    };
    match control::request(&socket, &req) {
        Ok(r) if r.ok => {
            let since = r
                .maintenance
                .as_ref()
                .map(|m| match &m.reason {
                    Some(reason) => format!(" (since {}: {reason})", m.since),
                    None => format!(" (since {})", m.since),
                })
                .unwrap_or_default();
            println!("{}; role: {}{since}", r.message, r.role);
            ExitCode::SUCCESS
        }
        Ok(r) => {
            eprintln!("hadiag {verb}: refused: {}", r.message);
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!(
                "hadiag {verb}: cannot reach the daemon's control socket {}: {e} (is `hadiag run` running, and are you root or its user?)",
                socket.display()
            );
            ExitCode::from(1)
        }
    }
}
