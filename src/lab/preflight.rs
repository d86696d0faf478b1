//! What the lab still takes from the system, checked before anything is built, so a missing
//! piece is one line naming the package and the command that installs it — not an obscure
//! failure half way through a lab.
//!
//! Everything else the lab does in-process: serial lines are its own pty relays, NIC faults
//! are nf_tables netlink messages, reachability checks are its own ICMP echoes. What stays is
//! iproute2's `ip` (namespaces, veth pairs, bridges, addresses). `losetup` (util-linux) is
//! optional: without it a lab disk fails over to a plain file.
//!
//! Must not: install anything itself.

use crate::lab::error::{LabError, Result};
use std::sync::OnceLock;

/// A tool the lab runs, and the Debian package that ships it.
pub struct Requirement {
    pub program: &'static str,
    pub probe_args: &'static [&'static str],
    pub package: &'static str,
}

/// What the lab cannot do without.
pub const REQUIRED: &[Requirement] = &[Requirement {
    program: "ip",
    probe_args: &["-V"],
    package: "iproute2",
}];

fn check_one(r: &Requirement) -> Result<()> {
    match std::process::Command::new(r.program)
        .args(r.probe_args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
    {
        Ok(_) => Ok(()),
        Err(_) => Err(LabError::Missing {
            program: r.program.to_string(),
            package: r.package.to_string(),
        }),
    }
}

/// Checks (once per process) that every required tool runs.
pub fn check_tools() -> Result<()> {
    static DONE: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    let r = DONE.get_or_init(|| {
        for r in REQUIRED {
            check_one(r).map_err(|e| e.to_string())?;
        }
        Ok(())
    });
    match r {
        Ok(()) => Ok(()),
        Err(_) => {
            // Rebuild the typed error for the first missing tool.
            for r in REQUIRED {
                check_one(r)?;
            }
            Ok(())
        }
    }
}

/// Everything a lab needs before building: root, then the tools.
pub fn check() -> Result<()> {
    crate::lab::sys::require_root()?;
    check_tools()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_names_its_package_and_install_command() {
        let e = check_one(&Requirement {
            program: "hadiag-no-such-tool",
            probe_args: &[],
            package: "hadiag-pkg",
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("hadiag-no-such-tool") && e.contains("apt-get install -y hadiag-pkg"),
            "{e}"
        );
        assert!(!e.contains('\n'), "one line: {e}");
    }
}
