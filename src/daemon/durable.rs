//! The node's durable state in `state_dir` (what must survive a restart: incarnation,
//! isolation, held services, incident numbering — see [`DurableState`] — and the rejoin
//! policy the current isolation is bound by, see [`Stored`]).
//!
//! What it is for: loading it at start, choosing the incarnation (`max(wall ms, last + 1)`,
//! so a wall clock stepped back never mutes the node) and storing it before the first
//! heartbeat and after every change — atomically (temporary file, `fsync`, `rename`, `fsync`
//! of the directory), so a crash leaves the old or the new state, never a torn one.
//! What it must not do: decide anything; the core does ([`crate::core::node::Node::restore`]).
//! The rejoin policy is the one exception kept here, as data: [`pin`] and [`effective`] say
//! which policy the driver hands the core.

use crate::core::node::{DurableState, RejoinPolicy};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Bound on the state file read at start (a few hundred bytes in practice; anything larger
/// is not ours).
const MAX_STATE_BYTES: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum DurableError {
    #[error("durable state {path}: {cause}")]
    Io { path: PathBuf, cause: String },
    #[error("durable state {path} is unreadable ({cause}); move it aside to start afresh")]
    Corrupt { path: PathBuf, cause: String },
}

fn io(path: &Path, e: std::io::Error) -> DurableError {
    DurableError::Io {
        path: path.to_path_buf(),
        cause: e.to_string(),
    }
}

/// The rejoin policy as written in the state file.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoredRejoin {
    AfterHeal,
    Manual,
}

impl From<RejoinPolicy> for StoredRejoin {
    fn from(p: RejoinPolicy) -> Self {
        match p {
            RejoinPolicy::AfterHeal => StoredRejoin::AfterHeal,
            RejoinPolicy::Manual => StoredRejoin::Manual,
        }
    }
}

impl From<StoredRejoin> for RejoinPolicy {
    fn from(p: StoredRejoin) -> Self {
        match p {
            StoredRejoin::AfterHeal => RejoinPolicy::AfterHeal,
            StoredRejoin::Manual => RejoinPolicy::Manual,
        }
    }
}

/// The state file: the core's durable state plus the rejoin policy of the current isolation.
///
/// Why the policy is stored: an isolation that began under the `manual` policy was meant to
/// wait for an operator. A restart must not turn it into an automatic rejoin because the
/// configuration it starts with says `resume_on_heal: true` (an edited file, a package's new
/// default, a reload made while isolated). Files written before the field existed load with
/// no pinned policy.
///
/// On disk it is one JSON object: the core's fields plus `rejoin`. It goes through
/// `serde_json::Value` rather than `#[serde(flatten)]`, which cannot read the core's
/// number-keyed `held` map back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stored {
    pub core: DurableState,
    /// The policy in force when the current isolation began; `None` when not isolated.
    pub rejoin: Option<StoredRejoin>,
}

/// Key of the pinned rejoin policy in the state file.
const REJOIN_KEY: &str = "rejoin";

fn encode(state: &Stored) -> Result<String, serde_json::Error> {
    let mut v = serde_json::to_value(&state.core)?;
    if let (Some(m), Some(r)) = (v.as_object_mut(), state.rejoin) {
        m.insert(REJOIN_KEY.to_string(), serde_json::to_value(r)?);
    }
    Ok(v.to_string())
}

fn decode(text: &str) -> Result<Stored, serde_json::Error> {
    let mut v: serde_json::Value = serde_json::from_str(text)?;
    let rejoin = match v.as_object_mut().and_then(|m| m.remove(REJOIN_KEY)) {
        Some(r) => Some(serde_json::from_value(r)?),
        None => None,
    };
    Ok(Stored {
        core: serde_json::from_value(v)?,
        rejoin,
    })
}

/// The policy to pin after a core step: the one already pinned while the node stays isolated,
/// `in_force` when an isolation just began, nothing once it rejoined.
pub fn pin(
    pinned: Option<StoredRejoin>,
    isolated: bool,
    in_force: RejoinPolicy,
) -> Option<StoredRejoin> {
    if isolated {
        Some(pinned.unwrap_or_else(|| in_force.into()))
    } else {
        None
    }
}

/// The policy handed to the core: the stricter of the configured one and the pinned one
/// (`manual` wins), so neither a restart nor a reload loosens an isolation's policy.
pub fn effective(pinned: Option<StoredRejoin>, configured: RejoinPolicy) -> RejoinPolicy {
    match pinned {
        Some(StoredRejoin::Manual) => RejoinPolicy::Manual,
        _ => configured,
    }
}

