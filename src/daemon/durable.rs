//! The node's durable state in `state_dir` (what must survive a restart: incarnation,
//! isolation, held services, incident numbering — see [`DurableState`]).
//!
//! What it is for: loading it at start, choosing the incarnation (`max(wall ms, last + 1)`,
//! so a wall clock stepped back never mutes the node) and storing it before the first
//! heartbeat and after every change — atomically (temporary file, `fsync`, `rename`, `fsync`
//! of the directory), so a crash leaves the old or the new state, never a torn one.
//! What it must not do: decide anything; the core does ([`crate::core::node::Node::restore`]).

use crate::core::node::DurableState;
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

/// The stored state, or the default for a first start (no file).
pub fn load(path: &Path) -> Result<DurableState, DurableError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(DurableState::default()),
        Err(e) => return Err(io(path, e)),
    };
    if meta.len() > MAX_STATE_BYTES {
        return Err(DurableError::Corrupt {
            path: path.to_path_buf(),
            cause: format!("{} bytes, more than {MAX_STATE_BYTES}", meta.len()),
        });
    }
    let text = std::fs::read_to_string(path).map_err(|e| io(path, e))?;
    serde_json::from_str(&text).map_err(|e| DurableError::Corrupt {
        path: path.to_path_buf(),
        cause: e.to_string(),
    })
}

/// Stores `state` atomically and durably.
pub fn store(path: &Path, state: &DurableState) -> Result<(), DurableError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("tmp");
    let text = serde_json::to_string(state).map_err(|e| DurableError::Io {
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
pub fn start(path: &Path, wall_ms: u64) -> Result<DurableState, DurableError> {
    let mut state = load(path)?;
    state.incarnation = state.next_incarnation(wall_ms);
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
        assert_eq!(a.incarnation, 1_700_000_000_000);
        // Clock stepped back by an hour across the restart.
        let b = start(&p, 1_699_999_996_400).unwrap();
        assert_eq!(b.incarnation, 1_700_000_000_001);
        let mut s = b.clone();
        s.isolated = Some(IncidentId {
            opener: NodeId(1),
            number: 7,
        });
        s.held.insert(NodeId(2), s.isolated.unwrap());
        store(&p, &s).unwrap();
        assert_eq!(load(&p).unwrap(), s);
        std::fs::write(&p, "{not json").unwrap();
        assert!(matches!(load(&p), Err(DurableError::Corrupt { .. })));
    }
}
