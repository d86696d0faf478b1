//! Serial lines as socat pty pairs: `socat pty,raw,echo=0,link=A pty,raw,echo=0,link=B`.
//! The two link paths play the two UART devices. A cut is SIGSTOP on socat: both ends stay
//! open (no hang-up) but nothing crosses — what a dead cable looks like to a UART.
//!
//! Must not: signal any socat but its own (by PID).

use crate::lab::error::{LabError, Result};
use crate::lab::netns::ChildGuard;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// How long socat may take to create both pty links.
const LINK_WAIT: Duration = Duration::from_secs(5);

/// A running pty pair; Drop kills socat (its links vanish with it).
#[derive(Debug)]
pub struct SerialLine {
    a: PathBuf,
    b: PathBuf,
    socat: ChildGuard,
    /// Temporary directory to remove on Drop (when created by [`SerialLine::temp`]).
    temp_dir: Option<PathBuf>,
}

impl SerialLine {
    /// Starts socat with pty links at `a` and `b` (their directory must exist) and waits
    /// until both exist. `log` receives socat's `-d -d` diagnostics.
    pub fn create(a: &Path, b: &Path, log: Option<&Path>) -> Result<SerialLine> {
        let mut cmd = Command::new("socat");
        cmd.args(["-d", "-d"])
            .arg(format!("pty,raw,echo=0,link={}", a.display()))
            .arg(format!("pty,raw,echo=0,link={}", b.display()));
        let socat = ChildGuard::spawn(cmd, "socat pty pair", log)?;
        let line = SerialLine {
            a: a.to_path_buf(),
            b: b.to_path_buf(),
            socat,
            temp_dir: None,
        };
        line.wait_links()?;
        Ok(line)
    }

    /// A pty pair in a fresh temporary directory (removed on Drop).
    pub fn temp() -> Result<SerialLine> {
        let dir =
            std::env::temp_dir().join(format!("{}-serial", crate::lab::netns::unique_prefix()));
        std::fs::create_dir_all(&dir).map_err(|e| LabError::io(&dir, e))?;
        match SerialLine::create(&dir.join("a"), &dir.join("b"), None) {
            Ok(mut line) => {
                line.temp_dir = Some(dir);
                Ok(line)
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                Err(e)
            }
        }
    }

    fn wait_links(&self) -> Result<()> {
        let start = Instant::now();
        while !(self.a.exists() && self.b.exists()) {
            if start.elapsed() > LINK_WAIT {
                return Err(LabError::Timeout {
                    what: format!("socat links {} and {}", self.a.display(), self.b.display()),
                    waited: LINK_WAIT,
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    pub fn path_a(&self) -> &Path {
        &self.a
    }

    pub fn path_b(&self) -> &Path {
        &self.b
    }

    pub fn pid(&self) -> u32 {
        self.socat.pid()
    }

    pub fn guard(&self) -> &ChildGuard {
        &self.socat
    }

    /// Cuts the line (SIGSTOP socat: nothing crosses, no hang-up).
    pub fn cut(&mut self) -> bool {
        self.socat.stop()
    }

    /// Restores the line (SIGCONT).
    pub fn restore(&mut self) -> bool {
        self.socat.cont()
    }

    /// Gives up ownership of socat (keep the PID in a state file); returns its PID.
    pub fn detach(mut self) -> u32 {
        self.temp_dir = None;
        let guard = std::mem::replace(
            &mut self.socat,
            // A placeholder guard that owns nothing.
            ChildGuard::none("detached socat"),
        );
        guard.detach()
    }
}

impl Drop for SerialLine {
    fn drop(&mut self) {
        self.socat.kill();
        if let Some(dir) = self.temp_dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
