//! Errors of the lab: every variant carries the command, path or value it is about, so a
//! failing drill says exactly which step broke.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("cannot start `{command}`: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("address {0} is outside the documentation ranges 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24")]
    ForbiddenAddress(IpAddr),
    #[error("invalid lab description: {0}")]
    Spec(String),
    #[error("timed out after {waited:?} waiting for {what}")]
    Timeout { what: String, waited: Duration },
    #[error("state file {path}: {cause}")]
    State { path: PathBuf, cause: String },
    #[error("the lab needs `{program}`, which is not installed: install it with `apt-get install -y {package}` (Debian/Ubuntu package {package})")]
    Missing { program: String, package: String },
    #[error("the lab needs root (namespaces, nftables, loop devices); running as uid {0}")]
    NotRoot(u32),
}

pub type Result<T> = std::result::Result<T, LabError>;

impl LabError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> LabError {
        LabError::Io {
            path: path.into(),
            source,
        }
    }
}
