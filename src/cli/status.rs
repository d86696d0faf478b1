//! `hadiag status`: the live table of a running daemon (networks × nodes: carrier, reference,
//! heard, loss, RTT; serial lines; disks; monitors; the current verdict), read from its JSON
//! API. Also the small API client and table/colour helpers `explain` shares.
//!
//! Colour only on a terminal (and never with `NO_COLOR` set); plain text when piped; JSON with
//! `--json`. This module only reads and prints.

use crate::http::StatusSnapshot;
use crate::journal::record::fmt_ts;
use anyhow::{anyhow, bail, Context};
use clap::Args;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Where the daemon's API is and how to authenticate.
#[derive(Args, Debug, Clone, Default)]
pub struct ApiArgs {
    /// Read the API address and token from this configuration file.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// API base URL (overrides the configuration), e.g. http://127.0.0.1:9617.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// File holding the API bearer token (default: from the configuration or $HADIAG_API_TOKEN).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct StatusArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// Print the raw JSON status.
    #[arg(long)]
    pub json: bool,
    /// Refresh every N seconds until interrupted.
    #[arg(long, value_name = "SECONDS")]
    pub watch: Option<u64>,
    /// Never use colour.
    #[arg(long)]
    pub no_color: bool,
    /// Monitoring-plugin mode: print one line and exit 0 healthy, 1 degraded (or maintenance,
    /// or a failure elsewhere), 2 a failure involving this node, 3 unknown (Nagios/Icinga,
    /// keepalived vrrp_script, corosync-qdevice heuristics; see docs/integrations.md).
    #[arg(long, conflicts_with_all = ["json", "watch"])]
    pub check: bool,
    /// With --check: exit 0 when this node may hold services (not isolated, not in
    /// maintenance, no failure involving it) and 1 otherwise (for keepalived).
    #[arg(long, requires = "check")]
    pub serving: bool,
}

/// Resolved API endpoint.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub base: String,
    pub token: Option<String>,
}

impl ApiArgs {
    pub fn endpoint(&self) -> anyhow::Result<Endpoint> {
        let mut base = None;
        let mut token = None;
        if let Some(c) = &self.config {
            let cfg = crate::config::load(c).map_err(|e| anyhow!("{e}"))?;
            let mut addr = cfg.listen;
            if addr.ip().is_unspecified() {
                addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            base = Some(format!("http://{addr}"));
            token = cfg.api_token.clone();
        }
        if let Some(u) = &self.url {
            base = Some(u.trim_end_matches('/').to_string());
        }
        if let Some(f) = &self.token_file {
            let t = std::fs::read_to_string(f)
                .with_context(|| format!("reading token file {}", f.display()))?;
            token = Some(t.trim().to_string());
        } else if token.is_none() {
            token = std::env::var("HADIAG_API_TOKEN")
                .ok()
                .filter(|t| !t.is_empty());
        }
        let base = base.unwrap_or_else(|| format!("http://{}", crate::http::DEFAULT_LISTEN));
        Ok(Endpoint { base, token })
    }
}

/// Largest API response read (a status of 64 nodes is far smaller).
const MAX_RESPONSE: usize = 16 * 1024 * 1024;

/// `GET base+path`; returns status and body. One short-lived runtime per call.
pub fn api_get(ep: &Endpoint, path: &str) -> anyhow::Result<(u16, String)> {
    use http_body_util::{BodyExt, Empty, Limited};
    let url = format!("{}{}", ep.base, path);
    let uri: hyper::Uri = url
        .parse()
        .with_context(|| format!("bad API URL {url:?}"))?;
    if uri.scheme_str() != Some("http") {
        bail!("API URL {url:?}: only http:// is supported");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<Empty<bytes::Bytes>>();
        let mut req = hyper::Request::get(uri);
        if let Some(t) = &ep.token {
            req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = req.body(Empty::new())?;
        let fut = async {
            let resp = client
                .request(req)
                .await
                .with_context(|| format!("cannot reach the hadiag daemon at {}", ep.base))?;
            let status = resp.status().as_u16();
            let body = Limited::new(resp.into_body(), MAX_RESPONSE)
                .collect()
                .await
                .map_err(|e| anyhow!("reading response from {url}: {e}"))?
                .to_bytes();
            Ok::<_, anyhow::Error>((status, String::from_utf8_lossy(&body).into_owned()))
        };
        tokio::time::timeout(Duration::from_secs(10), fut)
            .await
            .map_err(|_| anyhow!("no answer from {} within 10s", ep.base))?
    })
}

/// `GET` that expects 200 and JSON; a non-200 becomes an error carrying the server's message.
pub fn api_json<T: serde::de::DeserializeOwned>(ep: &Endpoint, path: &str) -> anyhow::Result<T> {
    let (status, body) = api_get(ep, path)?;
    if status != 200 {
        let msg = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or(body);
        bail!("{}{path}: HTTP {status}: {}", ep.base, msg.trim());
    }
    serde_json::from_str(&body).with_context(|| format!("{}{path}: unexpected response", ep.base))
}

/// Terminal styling: ANSI colour on a terminal unless disabled.
#[derive(Copy, Clone, Debug)]
pub struct Style {
    pub color: bool,
}

impl Style {
    pub fn detect(no_color: bool) -> Style {
        let color =
            !no_color && std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal();
        Style { color }
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    pub fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }

