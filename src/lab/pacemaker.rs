//! A real Pacemaker cluster inside a lab: Corosync (knet over every lab network) and
//! Pacemaker run in each node's network namespace, with hadiag beside them.
//!
//! Per node, an *anchor* process (`unshare -m -u`, then `sleep`) holds a private mount and
//! UTS namespace in which the node's own folders are bind-mounted over `/etc/corosync`,
//! `/var/lib/corosync`, `/run`, `/var/lib/pacemaker` and `/var/log/pacemaker`; `/dev/shm`
//! is a private tmpfs (libqb IPC keeps its ring buffers there; its sockets are abstract,
//! hence already private to the network namespace); an overlay adds the lab's fence agents
//! to `/usr/sbin`, where Pacemaker's fencer looks for `fence_*` agents. `corosync -f` and
//! `pacemakerd -f` are entered into those namespaces with `nsenter`; so is every command
//! the lab runs there ([`PacemakerCluster::exec`]) and hadiag's `attrd_updater`
//! ([`PacemakerCluster::attrd_command`]).
//!
//! Fence agents added to every node:
//! - `fence_hadiag`: the repository's wrapper script, pointed at the hadiag binary under test;
//! - `fence_lab_power`: the lab's power switch. `off`/`reboot` of node X kills, by PID,
//!   every process in X's network namespace (its Corosync, Pacemaker and hadiag: the
//!   machine is off) and logs `<unix-ms> <requester> <action> <target>` to
//!   [`PacemakerCluster::power_log`]. A dummy device that powered nothing off would let a
//!   fenced node go on fencing its peer, which is the very thing under test.
//!
//! Teardown (Drop): SIGKILL, by PID, every process whose mount *and* network namespace are
//! those of a node's anchor (recorded at start), then the guards. The private mounts vanish
//! with their namespace; nothing is mounted in the host's namespace.
//!
//! Must not: start anything in the host's namespaces, or signal a process outside them.

use crate::lab::cluster::{wait_for, Cluster};
use crate::lab::error::{LabError, Result};
use crate::lab::netns::{ChildGuard, Netns};
use crate::lab::sys;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// The shipped `fence_hadiag` wrapper; the lab points it at the binary under test.
const FENCE_HADIAG_WRAPPER: &str = include_str!("../../integration/fence_hadiag");
/// How long a node's Corosync may take to answer after start.
const COROSYNC_START: Duration = Duration::from_secs(15);

/// Mounts the node's folders in the anchor's fresh mount namespace, then holds it.
const ANCHOR_SCRIPT: &str = r#"set -e
D="$1"
mount --bind "$D/etc-corosync" /etc/corosync
mount --bind "$D/var-lib-corosync" /var/lib/corosync
mount --bind "$D/run" /run
mount --bind "$D/var-lib-pacemaker" /var/lib/pacemaker
mount --bind "$D/log" /var/log/pacemaker
mount -t tmpfs -o mode=1777,size=64m lab-shm /dev/shm
mount -t overlay lab-sbin -o "lowerdir=$D/sbin:/usr/sbin" /usr/sbin
hostname "$2"
: > "$D/anchor.ready"
exec sleep infinity
"#;

/// The lab's power switch (see the module docs). `$1`: the power folder.
fn power_agent(power_dir: &Path) -> String {
    format!(
        r#"#!/bin/sh
# hadiag lab power switch (fence agent). off/reboot of node X kills, by PID, every process in
# X's network namespace, recorded at lab start in {dir}/X.netns. Lab use only.
P='{dir}'
action=""; target=""
if [ $# -gt 0 ]; then
  while [ $# -gt 0 ]; do
    case "$1" in
      -o) action="$2"; shift ;;
      --action=*) action="${{1#--action=}}" ;;
      -n) target="$2"; shift ;;
      --plug=*) target="${{1#--plug=}}" ;;
    esac
    shift
  done
else
  while IFS='=' read -r k v; do
    case "$k" in
      action) action="$v" ;;
      port|plug|nodename) [ -n "$v" ] && target="$v" ;;
    esac
  done
fi
case "$action" in
  metadata)
    cat <<'XML'
<?xml version="1.0" ?>
<resource-agent name="fence_lab_power" shortdesc="hadiag lab power switch" >
<longdesc>Powers a hadiag lab node off by killing every process in its network namespace.</longdesc>
<vendor-url></vendor-url>
<parameters>
	<parameter name="action" unique="0" required="1">
		<getopt mixed="-o, --action=[action]" />
		<content type="string" default="reboot" />
		<shortdesc lang="en">Fencing action</shortdesc>
	</parameter>
	<parameter name="plug" unique="0" required="0">
		<getopt mixed="-n, --plug=[id]" />
		<content type="string" />
		<shortdesc lang="en">Node to fence</shortdesc>
	</parameter>
