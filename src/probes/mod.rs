//! Probes: independent tasks that measure one thing each and report [`Observation`]s to the
//! driver. A probe only measures; the core judges.
//!
//! - [`link`]: carrier/operstate per NIC (netlink events, `/sys` polling fallback);
//! - [`icmp`]: echo to each reference of each network, bound to that network's NIC;
//! - [`disk`]: direct read of one block, on a dedicated thread, hung reads reported;
//! - [`exec`]: mon-compatible monitors (and the bounded subprocess runner hooks reuse).
//!
//! Every probe owns its interval, timeout and resources; none shares a lock or a thread with
//! another, so a stuck probe cannot stall the others, the heartbeats or the core. They all send
//! into one bounded channel ([`OBSERVATION_QUEUE`]) drained by the driver.
//!
//! Must not: hold core state or decide anything.
//!
//! [`Observation`]: crate::core::observation::Observation

pub mod disk;
pub mod exec;
pub mod icmp;
pub mod link;

/// Capacity of the observation channel. Steady state at the largest supported layout (4
/// networks × 4 references at 10 Hz, link refresh, disk, 16 monitors) is < 250 observations/s,
/// each handled by the core in microseconds; 1024 absorbs several seconds of a stalled driver
/// before probes start waiting on `send` (which only delays that probe's next tick).
pub const OBSERVATION_QUEUE: usize = 1024;

/// Runs a probe on a thread and runtime of its own. For probes whose system calls can block
/// inside the kernel whatever the socket flags say: a netlink link dump waits for the rtnl lock,
/// which creating or removing network namespaces and links can hold for hundreds of ms. On the
/// driver's runtime that wait would stop the heartbeats too, and every peer would see this
/// node die. Aborting the returned task stops the probe (the thread ends at its next await).
pub fn spawn_on_own_thread<F>(name: &str, probe: F) -> tokio::task::JoinHandle<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "probe runtime cannot start; probe not running");
                    return;
                }
            };
            rt.block_on(async move {
                tokio::select! {
                    _ = probe => {}
                    // Sender dropped: the owning task was aborted or the driver stopped.
                    _ = stop_rx => {}
                }
            });
        });
    if let Err(e) = spawned {
        tracing::error!(probe = name, error = %e, "probe thread cannot start; probe not running");
    }
    tokio::spawn(async move {
        let _owner = stop_tx;
        std::future::pending::<()>().await
    })
}
