//! Reply encoding for RESP2 and RESP3.
//!
//! `ReplyBuf` appends the replies to one client's commands; `push` builds the exact-size frame of
//! a pub/sub message or confirmation, built once and shared by every receiver (`Bytes` clones).
//! RESP3-only types degrade the way Redis degrades them for RESP2 clients: maps become flat
//! arrays, null becomes `$-1`/`*-1`, booleans become integers, doubles become bulk strings.

use bytes::{BufMut, Bytes, BytesMut};

use super::RespVersion;

/// Appends `n` in decimal.
fn put_int(buf: &mut BytesMut, n: i64) {
    let mut b = itoa::Buffer::new();
    buf.put_slice(b.format(n).as_bytes());
}

fn put_len_line(buf: &mut BytesMut, prefix: u8, n: usize) {
    buf.put_u8(prefix);
    let mut b = itoa::Buffer::new();
    buf.put_slice(b.format(n).as_bytes());
    buf.put_slice(b"\r\n");
}

fn put_bulk(buf: &mut BytesMut, s: &[u8]) {
    put_len_line(buf, b'$', s.len());
    buf.put_slice(s);
    buf.put_slice(b"\r\n");
}

/// One element of a push frame.
#[derive(Clone, Copy)]
pub enum PushItem<'a> {
    Bulk(&'a [u8]),
    /// A null bulk (`$-1` / `_`): the channel of an `unsubscribe` reply sent with nothing to leave.
    Null,
    Int(i64),
}

/// Decimal digits of `n`.
fn digits(n: usize) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// The encoded length of an item: exact, so frames that wait in a queue hold no slack.
fn item_len(item: &PushItem) -> usize {
    match item {
        PushItem::Bulk(b) => 1 + digits(b.len()) + 2 + b.len() + 2,
        PushItem::Null => 5,
        PushItem::Int(n) => 1 + usize::from(*n < 0) + digits(n.unsigned_abs() as usize) + 2,
    }
}

/// The encoded length of a push frame of `items`.
fn push_len(items: &[PushItem]) -> usize {
    1 + digits(items.len()) + 2 + items.iter().map(item_len).sum::<usize>()
}

/// Builds a push frame (`*N` in RESP2, `>N` in RESP3) in one exact-size allocation.
pub fn push(v: RespVersion, items: &[PushItem]) -> Bytes {
    let cap = push_len(items);
    let mut buf = BytesMut::with_capacity(cap);
    push_into(&mut buf, v, items);
    buf.freeze()
}

/// Appends a push frame to `buf`.
pub fn push_into(buf: &mut BytesMut, v: RespVersion, items: &[PushItem]) {
    put_len_line(
        buf,
        match v {
            RespVersion::Resp2 => b'*',
            RespVersion::Resp3 => b'>',
        },
        items.len(),
    );
    for item in items {
        match item {
            PushItem::Bulk(b) => put_bulk(buf, b),
            PushItem::Null => buf.put_slice(match v {
                RespVersion::Resp2 => b"$-1\r\n",
                RespVersion::Resp3 => b"_\r\n",
            }),
            PushItem::Int(n) => {
                buf.put_u8(b':');
                put_int(buf, *n);
                buf.put_slice(b"\r\n");
            }
        }
    }
}

/// The push frames `[head…, payload]` of several payloads, end to end in one exact-size
/// buffer (`head` has at most three items).
fn push_run(v: RespVersion, head: &[PushItem], payloads: &[&[u8]]) -> Bytes {
    let items = |p| {
        let mut all = [
            PushItem::Null,
            PushItem::Null,
            PushItem::Null,
            PushItem::Bulk(p),
        ];
        for (slot, item) in all.iter_mut().zip(head) {
            *slot = *item;
        }
        all[head.len()] = PushItem::Bulk(p);
        all
    };
    let n = head.len() + 1;
    let cap = payloads.iter().map(|p| push_len(&items(p)[..n])).sum();
    let mut buf = BytesMut::with_capacity(cap);
    for p in payloads {
        push_into(&mut buf, v, &items(p)[..n]);
    }
    buf.freeze()
}

/// The `message`/`smessage` frames of several payloads published to one channel in a row,
/// end to end in one buffer.
pub fn message_run(v: RespVersion, kind: &[u8], channel: &[u8], payloads: &[&[u8]]) -> Bytes {
    push_run(
        v,
        &[PushItem::Bulk(kind), PushItem::Bulk(channel)],
        payloads,
    )
}

