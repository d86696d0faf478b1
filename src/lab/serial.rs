//! Serial lines as pty pairs the lab opens and relays itself (no socat). Each end is a
//! pseudo-terminal whose slave device is linked at a path (`link` → `/dev/pts/N`); the two
//! link paths play the two UART devices. A relay process copies bytes between the two
//! masters.
//!
//! - A cut is SIGSTOP on the relay: both ends stay open (no hang-up) but nothing crosses —
//!   what a dead cable looks like to a UART. SIGCONT restores it.
//! - A hang-up is the relay's end: the masters close, readers of either end see the hang-up.
//!
//! The relay is a `fork` of this process without `exec`, so it needs no helper binary and
//! works from the CLI, the demo and the tests alike. Between fork and its end the child only
//! makes async-signal-safe system calls (poll, read, write, close, dup2, setsid, prctl,
//! _exit) and never allocates, which is what a fork of a multi-threaded process allows.
//! It keeps a slave descriptor of each pty open itself, so a daemon closing and reopening its
//! end never hangs the line up; bytes a full pty cannot take are dropped, like a UART overrun.
//!
//! Must not: signal any relay but its own (by PID).

use crate::lab::error::{LabError, Result};
use crate::lab::netns::ChildGuard;
use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

/// Chunk the relay copies at once (a pty holds 4 KiB per direction).
const RELAY_CHUNK: usize = 4096;

/// One pseudo-terminal: its master, a slave descriptor the relay holds open, the slave path.
#[derive(Debug)]
struct Pty {
    master: OwnedFd,
    slave: OwnedFd,
    slave_path: PathBuf,
}

fn last_error(what: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

impl Pty {
    /// Opens a pty pair in raw mode (no echo, no line editing, 8 bits).
    fn open() -> io::Result<Pty> {
        // SAFETY: plain libc calls on descriptors this function owns; ptsname_r writes into a
        // buffer of the size given.
        unsafe {
            let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
            if m < 0 {
                return Err(last_error("posix_openpt"));
            }
            let master = OwnedFd::from_raw_fd(m);
            if libc::grantpt(m) != 0 || libc::unlockpt(m) != 0 {
                return Err(last_error("grantpt/unlockpt"));
            }
            let mut name = [0 as libc::c_char; 128];
            if libc::ptsname_r(m, name.as_mut_ptr(), name.len()) != 0 {
                return Err(last_error("ptsname_r"));
            }
            let slave_path =
                PathBuf::from(CStr::from_ptr(name.as_ptr()).to_string_lossy().as_ref());
            let s = libc::open(
                name.as_ptr(),
                libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
            );
            if s < 0 {
                return Err(last_error("open pty slave"));
            }
            let slave = OwnedFd::from_raw_fd(s);
            let mut tio: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(s, &mut tio) != 0 {
                return Err(last_error("tcgetattr"));
            }
            libc::cfmakeraw(&mut tio);
            if libc::tcsetattr(s, libc::TCSANOW, &tio) != 0 {
                return Err(last_error("tcsetattr"));
            }
            // The relay never blocks on a full pty: it drops what does not fit.
            let flags = libc::fcntl(m, libc::F_GETFL);
            if flags < 0 || libc::fcntl(m, libc::F_SETFL, flags | libc::O_NONBLOCK) != 0 {
                return Err(last_error("fcntl O_NONBLOCK"));
            }
            Ok(Pty {
                master,
                slave,
                slave_path,
            })
        }
    }
}

/// Links `link` to the slave device (replacing a stale link of a previous relay).
fn link_slave(pty: &Pty, link: &Path) -> Result<()> {
    let _ = std::fs::remove_file(link);
    std::os::unix::fs::symlink(&pty.slave_path, link).map_err(|e| LabError::io(link, e))
}

/// How the relay relates to the process that starts it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RelayLife {
    /// Dies with the thread that started it (PR_SET_PDEATHSIG) and with its guard.
    Owned,
    /// Runs in its own session and outlives the starter (`lab up`); ended by PID later.
    Detached,
}

/// Opens two ptys linked at `a` and `b` and forks the relay between them. The returned guard
/// owns the relay process (SIGKILL + reap on Drop).
pub fn start_relay(a: &Path, b: &Path, life: RelayLife, what: &str) -> Result<ChildGuard> {
    let pty_err = |e| LabError::Spawn {
        command: format!("{what}: pty pair"),
        source: e,
    };
    let pa = Pty::open().map_err(pty_err)?;
    let pb = Pty::open().map_err(pty_err)?;
    link_slave(&pa, a)?;
    link_slave(&pb, b)?;
    let keep = [
        pa.master.as_raw_fd(),
        pb.master.as_raw_fd(),
        pa.slave.as_raw_fd(),
        pb.slave.as_raw_fd(),
    ];
    let devnull = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| LabError::io("/dev/null", e))?;
    // Everything the child needs is computed before the fork (no allocation after it).
    // SAFETY: getrlimit has no preconditions.
    let max_fd = unsafe {
        let mut rl: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) == 0 {
            rl.rlim_cur.min(65_536) as RawFd
        } else {
            4096
        }
    };
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: after fork the child runs only `relay_child`, which makes async-signal-safe
    // system calls on descriptors opened above and never returns.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(LabError::Spawn {
            command: what.to_string(),
            source: io::Error::last_os_error(),
        });
    }
    if pid == 0 {
        // SAFETY: see above; the child ends in _exit.
        unsafe { relay_child(keep, devnull.as_raw_fd(), max_fd, life, parent) }
    }
    // Parent: the child holds its own copies of the descriptors; ours close on return.
    Ok(ChildGuard::forked(pid as u32, what))
}