    pub fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }

    pub fn red(&self, s: &str) -> String {
        self.paint("31", s)
    }

    pub fn green(&self, s: &str) -> String {
        self.paint("32", s)
    }

    pub fn yellow(&self, s: &str) -> String {
        self.paint("33", s)
    }

    /// Colours a state word: good green, bad red, unknown yellow.
    pub fn state(&self, s: &str) -> String {
        match s {
            "yes" | "ok" | "open" | "up" | "healthy" | "true" => self.green(s),
            "no" | "failing" | "hung" | "down" | "closed" | "false" | "failed" => self.red(s),
            "unknown" | "slow" | "degraded" | "?" => self.yellow(s),
            _ => s.to_string(),
        }
    }

    /// Colours a verdict kind.
    pub fn verdict(&self, kind: &str, text: &str) -> String {
        match kind {
            "healthy" => self.green(text),
            "degraded" | "serial_failed" | "upstream_failed" => self.yellow(text),
            _ => self.red(text),
        }
    }
}

/// A text table with per-cell styling applied after padding (widths use the plain text).
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<(String, Option<String>)>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// A row of plain cells.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows
            .push(cells.into_iter().map(|c| (c, None)).collect());
    }

    /// A row of (plain, styled) cells.
    pub fn styled_row(&mut self, cells: Vec<(String, String)>) {
        self.rows
            .push(cells.into_iter().map(|(p, s)| (p, Some(s))).collect());
    }

    pub fn render(&self, style: &Style, indent: &str) -> String {
        let cols = self.header.len();
        let mut w: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (i, (c, _)) in r.iter().enumerate().take(cols) {
                w[i] = w[i].max(c.chars().count());
            }
        }
        let mut out = String::new();
        let line = |cells: Vec<(String, Option<String>)>, out: &mut String| {
            let mut l = String::from(indent);
            for (i, (plain, styled)) in cells.iter().enumerate().take(cols) {
                let pad = w[i].saturating_sub(plain.chars().count());
                l.push_str(styled.as_deref().unwrap_or(plain));
                if i + 1 < cols {
                    l.push_str(&" ".repeat(pad + 2));
                }
            }
            out.push_str(l.trim_end());
            out.push('\n');
        };
        let head: Vec<(String, Option<String>)> = self
            .header
            .iter()
            .map(|h| (h.clone(), Some(style.dim(h))))
            .collect();
        line(head, &mut out);
        for r in &self.rows {
            line(r.clone(), &mut out);
        }
        out
    }
}

/// `1.2 ms`, `340 µs`, `2.10 s`.
pub fn fmt_secs(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 0.001 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{:.0} µs", s * 1e6)
    }
}

fn opt_bool(b: Option<bool>, yes: &str, no: &str) -> String {
    match b {
        Some(true) => yes.to_string(),
        Some(false) => no.to_string(),
        None => "unknown".to_string(),
    }
}

fn st(style: &Style, s: String) -> (String, String) {
    let styled = style.state(&s);
    (s, styled)
}

