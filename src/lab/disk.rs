//! A node's disk for the lab: a small image file attached to a loop device, probed through
//! a symlink the lab can re-point.
//!
//! - failing (EIO): the image is truncated to 0 bytes under the attached loop device; every
//!   read of the loop device (buffered or O_DIRECT) then fails with EIO. Healing re-extends
//!   the image. No device-mapper needed (this kernel has none).
//!   Fallback when no loop device can be attached: the symlink points at `/proc/self/mem`,
//!   whose offset 0 reads fail with EIO (O_DIRECT opens fail with EINVAL) — an error either way.
//! - hung: the symlink points at a FIFO nobody writes; an open for reading blocks forever.
//!   Healing re-points the symlink and opens the FIFO for writing once, which releases any
//!   reader still blocked in open (its read then returns end-of-file).
//!
//! Must not: detach a loop device whose backing file is not this disk's image.

use crate::lab::error::{LabError, Result};
use crate::lab::sys;
use serde::{Deserialize, Serialize};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Default image size: a few blocks are enough for a read probe.
pub const DISK_SIZE_BYTES: u64 = 1 << 20;

/// Where a lab disk lives; serializable so `lab fault` in another process can drive it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabDisk {
    /// The backing image.
    pub image: PathBuf,
    /// Loop device attached to `image`, if one could be attached.
    pub loop_device: Option<String>,
    /// The path handed to the daemon's disk probe (a symlink).
    pub probe_path: PathBuf,
    /// FIFO used for the hung mode.
    pub fifo: PathBuf,
    pub size_bytes: u64,
}

impl LabDisk {
    /// Creates `dir/disk.img`, attaches a loop device (falls back to the plain file when
    /// that fails), and points `dir/disk` at it.
    pub fn create(dir: &Path) -> Result<LabDisk> {
        let image = dir.join("disk.img");
        // A recognisable pattern rather than zeros, so a probe may check what it reads.
        let block: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
        let mut data = Vec::with_capacity(DISK_SIZE_BYTES as usize);
        while (data.len() as u64) < DISK_SIZE_BYTES {
            data.extend_from_slice(&block);
        }
        std::fs::write(&image, &data).map_err(|e| LabError::io(&image, e))?;
        let fifo = dir.join("disk.fifo");
        make_fifo(&fifo)?;
        let image_arg = image.display().to_string();
        let loop_device = sys::run("losetup", &["-f", "--show", image_arg.as_str()])
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|d| d.starts_with("/dev/loop"));
        let disk = LabDisk {
            image,
            loop_device,
            probe_path: dir.join("disk"),
            fifo,
            size_bytes: DISK_SIZE_BYTES,
        };
        disk.point_at(&disk.healthy_target())?;
        Ok(disk)
    }

    fn healthy_target(&self) -> PathBuf {
        match &self.loop_device {
            Some(dev) => PathBuf::from(dev),
            None => self.image.clone(),
        }
    }

    /// Atomically re-points the probe symlink.
    fn point_at(&self, target: &Path) -> Result<()> {
        let tmp = self.probe_path.with_extension("tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(target, &tmp).map_err(|e| LabError::io(&tmp, e))?;
        std::fs::rename(&tmp, &self.probe_path).map_err(|e| LabError::io(&self.probe_path, e))
    }

    fn set_image_len(&self, len: u64) -> Result<()> {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.image)
            .map_err(|e| LabError::io(&self.image, e))?;
        f.set_len(len).map_err(|e| LabError::io(&self.image, e))
    }

    /// Reads start failing with EIO.
    pub fn fail(&self) -> Result<()> {
        match &self.loop_device {
            Some(dev) => {
                self.set_image_len(0)?;
                // Drop cached blocks so buffered readers see the error too (best effort).
                let _ = sys::run_unchecked("blockdev", &["--flushbufs", dev.as_str()], None);
                Ok(())
            }
            None => self.point_at(Path::new("/proc/self/mem")),
        }
    }

    /// Reads start hanging (open of a FIFO without writer).
    pub fn hang(&self) -> Result<()> {
        self.point_at(&self.fifo)
    }

    /// Back to a healthy disk; releases readers blocked on the FIFO.
    pub fn heal(&self) -> Result<()> {
        if self.loop_device.is_some() {
            self.set_image_len(self.size_bytes)?;
        }
        self.point_at(&self.healthy_target())?;
        self.release_fifo_readers();
        Ok(())
    }

    /// Opens the FIFO for writing without blocking: succeeds only when a reader waits, and
    /// closing it at once gives that reader end-of-file.
    fn release_fifo_readers(&self) {
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&self.fifo);
    }

    /// Detaches the loop device (only if it is still backed by our image) and releases
    /// blocked readers; files are left to the owner of the directory.
    pub fn teardown(&self) {
        self.release_fifo_readers();
        if let Some(dev) = &self.loop_device {
            let ours = || loop_backing_file(dev).as_deref() == Some(self.image.as_path());
            if ours() {
                let _ = sys::run_unchecked("losetup", &["-d", dev.as_str()], None);
                // A device someone still has open (udev probing a new block device, a reader
                // on its way out) is only marked for auto-clear; the kernel detaches it at the
                // last close. Teardown means gone, so wait for that — bounded.
                let start = std::time::Instant::now();
                while ours() && start.elapsed() < LOOP_DETACH_WAIT {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            }
        }
    }
}

/// Creates a FIFO with mode 0600.
fn make_fifo(path: &Path) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| LabError::io(path, std::io::Error::other(e)))?;
    // SAFETY: mkfifo with a valid NUL-terminated path.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        return Err(LabError::io(path, std::io::Error::last_os_error()));
    }
    Ok(())
}

/// How long a teardown waits for a busy loop device's deferred detach.
const LOOP_DETACH_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Backing file of a loop device, from sysfs.
pub fn loop_backing_file(dev: &str) -> Option<PathBuf> {
    let name = dev.strip_prefix("/dev/")?;
    let s = std::fs::read_to_string(format!("/sys/block/{name}/loop/backing_file")).ok()?;
    let s = s.trim();
    // A truncated-away or deleted file shows " (deleted)"; compare the path part.
    Some(PathBuf::from(s.strip_suffix(" (deleted)").unwrap_or(s)))
}
