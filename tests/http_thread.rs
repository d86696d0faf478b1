//! HTTP serves on its own thread: a scrape is answered while the runtime that started the
//! server (the daemon's heartbeat loop) is not running at all.

#[path = "obs_common/mod.rs"]
mod obs_common;

use chrono::Utc;
use hadiag::core::time::Instant;
use hadiag::http::serve;
use hadiag::journal::record::WallMap;
use hadiag::ops::Observer;
use obs_common::*;

#[test]
fn metrics_answer_while_the_callers_runtime_is_stalled() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let wall = WallMap::new(Instant::ZERO, Utc::now());
    let obs = Observer::new(&two_node(), N1, &[], None, None, wall).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = rt
        .block_on(serve(
            "127.0.0.1:0".parse().unwrap(),
            obs.api.clone(),
            async move {
                let _ = rx.await;
            },
        ))
        .unwrap();
    // Nothing polls `rt` now: a server running on it could not answer.
    let (status, _, body) = http(server.local_addr, "GET", "/metrics", None);
    assert_eq!(
        status, 200,
        "no answer while the caller's runtime is stalled"
    );
    assert!(body.contains("hadiag_"), "{body}");
    let _ = tx.send(());
    rt.block_on(async {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), server.handle).await;
    });
}
