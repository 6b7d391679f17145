//! The RESP wire protocol: request decoding (multibulk and inline, with Redis's limits and error
//! texts) and reply encoding for RESP2 and RESP3.
//!
//! Nothing here knows about sockets: the decoder works on a `BytesMut` the connection fills, and
//! the encoder appends to a `BytesMut` or builds one exact-size `Bytes` per push frame.

pub mod decode;
pub mod encode;
pub mod error;

pub use decode::{Decoder, Request};
pub use encode::ReplyBuf;
pub use error::ProtocolError;

/// The protocol a connection speaks; switched by `HELLO`, reset to RESP2 by `RESET`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum RespVersion {
    #[default]
    Resp2 = 0,
    Resp3 = 1,
}

impl RespVersion {
    /// The number `HELLO` reports in its `proto` field.
    pub fn number(self) -> i64 {
        match self {
            RespVersion::Resp2 => 2,
            RespVersion::Resp3 => 3,
        }
    }

    pub fn from_u8(v: u8) -> Self {
        if v == 1 {
            RespVersion::Resp3
        } else {
            RespVersion::Resp2
        }
    }
}

/// Which set of exact channels: SUBSCRIBE/PUBLISH or SSUBSCRIBE/SPUBLISH.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Namespace {
    Global,
    Shard,
}

impl Namespace {
    /// The first element of a message frame for this namespace.
    pub fn message_kind(self) -> &'static [u8] {
        match self {
            Namespace::Global => b"message",
            Namespace::Shard => b"smessage",
        }
    }
}
