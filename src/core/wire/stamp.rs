//! The authentication stamp: `stamp=<key_id>:<hex HMAC-SHA256>` over every byte before
//! ` stamp=`, and the keyring that holds the keys by id so they can rotate.
//!
//! Rotation: add the new key on every node ([`Keyring::add`]: accepted, not yet used), then
//! switch signing to it ([`Keyring::set_current`]), then remove the old one. Messages signed
//! with any key still in the ring verify.

use super::error::{DecodeError, KeyError};
use super::syntax::{is_valid_key_id, MAC_HEX_BYTES};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::BTreeMap;

type HmacSha256 = Hmac<Sha256>;

/// Shortest accepted key (the configuration also requires a 16-byte key file).
pub const MIN_KEY_BYTES: usize = 16;
/// Most keys held at once: rotation needs two; a few more leave room for staged rollouts.
pub const MAX_KEYS: usize = 8;

/// Keys by id; `current` signs outgoing messages, all of them verify incoming ones.
///
/// Holds the keyed HMAC state rather than the raw key: cloning it per message skips the key
/// schedule. `Debug` prints ids only, never key material.
#[derive(Clone)]
pub struct Keyring {
    current: String,
    keys: BTreeMap<String, HmacSha256>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current)
            .field("ids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn keyed(id: &str, key: &[u8]) -> Result<HmacSha256, KeyError> {
    if !is_valid_key_id(id) {
        return Err(KeyError::InvalidId(super::error::excerpt(id.as_bytes())));
    }
    if key.len() < MIN_KEY_BYTES {
        return Err(KeyError::TooShort {
            id: id.to_string(),
            len: key.len(),
        });
    }
    // HMAC accepts keys of any length; the error arm is unreachable but handled anyway.
    HmacSha256::new_from_slice(key).map_err(|_| KeyError::TooShort {
        id: id.to_string(),
        len: key.len(),
    })
}

impl Keyring {
    /// A keyring whose only key `id` also signs.
    pub fn new(id: &str, key: &[u8]) -> Result<Keyring, KeyError> {
        let mac = keyed(id, key)?;
        Ok(Keyring {
            current: id.to_string(),
            keys: BTreeMap::from([(id.to_string(), mac)]),
        })
    }

    /// Accept messages signed with `key` under `id` (does not change the signing key).
    pub fn add(&mut self, id: &str, key: &[u8]) -> Result<(), KeyError> {
        let mac = keyed(id, key)?;
        if self.keys.contains_key(id) {
            return Err(KeyError::Duplicate(id.to_string()));
        }
        if self.keys.len() >= MAX_KEYS {
            return Err(KeyError::Full);
        }
        self.keys.insert(id.to_string(), mac);
        Ok(())
    }

    /// Sign outgoing messages with the key `id`, which must already be in the ring.
    pub fn set_current(&mut self, id: &str) -> Result<(), KeyError> {
        if !self.keys.contains_key(id) {
            return Err(KeyError::Unknown(id.to_string()));
        }
        self.current = id.to_string();
        Ok(())
    }

    /// Stop accepting `id`. The signing key cannot be removed.
    pub fn remove(&mut self, id: &str) -> Result<(), KeyError> {
        if id == self.current {
            return Err(KeyError::RemoveCurrent(id.to_string()));
        }
        self.keys
            .remove(id)
            .map(|_| ())
            .ok_or_else(|| KeyError::Unknown(id.to_string()))
    }

