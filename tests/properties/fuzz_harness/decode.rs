//! The `decode` target: the request decoder on arbitrary bytes, multibulk and inline.
//!
//! Input: the first byte chooses where the rest is cut in two (its low 7 bits, scaled to the
//! length) and whether the client is unauthenticated (its top bit: Redis's tighter limits).
//! Checks:
//!
//! - the bytes fed in one read and in two reads give the same requests and the same error;
//!   the one allowed difference is the query-buffer limit, which Redis checks against what is
//!   buffered at each read: two reads may hit it at the cut, after a prefix of the requests;
//! - every request returned consumed bytes, and a decoder that answered "need more" answers it
//!   again without consuming anything;
//! - the query-buffer limit holds whenever the decoder waits, and is only reported when it was
//!   really exceeded;
//! - every request is non-empty and comes back unchanged when encoded as a multibulk request
//!   and decoded again.

use bytes::{Bytes, BytesMut};
use pubsubd::protocol::{Decoder, ProtocolError, Request};

/// Small limits, so fuzz inputs of a few KiB reach them.
pub const PROTO_MAX_BULK_LEN: usize = 1024;
pub const QUERY_BUFFER_LIMIT: usize = 2048;

/// What a decoder made of a stream.
#[derive(Debug, PartialEq)]
pub struct Outcome {
    pub requests: Vec<Request>,
    pub error: Option<ProtocolError>,
    /// The error came before the last chunk was fed.
    pub early: bool,
}

/// Feeds `chunks` one read at a time, decoding everything after each.
pub fn feed(chunks: &[&[u8]], auth_required: bool) -> Outcome {
    let mut d = Decoder::new(PROTO_MAX_BULK_LEN, QUERY_BUFFER_LIMIT);
    let mut buf = BytesMut::new();
    let mut requests = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        buf.extend_from_slice(chunk);
        loop {
            let before = buf.len();
            match d.decode(&mut buf, auth_required) {
                Ok(Some(req)) => {
                    assert!(buf.len() < before, "a request consumed no bytes");
                    assert!(!req.is_empty(), "an empty request was returned");
                    requests.push(req);
                }
                Ok(None) => {
                    assert!(
                        buf.len() + d.pending_bytes() <= QUERY_BUFFER_LIMIT,
                        "waiting above the query-buffer limit"
                    );
                    let held = buf.clone();
                    assert_eq!(d.decode(&mut buf, auth_required), Ok(None));
                    assert_eq!(buf, held, "a waiting decoder consumed bytes");
                    break;
                }
                Err(e) => {
                    if e == ProtocolError::QueryBufferLimit {
                        assert!(
                            buf.len() + d.pending_bytes() > QUERY_BUFFER_LIMIT,
                            "query-buffer limit reported below the limit"
                        );
                    }
                    return Outcome {
                        requests,
                        error: Some(e),
                        early: i + 1 < chunks.len(),
                    };
                }
            }
        }
    }
    Outcome {
        requests,
        error: None,
        early: false,
    }
}

/// A request as a RESP2 multibulk.
pub fn encode(req: &[Bytes]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", req.len()).into_bytes();
    for a in req {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

pub fn run(data: &[u8]) {
    let Some((&first, input)) = data.split_first() else {
        return;
    };
    let auth_required = first & 0x80 != 0;
    let cut = usize::from(first & 0x7f) * input.len() / 127;
    let whole = feed(&[input], auth_required);
    let split = feed(&[&input[..cut], &input[cut..]], auth_required);
    if split.early && split.error == Some(ProtocolError::QueryBufferLimit) {
        assert!(
            whole.requests.starts_with(&split.requests),
            "two reads decoded other requests before reaching the limit"
        );
    } else {
        assert_eq!(
            (&whole.requests, &whole.error),
            (&split.requests, &split.error),
            "one read and two reads (cut at {cut}) disagree"
        );
    }
    for req in &whole.requests {
        let mut d = Decoder::default();
        let mut buf = BytesMut::from(&encode(req)[..]);
        assert_eq!(d.decode(&mut buf, false), Ok(Some(req.clone())));
        assert!(buf.is_empty());
    }
}
