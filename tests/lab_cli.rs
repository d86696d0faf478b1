//! The lab driven through the CLI as an operator drives it: `hadiag lab up`, `status`,
//! `fault node-kill`, `heal node-kill`, `down` — each a short-lived process. The point: a
//! daemon restarted by `heal` from the CLI keeps running after that CLI process exits, like
//! the daemons `lab up` starts. Needs root (CI runs as root); nothing passes vacuously.
//!
//! Everything is removed by `lab down`, also when an assertion fails (a guard runs it).

use hadiag::lab::state::StateFile;
use hadiag::lab::sys::{self, ProcessRecord};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn hadiag() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hadiag"))
}

/// A lab brought up by the CLI; Drop runs `hadiag lab down` so a failing test leaves nothing.
struct CliLab {
    name: String,
    root: tempfile::TempDir,
}

impl CliLab {
    fn run(&self, args: &[&str]) -> (bool, String) {
        let root = self.root.path().display().to_string();
        let mut full: Vec<&str> = vec!["lab"];
        full.extend_from_slice(&args[..1]);
        full.extend_from_slice(&["--name", &self.name, "--root", &root]);
        full.extend_from_slice(&args[1..]);
        let out = Command::new(hadiag())
            .args(&full)
            .output()
            .expect("run hadiag");
        let text = format!(
            "$ hadiag {}\n{}{}",
            full.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    fn ok(&self, args: &[&str]) -> String {
        let (ok, text) = self.run(args);
        assert!(ok, "{text}");
        text
    }

    fn state_path(&self) -> PathBuf {
        StateFile::path_for(self.root.path(), &self.name)
    }

    fn daemon(&self, node: &str) -> ProcessRecord {
        let f = StateFile::load(&self.state_path()).expect("state file");
        f.state
            .processes
            .get(&format!("daemon:{node}"))
            .cloned()
            .unwrap_or_else(|| panic!("no daemon:{node} in {:?}", f.state.processes))
    }

    /// Polls `lab status` until `want` holds for the line of every node in `nodes`.
    fn wait_status(&self, what: &str, nodes: &[&str], want: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let text = self.ok(&["status"]);
            let all = nodes.iter().all(|n| {
                text.lines()
                    .find(|l| l.split_whitespace().next() == Some(n))
                    .is_some_and(&want)
            });
            if all {
                return text;
            }
            assert!(
                start.elapsed() < Duration::from_secs(40),
                "never saw {what}; last status:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for CliLab {
    fn drop(&mut self) {
        if self.state_path().exists() {
            let (ok, text) = self.run(&["down"]);
            if !ok {
                eprintln!("cleanup: {text}");
            }
        }
    }
}

fn namespaces_with_prefix(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn operator_drives_the_lab_through_the_cli_and_a_healed_daemon_keeps_running() {
    sys::require_root().expect("lab CLI tests need root (CI runs them as root)");
    let lab = CliLab {
        name: format!("cli{}", std::process::id()),
        root: tempfile::tempdir().expect("temp dir"),
    };
    let up = lab.ok(&["up", "--nodes", "2", "--networks", "A,B"]);
    assert!(up.contains("is up"), "{up}");
    let prefix = format!("hdg-{}-", lab.name);
    assert_eq!(namespaces_with_prefix(&prefix).len(), 6, "{up}");
    lab.wait_status("both nodes healthy", &["n1", "n2"], |l| {
        l.contains("running") && l.contains("healthy")
    });

    // Kill n2 from the CLI: its daemon is gone and n1 says so.
    let before = lab.daemon("n2");
    assert!(before.is_alive());
    lab.ok(&["fault", "node-kill", "n2"]);
    lab.wait_status("n2 dead and n1 blaming n2", &["n1", "n2"], |l| {
        if l.starts_with("n2") {
            l.contains("dead")
        } else {
            l.contains("node_failed") && l.contains("n2")
        }
    });
    assert!(!before.is_alive(), "killed daemon still alive");
    let status = lab.ok(&["status"]);
    assert!(
        status.contains("node-kill n2"),
        "active fault listed:\n{status}"
    );

    // Heal from the CLI: a new daemon, and it outlives the CLI process that started it.
    let heal = lab.ok(&["heal", "node-kill", "n2"]);
    assert!(heal.contains("healed: node-kill n2"), "{heal}");
    let after = lab.daemon("n2");
    assert_ne!(after.pid, before.pid, "no new daemon recorded");
    let status = lab.wait_status("both healthy after the heal", &["n1", "n2"], |l| {
        l.contains("running") && l.contains("healthy")
    });
    assert!(
        after.is_alive(),
        "the restarted daemon died with the `lab heal` process:\n{status}"
    );
    assert!(status.contains("active faults: none"), "{status}");
    // Its parent is not the (long gone) CLI process: it runs in its own session.
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", after.pid)).expect("stat");
    let fields: Vec<&str> = stat[stat.rfind(')').expect(")") + 2..]
        .split_whitespace()
        .collect();
    assert_eq!(fields[3], after.pid.to_string(), "own session: {stat}");

    // Down removes everything, daemons included.
    let down = lab.ok(&["down"]);
    assert!(down.contains("removed"), "{down}");
    assert!(namespaces_with_prefix(&prefix).is_empty());
    assert!(!after.is_alive(), "daemon survived `lab down`");
    assert!(!Path::new(&lab.state_path()).exists());
}