    pub fn current_id(&self) -> &str {
        &self.current
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Bytes a stamp adds to a message: ` stamp=<id>:<64 hex>`.
    pub fn stamp_len(&self) -> usize {
        " stamp=".len() + self.current.len() + 1 + MAC_HEX_BYTES
    }

    /// Append ` stamp=<current id>:<hex HMAC of buf>` to `buf`, which holds everything before
    /// the stamp. Exposed so tests and fuzzers can sign arbitrary bodies.
    pub fn append_stamp(&self, buf: &mut Vec<u8>) {
        let Some(base) = self.keys.get(&self.current) else {
            // `current` is always in `keys` (constructors and `remove` keep it); an unsigned
            // message would be rejected by every receiver, which is the safe failure.
            return;
        };
        let mut mac = base.clone();
        mac.update(buf);
        let tag = mac.finalize().into_bytes();
        buf.extend_from_slice(b" stamp=");
        buf.extend_from_slice(self.current.as_bytes());
        buf.push(b':');
        for b in tag {
            buf.push(HEX[usize::from(b >> 4)]);
            buf.push(HEX[usize::from(b & 0x0f)]);
        }
    }

    /// Check the HMAC `mac_hex` of `signed` under `key_id`, in constant time.
    pub fn verify(&self, signed: &[u8], key_id: &str, mac_hex: &str) -> Result<(), DecodeError> {
        let base = self
            .keys
            .get(key_id)
            .ok_or_else(|| DecodeError::UnknownKeyId(super::error::excerpt(key_id.as_bytes())))?;
        let tag = parse_hex_mac(mac_hex).ok_or_else(|| {
            DecodeError::malformed("stamp", "MAC is not 64 lowercase hex digits", mac_hex)
        })?;
        let mut mac = base.clone();
        mac.update(signed);
        mac.verify_slice(&tag).map_err(|_| DecodeError::BadStamp)
    }
}

const HEX: [u8; 16] = *b"0123456789abcdef";

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

/// 64 lowercase hex digits to 32 bytes (one spelling only, so a stamp is not malleable).
pub(crate) fn parse_hex_mac(s: &str) -> Option<[u8; 32]> {
    if s.len() != MAC_HEX_BYTES {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
        let (hi, lo) = match pair {
            [hi, lo] => (hex_digit(*hi)?, hex_digit(*lo)?),
            _ => return None,
        };
        *o = (hi << 4) | lo;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn sign_then_verify_and_rotate() {
        let mut ring = Keyring::new("k1", KEY).unwrap();
        let mut msg = b"HADIAG/1 cluster=x".to_vec();
        ring.append_stamp(&mut msg);
        let text = String::from_utf8(msg.clone()).unwrap();
        let (signed, stamp) = text.rsplit_once(" stamp=").unwrap();
        let (id, mac) = stamp.split_once(':').unwrap();
        assert_eq!(id, "k1");
        ring.verify(signed.as_bytes(), id, mac).unwrap();

        // Rotation: new key accepted, then used; old messages still verify until removed.
        ring.add("k2", b"fedcba9876543210fedcba9876543210").unwrap();
        ring.set_current("k2").unwrap();
        ring.verify(signed.as_bytes(), id, mac).unwrap();
        ring.remove("k1").unwrap();
        assert_eq!(
            ring.verify(signed.as_bytes(), id, mac),
            Err(DecodeError::UnknownKeyId("k1".into()))
        );
        assert_eq!(ring.remove("k2"), Err(KeyError::RemoveCurrent("k2".into())));
    }

    #[test]
    fn bad_keys_refused() {
        assert!(matches!(
            Keyring::new("k 1", KEY),
            Err(KeyError::InvalidId(_))
        ));
        assert!(matches!(
            Keyring::new("k1", b"short"),
            Err(KeyError::TooShort { .. })
        ));
        let mut ring = Keyring::new("k0", KEY).unwrap();
        assert_eq!(ring.add("k0", KEY), Err(KeyError::Duplicate("k0".into())));
        for i in 1..MAX_KEYS {
            ring.add(&format!("k{i}"), KEY).unwrap();
        }
        assert_eq!(ring.add("kx", KEY), Err(KeyError::Full));
        assert!(!format!("{ring:?}").contains("0123"));
    }

    #[test]
    fn hex_is_strict() {
        assert!(parse_hex_mac(&"ab".repeat(32)).is_some());
        assert!(parse_hex_mac(&"AB".repeat(32)).is_none());
        assert!(parse_hex_mac(&"ab".repeat(31)).is_none());
        assert!(parse_hex_mac(&"zz".repeat(32)).is_none());
    }
}