</parameters>
<actions>
	<action name="on" automatic="0" />
	<action name="off" />
	<action name="reboot" />
	<action name="status" />
	<action name="monitor" />
	<action name="metadata" />
	<action name="validate-all" />
</actions>
</resource-agent>
XML
    exit 0 ;;
  off|reboot)
    id=$(cat "$P/$target.netns") || exit 1
    echo "$(date +%s%3N) $(hostname) $action $target" >> "$P/power.log"
    for round in 1 2 3; do
      for d in /proc/[0-9]*; do
        [ "$(readlink "$d/ns/net" 2>/dev/null)" = "$id" ] && kill -9 "${{d#/proc/}}" 2>/dev/null
      done
    done
    exit 0 ;;
  *) exit 0 ;;
esac
"#,
        dir = power_dir.display()
    )
}

/// One node's Pacemaker stack.
#[derive(Debug)]
struct PcmkNode {
    name: String,
    ns: String,
    dir: PathBuf,
    anchor: ChildGuard,
    /// `mnt:[…]` and `net:[…]` of the anchor: what teardown matches processes against.
    mnt_ns: String,
    net_ns: String,
    corosync: Option<ChildGuard>,
    pacemakerd: Option<ChildGuard>,
}

/// Corosync + Pacemaker on every node of a lab [`Cluster`]. Drop stops them all.
#[derive(Debug)]
pub struct PacemakerCluster {
    dir: PathBuf,
    nodes: Vec<PcmkNode>,
}

fn write(path: &Path, text: &str, mode: u32) -> Result<()> {
    std::fs::write(path, text).map_err(|e| LabError::io(path, e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| LabError::io(path, e))
}

fn ns_link(pid: u32, kind: &str) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .ok()
        .map(|p| p.display().to_string())
}

/// Children die with the test process (they run in namespaces the lab removes anyway).
fn owned(mut cmd: Command) -> Command {
    // SAFETY: prctl is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
            Ok(())
        });
    }
    cmd
}

/// The `corosync.conf` of a lab: knet, one link per lab network, two-node quorum.
pub fn corosync_conf(cluster: &Cluster) -> String {
    let layout = cluster.layout();
    let mut s = String::new();
    s.push_str(
        "# hadiag lab: generated, do not edit. Links on lab (documentation) addresses only.\n",
    );
    s.push_str(&format!(
        "totem {{\n  version: 2\n  cluster_name: {}\n  transport: knet\n  crypto_cipher: none\n  crypto_hash: none\n  token: 2000\n}}\n",
        layout.name.chars().take(32).collect::<String>()
    ));
    s.push_str("nodelist {\n");
    for (i, n) in layout.nodes.iter().enumerate() {
        s.push_str(&format!(
            "  node {{\n    name: {}\n    nodeid: {}\n",
            n.name,
            i + 1
        ));
        for (link, iface) in n.interfaces.iter().enumerate() {
            s.push_str(&format!("    ring{link}_addr: {}\n", iface.address));
        }
        s.push_str("  }\n");
    }
    s.push_str("}\n");
    let two = if layout.nodes.len() == 2 {
        "  two_node: 1\n"
    } else {
        ""
    };
    s.push_str(&format!(
        "quorum {{\n  provider: corosync_votequorum\n{two}}}\n"
    ));
    s.push_str(
        "logging {\n  to_stderr: yes\n  to_syslog: no\n  to_logfile: no\n  timestamp: on\n}\n",
    );
    s
}

