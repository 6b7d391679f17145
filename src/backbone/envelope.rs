//! The bytes of one backbone message: a small binary header, then the data.
//!
//! ```text
//! version u8 (1) · flags u8 · origin u64 · seq u64 · [index u32 · count u32] · [chlen u32] · data
//! ```
//! All integers big-endian. `origin` names the sending node (random per process start), `seq`
//! counts the NATS messages it sends from 1, so a receiver can drop the second copy of one that
//! matched two of its NATS subscriptions. `FLAG_CHUNKED` adds the chunk's index and the chunk
//! count; each chunk has its own `seq` (chunk `i` of a message whose first chunk is `s` has
//! `s + i`), so copies are told apart chunk by chunk; `FLAG_CHANNEL` says the message's data
//! starts with the channel name (`chlen` bytes), for hashed subjects. For a chunked message,
//! `chlen` is in chunk 0 only and counts bytes of the reassembled data.
//!
//! The header travels in the payload rather than in NATS headers: it costs 18 bytes instead of
//! a `NATS/1.0` block, no header map is built per message, and it works with any server.

use bytes::{Buf, BufMut, Bytes, BytesMut};

const VERSION: u8 = 1;
const FLAG_CHUNKED: u8 = 1;
const FLAG_CHANNEL: u8 = 2;
/// Largest header: version, flags, origin, seq, index, count, chlen.
pub const MAX_HEADER: usize = 1 + 1 + 8 + 8 + 4 + 4 + 4;
/// Room kept below the server's `max_payload` for the header.
const HEADROOM: usize = 64;

/// One decoded backbone message (or chunk of one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub origin: u64,
    pub seq: u64,
    /// `(index, count)` of a chunk; `None` for a whole message.
    pub chunk: Option<(u32, u32)>,
    /// Bytes of the (reassembled) data that are the channel name, for hashed subjects.
    pub channel_len: Option<u32>,
    pub data: Bytes,
}

/// Why received bytes are not a backbone message.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed backbone message")]
pub struct Malformed;

impl Envelope {
    pub fn decode(mut b: Bytes) -> Result<Envelope, Malformed> {
        if b.len() < 18 || b[0] != VERSION {
            return Err(Malformed);
        }
        let flags = b[1];
        b.advance(2);
        let origin = b.get_u64();
        let seq = b.get_u64();
        let chunk = if flags & FLAG_CHUNKED != 0 {
            if b.len() < 8 {
                return Err(Malformed);
            }
            let (i, n) = (b.get_u32(), b.get_u32());
            if n == 0 || i >= n {
                return Err(Malformed);
            }
            Some((i, n))
        } else {
            None
        };
        let channel_len = if flags & FLAG_CHANNEL != 0 {
            if b.len() < 4 {
                return Err(Malformed);
            }
            Some(b.get_u32())
        } else {
            None
        };
        Ok(Envelope {
            origin,
            seq,
            chunk,
            channel_len,
            data: b,
        })
    }
}

/// The payloads to publish for one message: one, or several chunks each within `max_payload`,
/// numbered from `seq` (the caller's next sequence number is `seq` + the number returned).
/// `channel` is `Some` for a hashed subject (it is carried before the payload).
pub fn encode(
    origin: u64,
    seq: u64,
    channel: Option<&[u8]>,
    payload: &[u8],
    max_payload: usize,
) -> Vec<Bytes> {
    let chlen = channel.map_or(0, <[u8]>::len);
    let total = chlen + payload.len();
    let room = max_payload.saturating_sub(HEADROOM).max(1024);
    let data_at = |i: usize| -> &[u8] {
        if i < chlen {
            &channel.unwrap_or_default()[i..]
        } else {
            &payload[i - chlen..]
        }
    };
    if total + MAX_HEADER <= max_payload {
        let mut b = BytesMut::with_capacity(MAX_HEADER + total);
        header(&mut b, origin, seq, None, channel.map(|c| c.len() as u32));
        if let Some(c) = channel {
            b.put_slice(c);
        }
        b.put_slice(payload);
        return vec![b.freeze()];
    }
    let count = total.div_ceil(room);
    let mut out = Vec::with_capacity(count);
    let mut at = 0;
    for i in 0..count {
        let len = room.min(total - at);
        let mut b = BytesMut::with_capacity(MAX_HEADER + len);
        let chl = (i == 0)
            .then_some(chlen as u32)
            .filter(|_| channel.is_some());
        header(
            &mut b,
            origin,
            seq + i as u64,
            Some((i as u32, count as u32)),
            chl,
        );
        let mut need = len;
        while need > 0 {
            let piece = data_at(at);
            let n = piece.len().min(need);
            b.put_slice(&piece[..n]);
            at += n;
            need -= n;
        }
        out.push(b.freeze());
    }
    out
}

fn header(b: &mut BytesMut, origin: u64, seq: u64, chunk: Option<(u32, u32)>, chlen: Option<u32>) {
    let flags = chunk.map_or(0, |_| FLAG_CHUNKED) | chlen.map_or(0, |_| FLAG_CHANNEL);
    b.put_u8(VERSION);
    b.put_u8(flags);
    b.put_u64(origin);
    b.put_u64(seq);
    if let Some((i, n)) = chunk {
        b.put_u32(i);
        b.put_u32(n);
    }
    if let Some(l) = chlen {
        b.put_u32(l);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_message_is_one_envelope() {
        let out = encode(7, 1, None, b"hello", 1 << 20);
        assert_eq!(out.len(), 1);
        let e = Envelope::decode(out[0].clone()).unwrap();
        assert_eq!(
            (e.origin, e.seq, e.chunk, e.channel_len),
            (7, 1, None, None)
        );
        assert_eq!(&e.data[..], b"hello");
        let out = encode(7, 2, Some(b"chan"), b"", 1 << 20);
        let e = Envelope::decode(out[0].clone()).unwrap();
        assert_eq!(e.channel_len, Some(4));
        assert_eq!(&e.data[..], b"chan");
    }

    #[test]
    fn large_messages_split_within_max_payload_and_join_back() {
        let max = 4096;
        let channel = vec![b'c'; 5000];
        let payload: Vec<u8> = (0..20_000u32).map(|i| i as u8).collect();
        let out = encode(1, 9, Some(&channel), &payload, max);
        assert!(out.len() > 1);
        let mut joined = Vec::new();
        for (i, b) in out.iter().enumerate() {
            assert!(b.len() <= max);
            let e = Envelope::decode(b.clone()).unwrap();
            assert_eq!(e.chunk, Some((i as u32, out.len() as u32)));
            assert_eq!(e.channel_len, (i == 0).then_some(5000));
            assert_eq!(e.seq, 9 + i as u64);
            joined.extend_from_slice(&e.data);
        }
        assert_eq!(&joined[..5000], &channel[..]);
        assert_eq!(&joined[5000..], &payload[..]);
    }

    #[test]
    fn malformed_input_is_refused() {
        assert_eq!(
            Envelope::decode(Bytes::from_static(b"short")),
            Err(Malformed)
        );
        let mut b = encode(1, 1, None, b"x", 1 << 20)[0].to_vec();
        b[0] = 9;
        assert_eq!(Envelope::decode(Bytes::from(b)), Err(Malformed));
        let mut b = BytesMut::new();
        header(&mut b, 1, 1, Some((3, 3)), None);
        assert_eq!(Envelope::decode(b.freeze()), Err(Malformed));
    }
}
