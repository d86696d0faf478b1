//! Errors of the wire codec. Decode errors are expected (a hostile or broken network sends
//! anything): they are data to count by [`DecodeError::reason`], never a panic.

use crate::core::topology::NodeId;
use thiserror::Error;

/// Longest excerpt of offending input kept in an error, so a log line stays short.
const EXCERPT_BYTES: usize = 48;

/// Printable, bounded excerpt of untrusted input for error messages and logs.
pub(crate) fn excerpt(input: &[u8]) -> String {
    let cut = input.get(..EXCERPT_BYTES).unwrap_or(input);
    let mut s = cut.escape_ascii().to_string();
    if cut.len() < input.len() {
        s.push('…');
    }
    s
}

/// Why a datagram or serial frame was dropped.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// A field is missing, duplicated, misplaced, badly formed or names something the
    /// topology does not know. `value` is a bounded, escaped excerpt of the offending input.
    #[error("malformed field `{field}`: {reason} (got `{value}`)")]
    Malformed {
        field: String,
        reason: &'static str,
        value: String,
    },
    /// The first token is `HADIAG/<something other than 1>`.
    #[error("unsupported protocol version `{0}`")]
    UnsupportedVersion(String),
    /// The HMAC does not match: tampered, or signed with another key under the same id.
    #[error("bad authentication stamp")]
    BadStamp,
    /// The stamp names a key id this node does not hold.
    #[error("unknown key id `{0}`")]
    UnknownKeyId(String),
    /// Larger than [`super::MAX_MESSAGE_BYTES`]; rejected before parsing.
    #[error("message of {len} bytes exceeds the {max}-byte limit", max = super::MAX_MESSAGE_BYTES)]
    Oversize { len: usize },
    /// The message belongs to another cluster (checked before names are resolved).
    #[error("message for foreign cluster `{0}`")]
    WrongCluster(String),
    /// Authentic, but already seen or older than the replay window.
    #[error("replayed message from node #{} (incarnation {incarnation}, sequence {sequence}): {why}", sender.0)]
    Replay {
        sender: NodeId,
        incarnation: u64,
        sequence: u64,
        why: ReplayKind,
    },
}

/// Every value [`DecodeError::reason`] can return, for registering metric labels up front.
pub const DECODE_REASONS: [&str; 7] = [
    "malformed",
    "version",
    "stamp",
    "key_id",
    "oversize",
    "cluster",
    "replay",
];

impl DecodeError {
    /// Stable metrics label (`hadiag_messages_dropped_total{reason=...}`).
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::Malformed { .. } => "malformed",
            DecodeError::UnsupportedVersion(_) => "version",
            DecodeError::BadStamp => "stamp",
            DecodeError::UnknownKeyId(_) => "key_id",
            DecodeError::Oversize { .. } => "oversize",
            DecodeError::WrongCluster(_) => "cluster",
            DecodeError::Replay { .. } => "replay",
        }
    }

    pub(crate) fn malformed(field: &str, reason: &'static str, value: &str) -> DecodeError {
        DecodeError::Malformed {
            field: excerpt(field.as_bytes()),
            reason,
            value: excerpt(value.as_bytes()),
        }
    }
}

/// Why the replay filter refused a message.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Error)]
pub enum ReplayKind {
    /// The sender has since restarted with a newer incarnation.
    #[error("incarnation older than {newest}")]
    OldIncarnation { newest: u64 },
    /// This (incarnation, sequence) was already accepted.
    #[error("sequence already seen")]
    Duplicate,
    /// Further behind the newest sequence than the window remembers.
    #[error("sequence too far behind {newest}")]
    TooOld { newest: u64 },
}

/// Why a message could not be encoded. These are bugs or misconfiguration on the sending side.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum EncodeError {
    /// The encoded message would exceed [`super::MAX_MESSAGE_BYTES`].
    #[error("encoded message of {len} bytes exceeds the {max}-byte limit", max = super::MAX_MESSAGE_BYTES)]
    Oversize { len: usize },
    /// A value cannot be represented on the wire (bad name charset, id outside the topology,
    /// extension key that collides with a known key, …).
    #[error("cannot encode `{field}`: {reason} (`{value}`)")]
    Invalid {
        field: String,
        reason: &'static str,
        value: String,
    },
}

impl EncodeError {
    pub(crate) fn invalid(field: &str, reason: &'static str, value: &str) -> EncodeError {
        EncodeError::Invalid {
            field: excerpt(field.as_bytes()),
            reason,
            value: excerpt(value.as_bytes()),
        }
    }
}

/// Errors building a [`super::Keyring`].
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum KeyError {
    #[error("invalid key id `{0}`: 1 to 16 characters of [A-Za-z0-9._-]")]
    InvalidId(String),
    #[error("key `{id}` is {len} bytes; at least {min} are required", min = super::MIN_KEY_BYTES)]
    TooShort { id: String, len: usize },
    #[error("key id `{0}` is already in the keyring")]
    Duplicate(String),
    #[error("keyring is full ({max} keys)", max = super::MAX_KEYS)]
    Full,
    #[error("key id `{0}` is not in the keyring")]
    Unknown(String),
    #[error("key `{0}` signs outgoing messages and cannot be removed")]
    RemoveCurrent(String),
}