/// The stored state, or the default for a first start (no file).
pub fn load(path: &Path) -> Result<Stored, DurableError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Stored::default()),
        Err(e) => return Err(io(path, e)),
    };
    if meta.len() > MAX_STATE_BYTES {
        return Err(DurableError::Corrupt {
            path: path.to_path_buf(),
            cause: format!("{} bytes, more than {MAX_STATE_BYTES}", meta.len()),
        });
    }
    let text = std::fs::read_to_string(path).map_err(|e| io(path, e))?;
    decode(&text).map_err(|e| DurableError::Corrupt {
        path: path.to_path_buf(),
        cause: e.to_string(),
    })
}

/// Stores `state` atomically and durably.
pub fn store(path: &Path, state: &Stored) -> Result<(), DurableError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("tmp");
    let text = encode(state).map_err(|e| DurableError::Io {
        path: path.to_path_buf(),
        cause: e.to_string(),
    })?;
    let mut f = std::fs::File::create(&tmp).map_err(|e| io(&tmp, e))?;
    f.write_all(text.as_bytes()).map_err(|e| io(&tmp, e))?;
    f.sync_all().map_err(|e| io(&tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| io(path, e))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(dir, e))?;
    Ok(())
}

/// Loads the state, picks this start's incarnation from `wall_ms`, and stores it before
/// anything is sent. Returns the state to restore from (with the new incarnation).
pub fn start(path: &Path, wall_ms: u64) -> Result<Stored, DurableError> {
    let mut state = load(path)?;
    state.core.incarnation = state.core.next_incarnation(wall_ms);
    store(path, &state)?;
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::diagnosis::IncidentId;
    use crate::core::topology::NodeId;

    #[test]
    fn incarnation_grows_when_the_clock_steps_back_and_state_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("durable-n1.json");
        let a = start(&p, 1_700_000_000_000).unwrap();
        assert_eq!(a.core.incarnation, 1_700_000_000_000);
        // Clock stepped back by an hour across the restart.
        let b = start(&p, 1_699_999_996_400).unwrap();
        assert_eq!(b.core.incarnation, 1_700_000_000_001);
        let mut s = b.clone();
        s.core.isolated = Some(IncidentId {
            opener: NodeId(1),
            number: 7,
        });
        s.core.held.insert(NodeId(2), s.core.isolated.unwrap());
        s.rejoin = Some(StoredRejoin::Manual);
        store(&p, &s).unwrap();
        assert_eq!(load(&p).unwrap(), s);
        std::fs::write(&p, "{not json").unwrap();
        assert!(matches!(load(&p), Err(DurableError::Corrupt { .. })));
    }
}

#[cfg(test)]
mod rejoin_tests {
    use super::*;
    use crate::core::diagnosis::IncidentId;
    use crate::core::topology::NodeId;

    /// An isolation begun under `manual` stays manual across a restart whose configuration
    /// says `resume_on_heal: true`; the pin goes once the node rejoined.
    #[test]
    fn rejoin_policy_of_an_isolation_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("durable-n2.json");
        let mut s = start(&p, 1_700_000_000_000).unwrap();
        assert_eq!(s.rejoin, None);
        // Isolated while the configuration said manual: pinned and stored.
        s.core.isolated = Some(IncidentId {
            opener: NodeId(0),
            number: 3,
        });
        s.rejoin = pin(s.rejoin, true, RejoinPolicy::Manual);
        store(&p, &s).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains(r#""rejoin":"manual""#), "{text}");
        // Restart with a configuration that says after_heal: the isolation stays manual.
        let r = start(&p, 1_700_000_060_000).unwrap();
        assert_eq!(r.rejoin, Some(StoredRejoin::Manual));
        assert_eq!(
            effective(r.rejoin, RejoinPolicy::AfterHeal),
            RejoinPolicy::Manual
        );
        // Still isolated after a step under the looser configuration: the pin holds.
        assert_eq!(
            pin(r.rejoin, true, RejoinPolicy::AfterHeal),
            Some(StoredRejoin::Manual)
        );
        // Rejoined (after `resume`): the pin goes, the configured policy rules again.
        let after = pin(r.rejoin, false, RejoinPolicy::Manual);
        assert_eq!(after, None);
        assert_eq!(
            effective(after, RejoinPolicy::AfterHeal),
            RejoinPolicy::AfterHeal
        );
        // An isolation begun under after_heal follows a stricter configuration.
        let loose = pin(None, true, RejoinPolicy::AfterHeal);
        assert_eq!(loose, Some(StoredRejoin::AfterHeal));
        assert_eq!(effective(loose, RejoinPolicy::Manual), RejoinPolicy::Manual);
    }

    /// A file written before the policy was stored loads with no pin.
    #[test]
    fn state_files_without_the_policy_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("durable-n1.json");
        let old = DurableState {
            incarnation: 42,
            ..DurableState::default()
        };
        std::fs::write(&p, serde_json::to_string(&old).unwrap()).unwrap();
        let s = load(&p).unwrap();
        assert_eq!((s.core, s.rejoin), (old, None));
    }
}
