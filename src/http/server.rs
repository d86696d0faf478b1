//! The hyper 1 HTTP/1.1 server: `/metrics`, `/healthz` and the JSON API.
//!
//! Read-only GET routes over [`ApiState`]; bad requests get a 4xx with a JSON message. Bounded:
//! at most [`MAX_CONNECTIONS`] connections at once (more are closed at accept), headers must
//! arrive within [`HEADER_TIMEOUT`], a connection lives at most [`CONNECTION_LIFETIME`], and
//! request bodies are never read, and `/metrics` is rendered at most once per
//! [`super::state::METRICS_MAX_AGE`]. It must never block the daemon: handlers only copy out of
//! the state under short locks.

use super::state::ApiState;
use crate::journal::record::parse_incident_ref;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, ALLOW, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE,
};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

/// Concurrent connections; a scrape plus a few operators need far fewer.
pub const MAX_CONNECTIONS: usize = 64;
/// Slow-loris guard.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Keep-alive connections are closed after this long.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(120);
/// Incidents returned by one `/api/v1/incidents` call (newest kept).
pub const MAX_LIST: usize = 256;

/// A running server.
#[derive(Debug)]
pub struct Server {
    /// The address actually bound (useful with port 0).
    pub local_addr: SocketAddr,
    pub handle: JoinHandle<()>,
}

/// Binds `listen` and serves until `shutdown` resolves, on a thread of its own with its own
/// single-threaded runtime: however many scrapes and API calls arrive, and however long
/// rendering takes, they never take a turn from the heartbeat loop. `Server::handle` ends when
/// that thread's server has stopped.
pub async fn serve<F>(listen: SocketAddr, state: ApiState, shutdown: F) -> std::io::Result<Server>
where
    F: Future<Output = ()> + Send + 'static,
{
    let listener = std::net::TcpListener::bind(listen)?;
    listener.set_nonblocking(true)?;
    let local_addr = listener.local_addr()?;
    if !listen.ip().is_loopback() && state.token().is_none() {
        tracing::warn!(%listen, "HTTP API listens beyond loopback without an api_token");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("hadiag-http".into())
        .spawn(move || {
            rt.block_on(async move {
                match TcpListener::from_std(listener) {
                    Ok(l) => accept_loop(l, state, shutdown).await,
                    Err(e) => tracing::error!(error = %e, "HTTP listener cannot be registered"),
                }
            });
            let _ = done_tx.send(());
        })?;
    let handle = tokio::spawn(async move {
        let _ = done_rx.await;
    });
    Ok(Server { local_addr, handle })
}

async fn accept_loop<F: Future<Output = ()> + Send + 'static>(
    listener: TcpListener,
    state: ApiState,
    shutdown: F,
) {
    let sem = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => r,
        };
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "HTTP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = sem.clone().try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(route(&state, &req)) }
            });
            let mut b = hyper::server::conn::http1::Builder::new();
            b.timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(64 * 1024);
            let conn = b.serve_connection(TokioIo::new(stream), svc);
            let _ = tokio::time::timeout(CONNECTION_LIFETIME, conn).await;
            drop(permit);
        });
    }
}

type Resp = Response<Full<Bytes>>;

fn respond(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn json<T: serde::Serialize>(status: StatusCode, v: &T) -> Resp {
    match serde_json::to_vec_pretty(v) {
        Ok(mut b) => {
            b.push(b'\n');
            respond(status, "application/json", b)
        }
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("encoding failed: {e}"),
        ),
    }
}

fn error(status: StatusCode, msg: &str) -> Resp {
    let v = serde_json::json!({ "error": msg, "status": status.as_u16() });
    let mut b = serde_json::to_vec(&v).unwrap_or_default();
    b.push(b'\n');
    respond(status, "application/json", b)
}

/// Constant-time comparison, so the token cannot be guessed byte by byte from timings.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn authorized(state: &ApiState, req: &Request<Incoming>) -> bool {
    let Some(token) = state.token() else {
        return true;
    };
    let Some(h) = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
    else {
        return false;
    };
    let Some(given) = h
        .strip_prefix("Bearer ")
        .or_else(|| h.strip_prefix("bearer "))
    else {
        return false;
    };
    ct_eq(given.trim().as_bytes(), token.as_bytes())
}

