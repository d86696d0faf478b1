//! What the install path ships, checked without installing anything on this machine:
//! - the man page and shell completions in `dist/` match the CLI definitions (regenerate with
//!   `HADIAG_UPDATE_DIST=1 cargo test --test ops_install`);
//! - every asset the Debian package lists exists;
//! - `hadiag keygen` writes a key that `check-config` accepts, and refuses to overwrite it;
//! - the systemd unit passes `systemd-analyze verify` and rates ≤ 3.0 in
//!   `systemd-analyze security` (`.ci/run` installs systemd for it).
//!
//! The package itself is built and installed with dpkg by `.ci/run` (it needs cargo-deb and
//! changes the machine).

use std::path::{Path, PathBuf};
use std::process::Command;

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hadiag"))
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new(exe()).args(args).output().expect("run hadiag")
}

#[test]
fn man_page_and_completions_in_dist_match_the_cli() {
    let update = std::env::var_os("HADIAG_UPDATE_DIST").is_some();
    let cases: [(&[&str], &str); 4] = [
        (&["manpage"], "dist/hadiag.1"),
        (&["completions", "bash"], "dist/completions/hadiag.bash"),
        (&["completions", "zsh"], "dist/completions/_hadiag"),
        (&["completions", "fish"], "dist/completions/hadiag.fish"),
    ];
    let mut stale = Vec::new();
    for (args, file) in cases {
        let out = run(args);
        assert!(out.status.success(), "hadiag {args:?}: {out:?}");
        assert!(!out.stdout.is_empty(), "hadiag {args:?} printed nothing");
        let path = repo().join(file);
        if update {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &out.stdout).unwrap();
        } else if std::fs::read(&path).ok().as_deref() != Some(&out.stdout[..]) {
            stale.push(file);
        }
    }
    assert!(
        stale.is_empty(),
        "{stale:?} differ from the CLI: run HADIAG_UPDATE_DIST=1 cargo test --test ops_install"
    );
    let man = std::fs::read_to_string(repo().join("dist/hadiag.1")).unwrap();
    for sub in ["QUIESCE", "RESUME", "LEAVE", "REJOIN", "KEYGEN", "STATUS"] {
        assert!(
            man.contains(&format!("HADIAG {sub}")),
            "man page lacks {sub}"
        );
    }
}

#[test]
fn every_debian_package_asset_exists() {
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let deb = &manifest[manifest
        .find("[package.metadata.deb]")
        .expect("deb metadata")..];
    let mut n = 0;
    for line in deb.lines().filter(|l| l.trim_start().starts_with("[\"")) {
        let src = line.trim_start().trim_start_matches("[\"");
        let src = &src[..src.find('"').unwrap()];
        if src.starts_with("target/") {
            continue;
        }
        n += 1;
        if let Some(dir) = src.strip_suffix("/*") {
            assert!(repo().join(dir).is_dir(), "asset dir {dir} missing");
        } else if let Some((dir, ext)) = src.split_once("/*.") {
            let found = std::fs::read_dir(repo().join(dir))
                .unwrap()
                .any(|e| e.unwrap().path().extension().is_some_and(|x| x == ext));
            assert!(found, "no {src}");
        } else {
            assert!(repo().join(src).is_file(), "asset {src} missing");
        }
    }
    assert!(n >= 10, "only {n} assets parsed");
    assert!(repo().join("config/hadiag.service").is_file());
    assert!(repo().join("debian/postinst").is_file());
    let license = std::fs::read_to_string(repo().join("LICENSE")).unwrap();
    assert!(license.contains("Apache License") && license.contains("Version 2.0"));
}

#[test]
fn keygen_writes_a_key_check_config_accepts() {
    let d = tempfile::tempdir().unwrap();
    let key = d.path().join("hadiag.key");
    let out = run(&["keygen", "--out", key.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let again = run(&["keygen", "--out", key.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1), "overwrote a key: {again:?}");
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));
    // The shipped example with the inline key replaced by the generated file.
    let example = std::fs::read_to_string(repo().join("config/two-node.yaml")).unwrap();
    let start = example.find("auth:\n").unwrap();
    let end = start + example[start..].find("\n\n").unwrap();
    let cfg = format!(
        "{}auth: {{ key_id: k1, key_file: {} }}{}",
        &example[..start],
        key.display(),
        &example[end..]
    );
    let cfg_path = d.path().join("hadiag.yaml");
    std::fs::write(&cfg_path, cfg).unwrap();
    let out = run(&["check-config", cfg_path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "check-config refused a keygen key: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn systemd_analyze() -> &'static str {
    let p = "/usr/bin/systemd-analyze";
    assert!(
        Path::new(p).exists(),
        "systemd-analyze missing: apt-get install systemd (.ci/run does)"
    );
    p
}

#[test]
fn systemd_unit_is_hardened() {
    let unit = repo().join("config/hadiag.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    for must in [
        "Type=notify",
        "WatchdogSec=",
        "After=network-online.target time-sync.target",
        "ProtectClock=yes",
        "ProtectKernelLogs=yes",
        "RestrictRealtime=yes",
        "SystemCallFilter=@system-service",
        "UMask=0077",
    ] {
        assert!(text.contains(must), "unit lacks {must}");
    }
    assert!(
        !text.contains("SupplementaryGroups=dialout disk") && !text.contains(" disk\n"),
        "the disk group grants write access to every block device"
    );
    let out = Command::new(systemd_analyze())
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&unit)
        .output()
        .expect("systemd-analyze");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let level: f64 = text
        .lines()
        .find_map(|l| l.split("exposure level for hadiag.service:").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{text}"));
    println!("systemd-analyze security exposure: {level} (target <= 3.0)");
    assert!(level <= 3.0, "exposure {level} > 3.0:\n{text}");
}
