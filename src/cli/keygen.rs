//! `hadiag keygen`: a new cluster authentication key — 32 random bytes from the kernel's
//! random source, written to a new file with mode 0600 (the mode `check-config` demands),
//! optionally handed to the daemon's user. Copy the same file to every node.
//!
//! Must not: overwrite an existing key unless asked (`--force`): replacing the key on one node
//! silences it towards all the others.

use clap::Args;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Bytes of a generated key (HMAC-SHA256 keys gain nothing beyond the hash's block of 32).
pub const KEY_BYTES: usize = 32;

#[derive(Args, Debug, Clone)]
pub struct KeygenArgs {
    /// Where to write the key.
    #[arg(
        long,
        short = 'o',
        value_name = "FILE",
        default_value = "/etc/hadiag/hadiag.key"
    )]
    pub out: PathBuf,
    /// Give the file to this user (the daemon's, usually `hadiag`); it stays mode 0600.
    #[arg(long, value_name = "USER")]
    pub owner: Option<String>,
    /// Replace an existing file.
    #[arg(long)]
    pub force: bool,
}

fn uid_gid_of(user: &str) -> Result<(u32, u32), String> {
    let c = std::ffi::CString::new(user).map_err(|_| format!("bad user name {user:?}"))?;
    // SAFETY: getpwnam returns a pointer into static storage or null; we copy two integers
    // out of it at once and keep no reference.
    let pw = unsafe { libc::getpwnam(c.as_ptr()) };
    if pw.is_null() {
        return Err(format!(
            "no user {user:?} (the package creates `hadiag`; or useradd --system {user})"
        ));
    }
    // SAFETY: non-null, points at a valid passwd entry (see above).
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    Ok((uid, gid))
}

/// Writes a fresh key to `out` (mode 0600, owned by `owner` if given).
pub fn write_key(out: &Path, owner: Option<&str>, force: bool) -> Result<(), String> {
    let ids = owner.map(uid_gid_of).transpose()?;
    let mut key = [0u8; KEY_BYTES];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .map_err(|e| format!("reading /dev/urandom: {e}"))?;
    if force {
        match std::fs::remove_file(out) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: {e}", out.display())),
        }
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => format!(
                "{} exists; not replacing a cluster key (--force replaces it: every node needs the new one)",
                out.display()
            ),
            _ => format!("{}: {e}", out.display()),
        })?;
    f.write_all(&key)
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("{}: {e}", out.display()))?;
    if let Some((uid, gid)) = ids {
        std::os::unix::fs::fchown(&f, Some(uid), Some(gid))
            .map_err(|e| format!("chown {}: {e}", out.display()))?;
    }
    Ok(())
}

pub fn run(args: KeygenArgs) -> ExitCode {
    match write_key(&args.out, args.owner.as_deref(), args.force) {
        Ok(()) => {
            println!(
                "wrote a {KEY_BYTES}-byte key to {} (mode 0600{}); copy it to every node and set\n  auth: {{ key_id: k1, key_file: {} }}",
                args.out.display(),
                args.owner
                    .as_deref()
                    .map(|o| format!(", owner {o}"))
                    .unwrap_or_default(),
                args.out.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hadiag keygen: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn key_is_32_bytes_mode_0600_and_never_overwritten_silently() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("k");
        write_key(&p, None, false).unwrap();
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!(m.len(), KEY_BYTES as u64);
        assert_eq!(m.permissions().mode() & 0o777, 0o600);
        let first = std::fs::read(&p).unwrap();
        let e = write_key(&p, None, false).unwrap_err();
        assert!(e.contains("exists"), "{e}");
        write_key(&p, None, true).unwrap();
        assert_ne!(std::fs::read(&p).unwrap(), first);
        assert!(write_key(&p, Some("no-such-user-hadiag"), true)
            .unwrap_err()
            .contains("no user"));
    }
}