/// `message_run` for the subscribers of a pattern: the `pmessage` frames, end to end.
pub fn pmessage_run(v: RespVersion, pattern: &[u8], channel: &[u8], payloads: &[&[u8]]) -> Bytes {
    let head = [
        PushItem::Bulk(b"pmessage"),
        PushItem::Bulk(pattern),
        PushItem::Bulk(channel),
    ];
    push_run(v, &head, payloads)
}

/// A `message`/`smessage` frame: `[kind, channel, payload]`.
pub fn message(v: RespVersion, kind: &[u8], channel: &[u8], payload: &[u8]) -> Bytes {
    push(
        v,
        &[
            PushItem::Bulk(kind),
            PushItem::Bulk(channel),
            PushItem::Bulk(payload),
        ],
    )
}

/// A `pmessage` frame: `[pmessage, pattern, channel, payload]`.
pub fn pmessage(v: RespVersion, pattern: &[u8], channel: &[u8], payload: &[u8]) -> Bytes {
    push(
        v,
        &[
            PushItem::Bulk(b"pmessage"),
            PushItem::Bulk(pattern),
            PushItem::Bulk(channel),
            PushItem::Bulk(payload),
        ],
    )
}

/// A (un)subscribe confirmation: `[kind, channel or null, count]`.
pub fn confirmation(v: RespVersion, kind: &[u8], channel: Option<&[u8]>, count: usize) -> Bytes {
    let ch = match channel {
        Some(c) => PushItem::Bulk(c),
        None => PushItem::Null,
    };
    push(v, &[PushItem::Bulk(kind), ch, PushItem::Int(count as i64)])
}

/// The replies to one client's commands, in the client's protocol.
#[derive(Debug)]
pub struct ReplyBuf {
    pub buf: BytesMut,
    pub resp: RespVersion,
    /// How many times the buffer was taken (flushed); tells a caller whether a command flushed.
    pub taken: u64,
}

