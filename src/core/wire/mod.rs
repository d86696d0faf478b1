//! The ASCII wire format (DESIGN §5): typed messages, codec, authentication stamp and replay
//! filter. Pure: bytes in, bytes out; no sockets.

mod message;

pub use message::*;