impl PacemakerCluster {
    /// Starts Corosync and Pacemaker on every node of `cluster`; `hadiag` is the binary
    /// `fence_hadiag` runs. Returns once every node's Corosync answers (Pacemaker then
    /// takes its election time: see [`PacemakerCluster::wait_online`]).
    pub fn start(cluster: &Cluster, hadiag: &Path) -> Result<PacemakerCluster> {
        sys::require_root()?;
        for tool in ["corosync", "pacemakerd", "nsenter", "unshare"] {
            if sys::run_unchecked("which", &[tool], None)
                .map(|o| !o.status.success())
                .unwrap_or(true)
            {
                return Err(LabError::Spec(format!(
                    "{tool} is not installed (apt-get install pacemaker pacemaker-cli-utils corosync fence-agents)"
                )));
            }
        }
        let dir = cluster.layout().dir.join("pacemaker");
        let power = dir.join("power");
        std::fs::create_dir_all(&power).map_err(|e| LabError::io(&power, e))?;
        let conf = corosync_conf(cluster);
        let mut key = [0u8; 128];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
        let mut pc = PacemakerCluster {
            dir: dir.clone(),
            nodes: Vec::new(),
        };
        for n in &cluster.layout().nodes {
            let nd = dir.join(&n.name);
            for sub in [
                "etc-corosync",
                "var-lib-corosync",
                "run",
                "log",
                "sbin",
                "var-lib-pacemaker/cib",
                "var-lib-pacemaker/pengine",
                "var-lib-pacemaker/blackbox",
                "var-lib-pacemaker/cores",
            ] {
                let p = nd.join(sub);
                std::fs::create_dir_all(&p).map_err(|e| LabError::io(&p, e))?;
            }
            for (sub, mode) in [("var-lib-pacemaker", "750"), ("log", "770")] {
                let p = nd.join(sub).display().to_string();
                sys::run("chown", &["-R", "hacluster:haclient", &p])?;
                sys::run("chmod", &["-R", mode, &p])?;
            }
            write(&nd.join("etc-corosync/corosync.conf"), &conf, 0o644)?;
            let keyp = nd.join("etc-corosync/authkey");
            std::fs::write(&keyp, key).map_err(|e| LabError::io(&keyp, e))?;
            std::fs::set_permissions(&keyp, std::fs::Permissions::from_mode(0o400))
                .map_err(|e| LabError::io(&keyp, e))?;
            let wrapper = FENCE_HADIAG_WRAPPER.replace(
                "\"${HADIAG_BIN:-/usr/bin/hadiag}\"",
                &format!("'{}'", hadiag.display()),
            );
            if wrapper == FENCE_HADIAG_WRAPPER {
                return Err(LabError::Spec(
                    "integration/fence_hadiag no longer names \"${HADIAG_BIN:-/usr/bin/hadiag}\""
                        .into(),
                ));
            }
            write(&nd.join("sbin/fence_hadiag"), &wrapper, 0o755)?;
            write(
                &nd.join("sbin/fence_lab_power"),
                &power_agent(&power),
                0o755,
            )?;

            let ns = Netns::borrowed(&n.ns);
            let mut cmd = ns.command(
                "unshare",
                &[
                    "-m",
                    "-u",
                    "--propagation",
                    "private",
                    "sh",
                    "-c",
                    ANCHOR_SCRIPT,
                    "anchor",
                    &nd.display().to_string(),
                    &n.name,
                ],
            );
            cmd.current_dir(&nd);
            let anchor = ChildGuard::spawn(
                owned(cmd),
                &format!("pacemaker anchor of {}", n.name),
                Some(&nd.join("anchor.log")),
            )?;
            let ready = nd.join("anchor.ready");
            let mut node = PcmkNode {
                name: n.name.clone(),
                ns: n.ns.clone(),
                dir: nd.clone(),
                anchor,
                mnt_ns: String::new(),
                net_ns: String::new(),
                corosync: None,
                pacemakerd: None,
            };
            let waited = wait_for(
                &format!("mounts of {}'s anchor", n.name),
                Duration::from_secs(10),
                || ready.exists() || !node.anchor.is_running(),
            );
            if waited.is_err() || !ready.exists() {
                let log = std::fs::read_to_string(nd.join("anchor.log")).unwrap_or_default();
                pc.nodes.push(node);
                return Err(LabError::Spec(format!(
                    "namespaces for {}'s Pacemaker could not be set up: {}",
                    n.name,
                    log.trim()
                )));
            }
            let pid = node.anchor.pid();
            node.mnt_ns = ns_link(pid, "mnt").unwrap_or_default();
            node.net_ns = ns_link(pid, "net").unwrap_or_default();
            write(
                &power.join(format!("{}.netns", n.name)),
                &node.net_ns,
                0o644,
            )?;
            pc.nodes.push(node);
        }
        for i in 0..pc.nodes.len() {
            let g = pc.spawn_in(i, "corosync", &["corosync", "-f"])?;
            pc.nodes[i].corosync = Some(g);
        }
        for i in 0..pc.nodes.len() {
            let name = pc.nodes[i].name.clone();
            wait_for(&format!("corosync on {name}"), COROSYNC_START, || {
                pc.exec(&name, &["corosync-cmapctl", "-g", "totem.cluster_name"])
                    .map(|o| o.status.success())
                    .unwrap_or(false)
            })?;
        }
        for i in 0..pc.nodes.len() {
            let g = pc.spawn_in(i, "pacemakerd", &["pacemakerd", "-f"])?;
            pc.nodes[i].pacemakerd = Some(g);
        }
        Ok(pc)
    }

