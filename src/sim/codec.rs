//! Optional routing of simulated frames through the real wire codec
//! ([`crate::core::wire::encode`] / [`crate::core::wire::decode`], HMAC stamp included), so
//! the simulation also exercises encoding, authentication and name resolution. Enabled with
//! [`crate::sim::SimConfig::codec`]; the key is a fixed simulation key (never a real one).

use crate::core::topology::Topology;
use crate::core::wire::{decode, encode, Keyring, Message};

/// Fixed key of simulated clusters (no secret: the simulation never touches a network).
const SIM_KEY: &[u8] = b"hadiag-simulation-key-not-secret";

/// Encoder/decoder state of a simulated cluster.
#[derive(Clone, Debug)]
pub struct Codec {
    keys: Keyring,
    /// Frames the codec refused to encode or decode (a bug: the sweep asserts zero).
    pub errors: u64,
    pub last_error: Option<String>,
}

impl Codec {
    pub fn new() -> Option<Codec> {
        Keyring::new("sim", SIM_KEY).ok().map(|keys| Codec {
            keys,
            errors: 0,
            last_error: None,
        })
    }

    pub fn encode(&mut self, topology: &Topology, message: &Message) -> Option<Vec<u8>> {
        match encode(message, topology, &self.keys) {
            Ok(b) => Some(b),
            Err(e) => {
                self.errors += 1;
                self.last_error = Some(format!("encode {}: {e}", message.body.token()));
                None
            }
        }
    }

    /// The simulated cluster's keys (nodes decode with them in [`crate::core::node::Node::handle_datagram`]).
    pub fn keys(&self) -> &Keyring {
        &self.keys
    }

    pub fn decode(&mut self, topology: &Topology, bytes: &[u8]) -> Option<Message> {
        match decode(bytes, topology, &self.keys) {
            Ok(m) => Some(m),
            Err(e) => {
                self.errors += 1;
                self.last_error = Some(format!("decode: {e}"));
                None
            }
        }
    }
}
