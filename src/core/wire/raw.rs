//! The bytes view: a datagram split into version, ordered `key=value` fields and stamp,
//! borrowing from the input. Nothing here knows the topology or the keys; [`RawMessage::verify`]
//! checks the stamp and [`RawMessage::resolve`] turns the fields into a typed message.

use super::error::{excerpt, DecodeError};
use super::stamp::Keyring;
use super::syntax::{is_valid_field_key, is_valid_key_id, STAMP_KEY};
use super::{MAX_MESSAGE_BYTES, PROTOCOL};
use crate::core::topology::Topology;

/// The stamp field: which key signed, and the hex MAC (not yet checked).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RawStamp<'a> {
    pub key_id: &'a str,
    pub mac_hex: &'a str,
}

/// A lexically valid message: printable ASCII, `HADIAG/1`, well-formed fields, stamp last.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawMessage<'a> {
    pub version: &'a str,
    /// Every field between the version and the stamp, in order (duplicates included).
    pub fields: Vec<(&'a str, &'a str)>,
    /// The bytes the stamp covers: everything before ` stamp=`.
    pub signed: &'a [u8],
    pub stamp: RawStamp<'a>,
}

/// Split `bytes` into a [`RawMessage`]. Checks, in order: size (before anything else), version
/// token, charset, stamp placement and syntax, field syntax.
pub fn parse(bytes: &[u8]) -> Result<RawMessage<'_>, DecodeError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(DecodeError::Oversize { len: bytes.len() });
    }
    // Version first: a future HADIAG/2 may use a different charset and must be reported as
    // a version mismatch (rolling upgrade), not as garbage.
    let first = bytes.split(|&b| b == b' ').next().unwrap_or(bytes);
    if first != PROTOCOL.as_bytes() {
        if first.starts_with(b"HADIAG/") {
            return Err(DecodeError::UnsupportedVersion(excerpt(first)));
        }
        return Err(DecodeError::Malformed {
            field: "version".into(),
            reason: "does not start with HADIAG/<version>",
            value: excerpt(first),
        });
    }
    if let Some(pos) = bytes.iter().position(|&b| !(b' '..=b'~').contains(&b)) {
        return Err(DecodeError::Malformed {
            field: "message".into(),
            reason: "byte outside printable ASCII",
            value: format!("byte {pos}"),
        });
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| DecodeError::malformed("message", "not ASCII", ""))?;

    const STAMP_SEP: &str = " stamp=";
    let at = text
        .rfind(STAMP_SEP)
        .ok_or_else(|| DecodeError::malformed(STAMP_KEY, "missing (must be the last field)", ""))?;
    let (signed, stamp_field) = text.split_at(at);
    let stamp_value = stamp_field.get(STAMP_SEP.len()..).unwrap_or("");
    let (key_id, mac_hex) = stamp_value
        .split_once(':')
        .ok_or_else(|| DecodeError::malformed(STAMP_KEY, "expected <key_id>:<hex>", stamp_value))?;
    if !is_valid_key_id(key_id) {
        return Err(DecodeError::malformed(STAMP_KEY, "invalid key id", key_id));
    }
    if mac_hex.len() != super::syntax::MAC_HEX_BYTES
        || !mac_hex
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(DecodeError::malformed(
            STAMP_KEY,
            "MAC is not 64 lowercase hex digits",
            mac_hex,
        ));
    }

    let body = signed.get(PROTOCOL.len()..).unwrap_or("");
    let mut fields = Vec::new();
    if !body.is_empty() {
        // `body` starts with the space that ended the version token.
        for token in body.get(1..).unwrap_or("").split(' ') {
            let (key, value) = token
                .split_once('=')
                .ok_or_else(|| DecodeError::malformed("field", "expected key=value", token))?;
            if !is_valid_field_key(key) {
                return Err(DecodeError::malformed(
                    "field",
                    "key is not 1-32 characters of [A-Za-z0-9._-]",
                    token,
                ));
            }
            if key == STAMP_KEY {
                return Err(DecodeError::malformed(
                    STAMP_KEY,
                    "must be the last field",
                    value,
                ));
            }
            fields.push((key, value));
        }
    }
    Ok(RawMessage {
        version: PROTOCOL,
        fields,
        signed: signed.as_bytes(),
        stamp: RawStamp { key_id, mac_hex },
    })
}

impl<'a> RawMessage<'a> {
    /// First value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.fields.iter().find(|(k, _)| *k == key).map(|&(_, v)| v)
    }

    /// `WrongCluster` unless the `cluster=` field names `topology.cluster`. Done before the
    /// stamp and before names are resolved, so a neighbouring cluster on the same segment is
    /// counted as such rather than as bad stamps or unknown nodes.
    pub fn check_cluster(&self, topology: &Topology) -> Result<(), DecodeError> {
        let cluster = self
            .get("cluster")
            .ok_or_else(|| DecodeError::malformed("cluster", "missing", ""))?;
        if cluster != topology.cluster {
            return Err(DecodeError::WrongCluster(excerpt(cluster.as_bytes())));
        }
        Ok(())
    }

    /// Check the stamp against `keys` (constant-time comparison).
    pub fn verify(&self, keys: &Keyring) -> Result<(), DecodeError> {
        keys.verify(self.signed, self.stamp.key_id, self.stamp.mac_hex)
    }
}