    fn node(&self, name: &str) -> Result<&PcmkNode> {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .ok_or_else(|| LabError::Spec(format!("no Pacemaker node {name:?}")))
    }

    fn enter_args(&self, anchor: u32) -> Vec<String> {
        ["-t", &anchor.to_string(), "-m", "-u", "-n"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    fn spawn_in(&self, i: usize, what: &str, argv: &[&str]) -> Result<ChildGuard> {
        let n = &self.nodes[i];
        let mut cmd = Command::new("nsenter");
        cmd.args(self.enter_args(n.anchor.pid())).args(argv);
        cmd.current_dir(&n.dir);
        ChildGuard::spawn(
            owned(cmd),
            &format!("{what} of {}", n.name),
            Some(&n.dir.join(format!("{what}.log"))),
        )
    }

    /// Runs `argv` inside `node`'s namespaces (network, mount, UTS); output whatever the status.
    pub fn exec(&self, node: &str, argv: &[&str]) -> Result<Output> {
        let n = self.node(node)?;
        let mut args = self.enter_args(n.anchor.pid());
        args.extend(argv.iter().map(|s| s.to_string()));
        sys::run_unchecked("nsenter", &args, None)
    }

    /// Like [`PacemakerCluster::exec`], Err on a non-zero exit (with its stderr).
    pub fn exec_ok(&self, node: &str, argv: &[&str]) -> Result<String> {
        let out = self.exec(node, argv)?;
        if !out.status.success() {
            return Err(LabError::Command {
                command: format!("{} (in {node})", argv.join(" ")),
                status: out.status.to_string(),
                stderr: format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stderr).trim(),
                    String::from_utf8_lossy(&out.stdout).trim()
                ),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The `attrd_updater` command hadiag on `node` must run (it runs in the node's network
    /// namespace but not in the private mount namespace that holds Pacemaker's IPC).
    pub fn attrd_command(&self, node: &str) -> Result<Vec<String>> {
        let n = self.node(node)?;
        Ok(vec![
            "nsenter".into(),
            "-t".into(),
            n.anchor.pid().to_string(),
            "-m".into(),
            "-u".into(),
            "attrd_updater".into(),
        ])
    }

    /// A `pacemaker:` section for `node`'s hadiag configuration.
    pub fn config_section(&self, node: &str) -> Result<String> {
        let cmd = self.attrd_command(node)?;
        Ok(format!(
            "pacemaker:\n  command: [{}]\n  timeout: 10s\n",
            cmd.join(", ")
        ))
    }

    /// Appends [`PacemakerCluster::config_section`] to every node's hadiag config (before
    /// the daemons start).
    pub fn enable_in_hadiag_configs(&self, cluster: &Cluster) -> Result<()> {
        for n in &cluster.layout().nodes {
            let section = self.config_section(&n.name)?;
            let mut text =
                std::fs::read_to_string(&n.config).map_err(|e| LabError::io(&n.config, e))?;
            text.push_str(&section);
            std::fs::write(&n.config, text).map_err(|e| LabError::io(&n.config, e))?;
        }
        Ok(())
    }

    /// Waits until `from` sees every node in `online` online in a partition with quorum and
    /// a DC elected.
    pub fn wait_online(&self, from: &str, online: &[&str], within: Duration) -> Result<String> {
        let mut last = String::new();
        let want = format!("Online: [ {} ]", online.join(" "));
        let res = wait_for(
            &format!("Pacemaker on {from} to show {want}"),
            within,
            || {
                last = self
                    .exec(from, &["crm_mon", "-1"])
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_default();
                let ok = last.contains(&want) && last.contains("partition with quorum");
                if !ok {
                    self.reap_lost_children();
                    std::thread::sleep(Duration::from_millis(400));
                }
                ok
            },
        );
        res.map(|_| last.clone())
            .map_err(|e| LabError::Spec(format!("{e}; last crm_mon -1:\n{last}")))
    }

    /// Lines the lab power switch logged: `<unix-ms> <requester> <action> <target>`.
    pub fn power_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("power/power.log")).unwrap_or_default()
    }

    /// Whether `node`'s Corosync still runs (the power switch kills it).
    pub fn is_running(&mut self, node: &str) -> bool {
        self.nodes
            .iter_mut()
            .find(|n| n.name == node)
            .and_then(|n| n.corosync.as_mut())
            .is_some_and(ChildGuard::is_running)
    }

    /// The per-node folder (logs: `corosync.log`, `pacemakerd.log`, `log/pacemaker.log`).
    pub fn node_dir(&self, node: &str) -> Option<PathBuf> {
        self.node(node).ok().map(|n| n.dir.clone())
    }

    /// The tail of every node's Pacemaker log, for failure messages.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            for f in ["pacemakerd.log", "log/pacemaker.log", "corosync.log"] {
                let text = std::fs::read_to_string(n.dir.join(f)).unwrap_or_default();
                let all: Vec<&str> = text.lines().collect();
                let tail = all[all.len().saturating_sub(lines)..].join("\n");
                out.push_str(&format!("--- {} {f}:\n{tail}\n", n.name));
            }
        }
        out
    }