/// The relay: never returns.
///
/// # Safety
/// Call only in a freshly forked child; `keep` are valid descriptors.
unsafe fn relay_child(
    keep: [RawFd; 4],
    devnull: RawFd,
    max_fd: RawFd,
    life: RelayLife,
    parent: libc::pid_t,
) -> ! {
    match life {
        RelayLife::Owned => {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
            if libc::getppid() != parent {
                libc::_exit(0); // the starter is already gone
            }
        }
        RelayLife::Detached => {
            libc::setsid();
        }
    }
    // Default signal handling and mask: the parent's handlers mean nothing here.
    let mut none: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut none);
    libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGPIPE] {
        libc::signal(sig, libc::SIG_DFL);
    }
    libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    // Standard streams to /dev/null, every other inherited descriptor closed: the relay must
    // not keep the starter's pipes, sockets or files alive.
    for fd in 0..3 {
        libc::dup2(devnull, fd);
    }
    for fd in 3..max_fd {
        if !keep.contains(&fd) {
            libc::close(fd);
        }
    }
    let (ma, mb) = (keep[0], keep[1]);
    let mut fds = [
        libc::pollfd {
            fd: ma,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: mb,
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    let mut buf = [0u8; RELAY_CHUNK];
    loop {
        fds[0].revents = 0;
        fds[1].revents = 0;
        let n = libc::poll(fds.as_mut_ptr(), 2, 1000);
        if n < 0 {
            if *libc::__errno_location() == libc::EINTR {
                continue;
            }
            libc::_exit(1);
        }
        for (from, to) in [(0usize, mb), (1usize, ma)] {
            if fds[from].revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) == 0 {
                continue;
            }
            let got = libc::read(fds[from].fd, buf.as_mut_ptr().cast(), buf.len());
            if got > 0 {
                // Non-blocking: what the other side has no room for is lost (UART overrun).
                libc::write(to, buf.as_ptr().cast(), got as usize);
            } else if fds[from].revents & libc::POLLIN == 0 {
                // Nothing to read but a hang-up condition: do not spin on it.
                libc::poll(std::ptr::null_mut(), 0, 20);
            }
        }
    }
}

/// A running pty pair with its relay; Drop ends the relay (its links dangle, and are removed
/// with the temporary directory of [`SerialLine::temp`]).
#[derive(Debug)]
pub struct SerialLine {
    a: PathBuf,
    b: PathBuf,
    relay: ChildGuard,
    /// Temporary directory to remove on Drop (when created by [`SerialLine::temp`]).
    temp_dir: Option<PathBuf>,
}

impl SerialLine {
    /// Opens a pty pair linked at `a` and `b` (their directory must exist) and starts its
    /// relay, owned by this guard. `_log` is accepted for compatibility (the relay logs
    /// nothing).
    pub fn create(a: &Path, b: &Path, _log: Option<&Path>) -> Result<SerialLine> {
        let relay = start_relay(a, b, RelayLife::Owned, "serial relay")?;
        Ok(SerialLine {
            a: a.to_path_buf(),
            b: b.to_path_buf(),
            relay,
            temp_dir: None,
        })
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

    pub fn path_a(&self) -> &Path {
        &self.a
    }

    pub fn path_b(&self) -> &Path {
        &self.b
    }

    /// PID of the relay process.
    pub fn pid(&self) -> u32 {
        self.relay.pid()
    }

    pub fn guard(&self) -> &ChildGuard {
        &self.relay
    }

    /// Cuts the line (SIGSTOP the relay: nothing crosses, no hang-up).
    pub fn cut(&mut self) -> bool {
        self.relay.stop()
    }

    /// Restores the line (SIGCONT).
    pub fn restore(&mut self) -> bool {
        self.relay.cont()
    }

    /// Hangs the line up: the relay ends and both masters close.
    pub fn hang_up(&mut self) {
        self.relay.kill();
    }

    /// Gives up ownership of the relay (keep the PID in a state file); returns its PID.
    pub fn detach(mut self) -> u32 {
        self.temp_dir = None;
        let guard = std::mem::replace(&mut self.relay, ChildGuard::none("detached relay"));
        guard.detach()
    }
}

impl Drop for SerialLine {
    fn drop(&mut self) {
        self.relay.kill();
        if let Some(dir) = self.temp_dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
