//! The one RESP reader the tests share, and the encoders for what they send and expect.
//!
//! `parse` reads one reply frame (RESP2 or RESP3) into a `Frame` kept close to its wire form,
//! so that writing a parsed frame gives back the bytes it came from: `Raw::frame` cuts replies
//! with it, the differential test normalizes replies with it, and `bulks` / `int_reply` take
//! pub/sub messages and integer replies apart with it. It is lenient about what it reads (any
//! RESP type in any protocol); the strict reader that checks the server's output against the
//! protocol rules is `tests/properties/fuzz_harness/resp.rs`, kept independent on purpose.

use bytes::{Buf, BytesMut};

/// One reply frame, kept close to its wire form so that parsing then writing gives back the
/// same bytes.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// `+ - : , ( #` and `_`: the type byte and the rest of the line.
    Line(u8, Vec<u8>),
    /// `$ ! =`: the type byte and the payload; `None` is RESP2's null bulk (`$-1`).
    Blob(u8, Option<Vec<u8>>),
    /// `* % ~ > |`: the type byte and the elements; maps and attributes hold keys and values
    /// alternately. `None` is RESP2's null array (`*-1`).
    Aggregate(u8, Option<Vec<Frame>>),
}

impl Frame {
    /// The bytes of a string-like frame (simple, bulk or verbatim string).
    pub fn text(&self) -> Option<&[u8]> {
        match self {
            Frame::Line(b'+', s) => Some(s),
            Frame::Blob(b'$', Some(s)) => Some(s),
            Frame::Blob(b'=', Some(s)) if s.len() >= 4 => Some(&s[4..]),
            _ => None,
        }
    }

    /// Appends the frame's wire form to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            Frame::Line(kind, s) => {
                out.push(*kind);
                out.extend_from_slice(s);
            }
            Frame::Blob(kind, None) => out.extend_from_slice(&[*kind, b'-', b'1']),
            Frame::Blob(kind, Some(s)) => {
                out.push(*kind);
                out.extend_from_slice(s.len().to_string().as_bytes());
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(s);
            }
            Frame::Aggregate(kind, None) => out.extend_from_slice(&[*kind, b'-', b'1']),
            Frame::Aggregate(kind, Some(items)) => {
                let count = if matches!(kind, b'%' | b'|') {
                    items.len() / 2
                } else {
                    items.len()
                };
                out.push(*kind);
                out.extend_from_slice(count.to_string().as_bytes());
                out.extend_from_slice(b"\r\n");
                for item in items {
                    item.write(out);
                }
                return;
            }
        }
        out.extend_from_slice(b"\r\n");
    }

    /// The frame's wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }
}

fn line(buf: &[u8]) -> Option<(&[u8], usize)> {
    let end = buf.windows(2).position(|w| w == b"\r\n")?;
    Some((&buf[..end], end + 2))
}

fn number(s: &[u8]) -> Option<i64> {
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// Parses one frame from the front of `buf`: the frame and the number of bytes it used, or
/// `None` if the bytes are incomplete or not RESP.
pub fn parse(buf: &[u8]) -> Option<(Frame, usize)> {
    let (&kind, rest) = buf.split_first()?;
    let (head, used) = line(rest)?;
    let used = used + 1;
    match kind {
        b'+' | b'-' | b':' | b',' | b'(' | b'#' | b'_' => {
            Some((Frame::Line(kind, head.to_vec()), used))
        }
        b'$' | b'!' | b'=' => {
            let len = number(head)?;
            if len < 0 {
                return (kind == b'$' && len == -1).then_some((Frame::Blob(kind, None), used));
            }
            let len = usize::try_from(len).ok()?;
            let body = buf.get(used..used + len)?;
            (buf.get(used + len..used + len + 2)? == b"\r\n")
                .then(|| (Frame::Blob(kind, Some(body.to_vec())), used + len + 2))
        }
        b'*' | b'%' | b'~' | b'>' | b'|' => {
            let count = number(head)?;
            if count < 0 {
                return (kind == b'*' && count == -1)
                    .then_some((Frame::Aggregate(kind, None), used));
            }
            let count =
                usize::try_from(count).ok()? * if matches!(kind, b'%' | b'|') { 2 } else { 1 };
            let mut items = Vec::with_capacity(count.min(1024));
            let mut at = used;
            for _ in 0..count {
                let (item, n) = parse(&buf[at..])?;
                items.push(item);
                at += n;
            }
            Some((Frame::Aggregate(kind, Some(items)), at))
        }
        _ => None,
    }
}

/// Parses as many whole frames as `buf` holds; returns them and the unparsed remainder.
pub fn parse_all(buf: &[u8]) -> (Vec<Frame>, &[u8]) {
    let mut frames = Vec::new();
    let mut at = 0;
    while let Some((frame, n)) = parse(&buf[at..]) {
        frames.push(frame);
        at += n;
    }
    (frames, &buf[at..])
}

/// Length of the first complete RESP frame in `b`, if there is one.
pub fn frame_len(b: &[u8]) -> Option<usize> {
    parse(b).map(|(_, n)| n)
}

/// Drops the first `n` bytes of a buffer (for tests that keep their own buffers).
pub fn advance(buf: &mut BytesMut, n: usize) {
    buf.advance(n);
}

/// The elements of an array or push frame of bulk strings and integers (a pub/sub message or
/// confirmation), as bytes.
pub fn bulks(f: &[u8]) -> Vec<Vec<u8>> {
    match parse(f) {
        Some((Frame::Aggregate(_, Some(items)), _)) => items
            .into_iter()
            .map(|i| match i {
                Frame::Blob(_, Some(b)) | Frame::Line(_, b) => b,
                other => panic!("not a bulk string or integer: {other:?} in {}", show(f)),
            })
            .collect(),
        _ => panic!("not an array of bulk strings: {}", show(f)),
    }
}

/// The integer of a `:N` reply frame.
pub fn int_reply(f: &[u8]) -> i64 {
    match parse(f) {
        Some((Frame::Line(b':', n), _)) => std::str::from_utf8(&n).unwrap().parse().unwrap(),
        _ => panic!("not an integer: {}", show(f)),
    }
}

/// Shows bytes with `\r\n` visible, for assertion messages.
pub fn show(b: &[u8]) -> String {
    b.escape_ascii().to_string()
}

/// Encodes a command as a RESP multibulk request.
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A RESP2 (`*`) or RESP3 (`>`) frame of bulk strings, optionally ending with an integer.
pub fn frame(prefix: u8, items: &[&[u8]], int: Option<i64>) -> Vec<u8> {
    let n = items.len() + int.is_some() as usize;
    let mut out = vec![prefix];
    out.extend_from_slice(format!("{n}\r\n").as_bytes());
    for i in items {
        out.extend_from_slice(format!("${}\r\n", i.len()).as_bytes());
        out.extend_from_slice(i);
        out.extend_from_slice(b"\r\n");
    }
    if let Some(i) = int {
        out.extend_from_slice(format!(":{i}\r\n").as_bytes());
    }
    out
}

/// A RESP3 push frame of bulk strings.
pub fn push3(items: &[&[u8]]) -> Vec<u8> {
    frame(b'>', items, None)
}