impl ReplyBuf {
    pub fn new(resp: RespVersion) -> Self {
        ReplyBuf {
            buf: BytesMut::new(),
            resp,
            taken: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn is_resp3(&self) -> bool {
        self.resp == RespVersion::Resp3
    }

    /// Raw bytes, already encoded.
    pub fn raw(&mut self, b: &[u8]) {
        self.buf.put_slice(b);
    }

    pub fn ok(&mut self) {
        self.raw(b"+OK\r\n");
    }

    pub fn simple(&mut self, s: &str) {
        self.buf.put_u8(b'+');
        self.buf.put_slice(s.as_bytes());
        self.buf.put_slice(b"\r\n");
    }

    /// An error line; `msg` is the full text after `-` (e.g. `ERR syntax error`). Like Redis's
    /// `addReplyErrorLength`, newlines inside are replaced by spaces to keep the protocol valid.
    pub fn error(&mut self, msg: &str) {
        self.error_bytes(msg.as_bytes());
    }

    /// An error whose text may hold bytes that are not UTF-8 (a client's argument echoed back).
    pub fn error_bytes(&mut self, msg: &[u8]) {
        self.buf.put_u8(b'-');
        for &b in msg {
            self.buf
                .put_u8(if b == b'\r' || b == b'\n' { b' ' } else { b });
        }
        self.buf.put_slice(b"\r\n");
    }

    pub fn int(&mut self, n: i64) {
        self.buf.put_u8(b':');
        put_int(&mut self.buf, n);
        self.buf.put_slice(b"\r\n");
    }

    pub fn bulk(&mut self, s: &[u8]) {
        put_bulk(&mut self.buf, s);
    }

    pub fn bulk_str(&mut self, s: &str) {
        put_bulk(&mut self.buf, s.as_bytes());
    }

    /// A null bulk string: `$-1` (RESP2) or `_` (RESP3).
    pub fn null(&mut self) {
        match self.resp {
            RespVersion::Resp2 => self.raw(b"$-1\r\n"),
            RespVersion::Resp3 => self.raw(b"_\r\n"),
        }
    }

    /// A null array: `*-1` (RESP2) or `_` (RESP3).
    pub fn null_array(&mut self) {
        match self.resp {
            RespVersion::Resp2 => self.raw(b"*-1\r\n"),
            RespVersion::Resp3 => self.raw(b"_\r\n"),
        }
    }

    pub fn array(&mut self, n: usize) {
        put_len_line(&mut self.buf, b'*', n);
    }

    /// A map of `n` pairs: `%n` in RESP3, a flat array of `2n` in RESP2.
    pub fn map(&mut self, n: usize) {
        match self.resp {
            RespVersion::Resp2 => put_len_line(&mut self.buf, b'*', 2 * n),
            RespVersion::Resp3 => put_len_line(&mut self.buf, b'%', n),
        }
    }

    /// A set: `~n` in RESP3, an array in RESP2.
    pub fn set(&mut self, n: usize) {
        match self.resp {
            RespVersion::Resp2 => put_len_line(&mut self.buf, b'*', n),
            RespVersion::Resp3 => put_len_line(&mut self.buf, b'~', n),
        }
    }

    /// A verbatim string (`=len\r\ntxt:…`) in RESP3, a bulk string in RESP2 (INFO, CLIENT LIST).
    pub fn verbatim(&mut self, s: &[u8]) {
        match self.resp {
            RespVersion::Resp2 => put_bulk(&mut self.buf, s),
            RespVersion::Resp3 => {
                put_len_line(&mut self.buf, b'=', s.len() + 4);
                self.buf.put_slice(b"txt:");
                self.buf.put_slice(s);
                self.buf.put_slice(b"\r\n");
            }
        }
    }

    /// Frees the buffer's memory (an idle connection keeps none).
    pub fn release(&mut self) {
        if self.buf.is_empty() {
            self.buf = BytesMut::new();
        }
    }

    /// Takes the encoded bytes out, leaving the buffer empty (and its spare capacity in place).
    pub fn take(&mut self) -> Bytes {
        self.taken += 1;
        self.buf.split().freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_frames_in_both_protocols() {
        assert_eq!(
            &message(RespVersion::Resp2, b"message", b"ch", b"hi")[..],
            b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n"
        );
        assert_eq!(
            &pmessage(RespVersion::Resp3, b"c*", b"ch", b"")[..],
            b">4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nch\r\n$0\r\n\r\n"
        );
    }

    #[test]
    fn null_channel_confirmation() {
        assert_eq!(
            &confirmation(RespVersion::Resp2, b"unsubscribe", None, 0)[..],
            b"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n"
        );
        assert_eq!(
            &confirmation(RespVersion::Resp3, b"unsubscribe", None, 0)[..],
            b">3\r\n$11\r\nunsubscribe\r\n_\r\n:0\r\n"
        );
    }

    #[test]
    fn map_degrades_to_flat_array_in_resp2() {
        let mut r = ReplyBuf::new(RespVersion::Resp2);
        r.map(2);
        assert_eq!(&r.take()[..], b"*4\r\n");
        let mut r = ReplyBuf::new(RespVersion::Resp3);
        r.map(2);
        r.verbatim(b"x");
        assert_eq!(&r.take()[..], b"%2\r\n=5\r\ntxt:x\r\n");
    }

    #[test]
    fn error_text_has_no_newlines() {
        let mut r = ReplyBuf::new(RespVersion::Resp2);
        r.error("ERR a\r\nb");
        assert_eq!(&r.take()[..], b"-ERR a  b\r\n");
    }
}

#[cfg(test)]
mod exact_size_tests {
    use super::*;

    #[test]
    fn push_frames_are_allocated_at_their_exact_size() {
        let long = vec![b'x'; 12345];
        for items in [
            vec![
                PushItem::Bulk(b"message"),
                PushItem::Bulk(b"ch"),
                PushItem::Bulk(b""),
            ],
            vec![
                PushItem::Bulk(b"a"),
                PushItem::Null,
                PushItem::Int(-1234567),
            ],
            vec![
                PushItem::Bulk(&long),
                PushItem::Int(0),
                PushItem::Int(i64::MIN),
            ],
        ] {
            for v in [RespVersion::Resp2, RespVersion::Resp3] {
                let mut buf = BytesMut::new();
                push_into(&mut buf, v, &items);
                if v == RespVersion::Resp2 {
                    assert_eq!(buf.len(), push_len(&items));
                }
                assert!(buf.len() <= push_len(&items));
            }
        }
        for v in [RespVersion::Resp2, RespVersion::Resp3] {
            let payloads: [&[u8]; 3] = [b"1", &long, b""];
            let run = message_run(v, b"message", b"ch", &payloads);
            let one_by_one: Vec<u8> = payloads
                .iter()
                .flat_map(|p| message(v, b"message", b"ch", p).to_vec())
                .collect();
            assert_eq!(run, one_by_one);
            let run = pmessage_run(v, b"c*", b"ch", &payloads);
            let one_by_one: Vec<u8> = payloads
                .iter()
                .flat_map(|p| pmessage(v, b"c*", b"ch", p).to_vec())
                .collect();
            assert_eq!(run, one_by_one);
        }
    }
}