/// The human-readable status table.
pub fn render_status(s: &StatusSnapshot, style: &Style) -> String {
    let mut out = String::new();
    let up = (s.at - s.started_at).num_seconds().max(0);
    out.push_str(&format!(
        "{} node {} of cluster {} (hadiag {}), up {}m{:02}s, at {}\n",
        style.bold("hadiag status —"),
        style.bold(&s.node),
        s.cluster,
        s.version,
        up / 60,
        up % 60,
        fmt_ts(&s.at)
    ));
    match &s.verdict {
        Some(v) => {
            let amb = if v.ambiguous { " (ambiguous)" } else { "" };
            out.push_str(&format!(
                "verdict: {}{amb}  since {}\n",
                style.verdict(&v.kind, &v.summary),
                fmt_ts(&v.at)
            ));
        }
        None => out.push_str(&format!("verdict: {}\n", style.yellow("none yet"))),
    }
    if let Some(i) = &s.incident {
        out.push_str(&format!(
            "incident: {} open since {} — hadiag explain {}\n",
            style.bold(&i.id),
            fmt_ts(&i.opened_at),
            i.id
        ));
    }
    if s.isolated {
        out.push_str(&format!("{}\n", style.red("THIS NODE IS ISOLATED")));
    }
    if s.quiesced {
        out.push_str(&format!(
            "{}\n",
            style.yellow("this node is in planned maintenance (quiesced)")
        ));
    }
    for n in &s.networks {
        let refs: Vec<String> = n
            .references
            .iter()
            .map(|r| {
                let rtt = r
                    .rtt_seconds
                    .map(|x| format!(" {}", fmt_secs(x)))
                    .unwrap_or_default();
                format!("{} {}{rtt}", r.target, style.state(&r.up))
            })
            .collect();
        let refs = if refs.is_empty() {
            style.yellow("no reference configured")
        } else {
            refs.join(", ")
        };
        out.push_str(&format!(
            "\n{} {}   references: {refs}\n",
            style.bold("network"),
            style.bold(&n.name)
        ));
        let mut t = Table::new(&[
            "node",
            "device",
            "carrier",
            "reference",
            "heard",
            "heard by",
            "loss",
            "rtt",
        ]);
        for c in &n.nodes {
            let heard = match c.heard {
                None => "(self)".to_string(),
                Some(true) => "yes".to_string(),
                Some(false) => "no".to_string(),
            };
            let loss = c
                .loss_ratio
                .map(|l| format!("{:.1}%", l * 100.0))
                .unwrap_or_else(|| "-".into());
            let loss_styled = match c.loss_ratio {
                Some(l) if l >= 0.5 => style.red(&loss),
                Some(l) if l > 0.0 => style.yellow(&loss),
                _ => loss.clone(),
            };
            let heard_by = if c.heard_by.is_empty() {
                "-".to_string()
            } else {
                c.heard_by.join(",")
            };
            let rtt = c.rtt_seconds.map(fmt_secs).unwrap_or_else(|| "-".into());
            t.styled_row(vec![
                (c.node.clone(), c.node.clone()),
                (c.device.clone(), c.device.clone()),
                st(style, c.carrier.clone()),
                st(style, c.reference.clone()),
                st(style, heard),
                (heard_by.clone(), heard_by),
                (loss, loss_styled),
                (rtt.clone(), rtt),
            ]);
        }
        out.push_str(&t.render(style, "  "));
    }
    if !s.serial.is_empty() {
        out.push_str(&format!("\n{}\n", style.bold("serial lines")));
        let mut t = Table::new(&["peer", "device", "port", "heard"]);
        for l in &s.serial {
            t.styled_row(vec![
                (l.peer.clone(), l.peer.clone()),
                (l.device.clone(), l.device.clone()),
                st(style, opt_bool(l.port_open, "open", "closed")),
                st(style, opt_bool(l.heard, "yes", "no")),
            ]);
        }
        out.push_str(&t.render(style, "  "));
    }
    out.push_str(&format!("\n{}\n", style.bold("disks")));
    let mut t = Table::new(&["node", "target", "health", "last read"]);
    for d in &s.disks {
        let target = d.target.clone().unwrap_or_else(|| "-".into());
        let lat = d
            .latency_seconds
            .map(fmt_secs)
            .unwrap_or_else(|| "-".into());
        t.styled_row(vec![
            (d.node.clone(), d.node.clone()),
            (target.clone(), target),
            st(style, d.health.clone()),
            (lat.clone(), lat),
        ]);
    }
    out.push_str(&t.render(style, "  "));
    if !s.monitors.is_empty() {
        out.push_str(&format!("\n{}\n", style.bold("monitors")));
        let mut t = Table::new(&["name", "state", "duration", "summary"]);
        for m in &s.monitors {
            let state = if m.timed_out {
                "hung".to_string()
            } else if m.ok {
                "ok".to_string()
            } else {
                "failing".to_string()
            };
            let d = fmt_secs(m.duration_seconds);
            t.styled_row(vec![
                (m.name.clone(), m.name.clone()),
                st(style, state),
                (d.clone(), d),
                (m.summary.clone(), m.summary.clone()),
            ]);
        }
        out.push_str(&t.render(style, "  "));
    }
    if !s.peers.is_empty() {
        out.push_str(&format!("\n{}\n", style.bold("peers")));
        let mut t = Table::new(&["node", "last view", "isolated", "quiesced"]);
        for p in &s.peers {
            let age = p
                .view_age_seconds
                .map(|a| format!("{} ago", fmt_secs(a)))
                .unwrap_or_else(|| "never".into());
            let age_styled = if p.view_age_seconds.is_none() {
                style.red(&age)
            } else {
                age.clone()
            };
            let iso = if p.isolated { "yes" } else { "no" }.to_string();
            let iso_styled = if p.isolated {
                style.red(&iso)
            } else {
                iso.clone()
            };
            let q = if p.quiesced { "yes" } else { "no" }.to_string();
            t.styled_row(vec![
                (p.node.clone(), p.node.clone()),
                (age, age_styled),
                (iso, iso_styled),
                (q.clone(), q),
            ]);
        }
        out.push_str(&t.render(style, "  "));
    }
    out.push_str(&render_reload(s.reload.as_ref(), style));
    out
}