/// Dispatches one request. Public for in-process tests of the routing.
pub fn route(state: &ApiState, req: &Request<Incoming>) -> Resp {
    let path = req.uri().path();
    let known = matches!(
        path,
        "/metrics"
            | "/healthz"
            | "/"
            | "/api/v1/status"
            | "/api/v1/diagnosis"
            | "/api/v1/incidents"
    ) || path.starts_with("/api/v1/incidents/");
    if known && req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = error(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("method {} not allowed on {path}; use GET", req.method()),
        );
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    if path.starts_with("/api/") && !authorized(state, req) {
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token (Authorization: Bearer <api_token>)",
        );
        r.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"hadiag\""),
        );
        return r;
    }
    let query = req.uri().query().unwrap_or("");
    match path {
        "/healthz" => match state.liveness().check() {
            Ok(()) => respond(StatusCode::OK, "text/plain; charset=utf-8", "ok\n"),
            Err(since) => respond(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain; charset=utf-8",
                format!("heartbeat loop stalled: no pass for {since:?}\n"),
            ),
        },
        "/" => respond(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            "hadiag: /metrics /healthz /api/v1/status /api/v1/diagnosis /api/v1/incidents?since=… /api/v1/incidents/{id}\n",
        ),
        "/metrics" => respond(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            state.metrics_body(std::time::Instant::now()),
        ),
        "/api/v1/status" => json(StatusCode::OK, &state.snapshot()),
        "/api/v1/diagnosis" => {
            let d = state.diagnosis();
            json(StatusCode::OK, &serde_json::json!({ "diagnosis": d, "views": state.views() }))
        }
        "/api/v1/incidents" => {
            let mut since = None;
            for (k, v) in parse_query(query) {
                match k.as_str() {
                    "since" => match parse_since(&v, Utc::now()) {
                        Ok(t) => since = Some(t),
                        Err(msg) => return error(StatusCode::BAD_REQUEST, &msg),
                    },
                    other => return error(StatusCode::BAD_REQUEST, &format!("unknown query parameter {other:?}; supported: since")),
                }
            }
            let mut list = state.incidents_since(since);
            if list.len() > MAX_LIST {
                list.drain(..list.len() - MAX_LIST);
            }
            json(StatusCode::OK, &serde_json::json!({ "incidents": list }))
        }
        p if p.starts_with("/api/v1/incidents/") => {
            let id = percent_decode(&p["/api/v1/incidents/".len()..]);
            if parse_incident_ref(&id).is_none() {
                return error(StatusCode::BAD_REQUEST, &format!("bad incident id {id:?}: expected <node>-<number>, e.g. n1-3"));
            }
            match state.incident(&id) {
                Some(r) => json(StatusCode::OK, &r),
                None => error(StatusCode::NOT_FOUND, &format!("no incident {id} in memory (older incidents are in the journal: hadiag explain --journal)")),
            }
        }
        _ => error(StatusCode::NOT_FOUND, &format!("no route {path}; try /api/v1/status")),
    }
}

fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|s| !s.is_empty())
        .take(16)
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(kv), String::new()),
        })
        .collect()
}

/// `%XX` decoding; `+` is kept literally so RFC 3339 offsets survive unencoded.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// `since` is an RFC 3339 time (`2026-11-26T02:00:00Z`) or a span back from now
/// (`90s`, `30m`, `12h`, `7d`).
pub fn parse_since(v: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let v = v.trim();
    let bad = || {
        format!("bad 'since' value {v:?}: expected an RFC 3339 time (2026-11-26T02:00:00Z) or a span like 90s, 30m, 12h, 7d")
    };
    if v.is_empty() {
        return Err(bad());
    }
    // A space is what a `+` offset becomes when a client form-encodes it.
    if let Ok(t) = DateTime::parse_from_rfc3339(&v.replace(' ', "+")) {
        return Ok(t.with_timezone(&Utc));
    }
    let split = v.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (num, unit) = v.split_at(split);
    let n: i64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => n,
        "m" => n.checked_mul(60).ok_or_else(bad)?,
        "h" => n.checked_mul(3600).ok_or_else(bad)?,
        "d" => n.checked_mul(86400).ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    let d = chrono::Duration::try_seconds(secs).ok_or_else(bad)?;
    now.checked_sub_signed(d).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_forms() {
        let now = DateTime::parse_from_rfc3339("2026-11-26T02:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            parse_since("30m", now).unwrap(),
            now - chrono::Duration::minutes(30)
        );
        assert_eq!(
            parse_since("2026-11-26T01:00:00+01:00", now).unwrap(),
            now - chrono::Duration::hours(2)
        );
        // A `+` that a client form-encoded into a space.
        assert_eq!(
            parse_since("2026-11-26T01:00:00 01:00", now).unwrap(),
            now - chrono::Duration::hours(2)
        );
        for bad in ["", "yesterday", "10y", "-5m", "99999999999999999999d", "m"] {
            assert!(parse_since(bad, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn decode() {
        assert_eq!(percent_decode("a%3Ab%2"), "a:b%2");
        assert_eq!(percent_decode("%zz%"), "%zz%");
        assert!(ct_eq(b"abc", b"abc") && !ct_eq(b"abc", b"abd") && !ct_eq(b"ab", b"abc"));
    }
}