    /// Works around a lost-SIGCHLD race in Pacemaker 2.1.5's controller (Debian 12): it
    /// fetches an agent's metadata asynchronously before an action and synchronously when
    /// recording a result whose agent is not cached yet; the synchronous wait reads SIGCHLD
    /// from a signalfd, and when an asynchronous metadata child exits during that wait its
    /// SIGCHLD is consumed there. The child stays a zombie, the controller's timer reports
    /// "process will not die", and every later transition waits on it — until any other
    /// SIGCHLD makes the controller reap all its finished children. This sends that SIGCHLD
    /// to a node's `pacemaker-controld` when it has an unreaped child (state `Z`), and only
    /// then. Returns how many controllers were nudged.
    pub fn reap_lost_children(&self) -> usize {
        let mut nudged = 0;
        for n in &self.nodes {
            if n.mnt_ns.is_empty() || n.net_ns.is_empty() {
                continue;
            }
            let pids = pids_in(&n.mnt_ns, &n.net_ns);
            let stats: Vec<(u32, String)> = pids
                .iter()
                .filter_map(|&p| {
                    std::fs::read_to_string(format!("/proc/{p}/stat"))
                        .ok()
                        .map(|s| (p, s))
                })
                .collect();
            for (pid, stat) in &stats {
                if proc_comm(stat) != Some("pacemaker-contr") {
                    continue;
                }
                let has_zombie = stats
                    .iter()
                    .any(|(_, s)| proc_state_ppid(s) == Some(('Z', *pid)));
                if has_zombie {
                    sys::send_signal(*pid, libc::SIGCHLD);
                    nudged += 1;
                }
            }
        }
        nudged
    }

    /// Namespaces' network names of the nodes (for diagnostics).
    pub fn namespaces(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.ns.clone()).collect()
    }
}

/// The command name in a `/proc/PID/stat` line (kernel-truncated to 15 bytes).
fn proc_comm(stat: &str) -> Option<&str> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    stat.get(open + 1..close)
}

/// State and parent PID from a `/proc/PID/stat` line (fields 3 and 4, after the command).
fn proc_state_ppid(stat: &str) -> Option<(char, u32)> {
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    Some((state, ppid))
}

/// PIDs whose mount and network namespaces are `mnt` and `net`.
fn pids_in(mnt: &str, net: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(|&pid| {
            pid != std::process::id()
                && ns_link(pid, "mnt").as_deref() == Some(mnt)
                && ns_link(pid, "net").as_deref() == Some(net)
        })
        .collect()
}

impl Drop for PacemakerCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if !n.mnt_ns.is_empty() && !n.net_ns.is_empty() {
                // A few rounds: Pacemaker's children may respawn while we kill.
                for _ in 0..5 {
                    let pids = pids_in(&n.mnt_ns, &n.net_ns);
                    if pids.is_empty() {
                        break;
                    }
                    for pid in pids {
                        sys::send_signal(pid, libc::SIGKILL);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            for g in [n.pacemakerd.as_mut(), n.corosync.as_mut()]
                .into_iter()
                .flatten()
            {
                g.kill();
            }
            n.anchor.kill();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{proc_comm, proc_state_ppid};

    #[test]
    fn stat_lines_parse_even_with_odd_command_names() {
        let line = "4242 (pacemaker-contr) S 4200 4200 4200 0 -1 4194560 1 0 0 0";
        assert_eq!(proc_comm(line), Some("pacemaker-contr"));
        assert_eq!(proc_state_ppid(line), Some(('S', 4200)));
        let odd = "77 (a) b (c)) Z 4242 77 77 0 -1";
        assert_eq!(proc_comm(odd), Some("a) b (c)"));
        assert_eq!(proc_state_ppid(odd), Some(('Z', 4242)));
        assert_eq!(proc_state_ppid("garbage"), None);
    }
}