/// The last SIGHUP reload: when, the outcome, and what went live or why it was refused.
fn render_reload(r: Option<&crate::http::ReloadResult>, style: &Style) -> String {
    let Some(r) = r else {
        return format!("\n{} none since start\n", style.bold("last reload:"));
    };
    let mut out = format!(
        "\n{} {} at {} ({} applied, {} refused since start)\n",
        style.bold("last reload:"),
        if r.outcome == "applied" {
            style.green(&r.outcome)
        } else {
            style.red(&r.outcome)
        },
        fmt_ts(&r.at),
        r.applied_total,
        r.refused_total
    );
    if let Some(e) = &r.error {
        out.push_str(&format!("  error: {e}\n"));
    }
    for f in r.refused.iter().skip(usize::from(r.error.is_some())) {
        out.push_str(&format!("  refused: {f}\n"));
    }
    if r.outcome == "applied" && r.applied.is_empty() {
        out.push_str("  no change\n");
    }
    for f in &r.applied {
        out.push_str(&format!("  applied: {f}\n"));
    }
    out
}

pub fn run(args: StatusArgs) -> ExitCode {
    let ep = match args.api.endpoint() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("hadiag status: {e:#}");
            return ExitCode::from(2);
        }
    };
    if args.check {
        return check(&ep, args.serving);
    }
    let style = Style::detect(args.no_color || args.json);
    loop {
        match api_get_status(&ep, args.json, &style) {
            Ok(text) => {
                if args.watch.is_some() && style.color {
                    print!("\x1b[H\x1b[2J");
                }
                print!("{text}");
                if !text.ends_with('\n') {
                    println!();
                }
            }
            Err(e) => {
                eprintln!("hadiag status: {e:#}");
                if args.watch.is_none() {
                    return ExitCode::from(1);
                }
            }
        }
        match args.watch {
            Some(n) => std::thread::sleep(Duration::from_secs(n.max(1))),
            None => return ExitCode::SUCCESS,
        }
    }
}

/// `--check`: one line on stdout, the Nagios exit code (or 0/1 with `serving`).
fn check(ep: &Endpoint, serving: bool) -> ExitCode {
    let r = match api_json::<StatusSnapshot>(ep, "/api/v1/status") {
        Ok(s) => super::check::evaluate(&s),
        Err(e) => super::check::CheckResult {
            state: super::check::CheckState::Unknown,
            line: format!("HADIAG UNKNOWN - {}", format!("{e:#}").replace('\n', " ")),
            serving: false,
        },
    };
    println!("{}", r.line);
    if serving {
        return if r.serving {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        };
    }
    ExitCode::from(r.state.code())
}

fn api_get_status(ep: &Endpoint, json: bool, style: &Style) -> anyhow::Result<String> {
    if json {
        let v: serde_json::Value = api_json(ep, "/api/v1/status")?;
        return Ok(serde_json::to_string_pretty(&v)? + "\n");
    }
    let s: StatusSnapshot = api_json(ep, "/api/v1/status")?;
    Ok(render_status(&s, style))
}
