//! Just enough RESP2 for a load generator: encoding commands into reusable byte buffers, an
//! allocation-free frame scanner for what a pub/sub server sends back, and the receive buffer
//! it scans.
//!
//! The scanner never copies or allocates: a frame is described by byte ranges into the caller's
//! buffer, and bulk payloads are skipped by their declared length, never searched. "Not enough
//! bytes yet" is `Ok(None)`; the caller reads more and scans again from the same offset.

use anyhow::{bail, Result};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Appends one command as a RESP multibulk.
pub fn encode_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    let mut ibuf = itoa::Buffer::new();
    out.push(b'*');
    out.extend_from_slice(ibuf.format(args.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        out.push(b'$');
        out.extend_from_slice(ibuf.format(a.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Appends a command built from a verb and many arguments (SUBSCRIBE a b c …).
pub fn encode_verb_many<T: AsRef<[u8]>>(out: &mut Vec<u8>, verb: &[u8], args: &[T]) {
    let mut v: Vec<&[u8]> = Vec::with_capacity(args.len() + 1);
    v.push(verb);
    v.extend(args.iter().map(|a| a.as_ref()));
    encode_command(out, &v);
}

/// What a server sent, as far as the load generator cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// `message`: payload is the byte range of the payload in the scanned buffer.
    Message { payload: (usize, usize) },
    /// `pmessage` (and `smessage`, counted the same way).
    PMessage { payload: (usize, usize) },
    /// A subscribe/unsubscribe confirmation of any flavour.
    Confirm { kind: ConfirmKind, count: i64 },
    /// An integer reply (PUBLISH's receiver count).
    Int(i64),
    /// `+OK`, `+PONG`, `*2 pong ""` and other replies nobody counts.
    Other,
    /// `-ERR …`: range of the text without the leading `-`.
    Error((usize, usize)),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmKind {
    Subscribe,
    Unsubscribe,
    PSubscribe,
    PUnsubscribe,
}

/// One element of an array frame.
#[derive(Clone, Copy, Default)]
struct Elem {
    /// `$` bulk, `:` integer, `+`/`-` simple, `*` nested (skipped), `_` null.
    tag: u8,
    start: usize,
    end: usize,
    int: i64,
}

/// Scans one frame at `buf[pos..]`. Returns the frame and the offset just past it.
pub fn scan(buf: &[u8], pos: usize) -> Result<Option<(Frame, usize)>> {
    let Some(&tag) = buf.get(pos) else {
        return Ok(None);
    };
    match tag {
        b'*' | b'>' => scan_array(buf, pos),
        _ => {
            let Some((e, next)) = scan_elem(buf, pos)? else {
                return Ok(None);
            };
            let f = match e.tag {
                b':' => Frame::Int(e.int),
                b'-' => Frame::Error((e.start, e.end)),
                _ => Frame::Other,
            };
            Ok(Some((f, next)))
        }
    }
}

fn scan_array(buf: &[u8], pos: usize) -> Result<Option<(Frame, usize)>> {
    let Some((n, mut p)) = line_int(buf, pos + 1)? else {
        return Ok(None);
    };
    let mut elems = [Elem::default(); 4];
    for i in 0..n.max(0) as usize {
        let Some((e, next)) = scan_elem(buf, p)? else {
            return Ok(None);
        };
        if i < elems.len() {
            elems[i] = e;
        }
        p = next;
    }
    let kind = &buf[elems[0].start..elems[0].end];
    let frame = match (n, kind) {
        (3, b"message") => Frame::Message {
            payload: (elems[2].start, elems[2].end),
        },
        (4, b"pmessage") => Frame::PMessage {
            payload: (elems[3].start, elems[3].end),
        },
        (3, b"smessage") => Frame::PMessage {
            payload: (elems[2].start, elems[2].end),
        },
        (3, b"subscribe") | (3, b"ssubscribe") => confirm(ConfirmKind::Subscribe, elems[2]),
        (3, b"unsubscribe") | (3, b"sunsubscribe") => confirm(ConfirmKind::Unsubscribe, elems[2]),
        (3, b"psubscribe") => confirm(ConfirmKind::PSubscribe, elems[2]),
        (3, b"punsubscribe") => confirm(ConfirmKind::PUnsubscribe, elems[2]),
        _ => Frame::Other,
    };
    Ok(Some((frame, p)))
}

fn confirm(kind: ConfirmKind, e: Elem) -> Frame {
    Frame::Confirm { kind, count: e.int }
}

/// Scans one non-array element (or skips a nested array) at `pos`.
fn scan_elem(buf: &[u8], pos: usize) -> Result<Option<(Elem, usize)>> {
    let Some(&tag) = buf.get(pos) else {
        return Ok(None);
    };
    match tag {
        b'$' => {
            let Some((len, start)) = line_int(buf, pos + 1)? else {
                return Ok(None);
            };
            if len < 0 {
                return Ok(Some((
                    Elem {
                        tag: b'_',
                        start,
                        end: start,
                        int: 0,
                    },
                    start,
                )));
            }
            let end = start + len as usize;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            Ok(Some((
                Elem {
                    tag,
                    start,
                    end,
                    int: 0,
                },
                end + 2,
            )))
        }
        b':' => {
            let Some((v, next)) = line_int(buf, pos + 1)? else {
                return Ok(None);
            };
            Ok(Some((
                Elem {
                    tag,
                    start: pos + 1,
                    end: next - 2,
                    int: v,
                },
                next,
            )))
        }
        b'+' | b'-' => {
            let Some(cr) = memchr::memchr(b'\r', &buf[pos..]) else {
                return Ok(None);
            };
            let end = pos + cr;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            Ok(Some((
                Elem {
                    tag,
                    start: pos + 1,
                    end,
                    int: 0,
                },
                end + 2,
            )))
        }
        b'*' | b'>' => match scan_array(buf, pos)? {
            Some((_, next)) => Ok(Some((
                Elem {
                    tag: b'*',
                    start: pos,
                    end: next,
                    int: 0,
                },
                next,
            ))),
            None => Ok(None),
        },
        other => bail!(
            "unexpected RESP type byte {:?} at offset {pos}",
            other as char
        ),
    }
}

/// Parses a signed decimal terminated by CRLF starting at `pos`; returns it and the offset after
/// the CRLF. Lengths and counts are short, so a byte loop beats memchr here.
fn line_int(buf: &[u8], pos: usize) -> Result<Option<(i64, usize)>> {
    let mut p = pos;
    let neg = buf.get(p) == Some(&b'-');
    if neg {
        p += 1;
    }
    let mut v: i64 = 0;
    loop {
        let Some(&c) = buf.get(p) else {
            return Ok(None);
        };
        match c {
            b'0'..=b'9' => v = v * 10 + (c - b'0') as i64,
            b'\r' => break,
            _ => bail!("bad integer in RESP header at offset {p}"),
        }
        p += 1;
    }
    if buf.len() < p + 2 {
        return Ok(None);
    }
    Ok(Some((if neg { -v } else { v }, p + 2)))
}

/// A receive buffer that frames are scanned in place from.
pub struct RecvBuf {
    data: Vec<u8>,
    start: usize,
    end: usize,
}

impl RecvBuf {
    pub fn new(cap: usize) -> Self {
        Self {
            data: vec![0; cap],
            start: 0,
            end: 0,
        }
    }

    /// Reads once from `s`; `Ok(0)` is end of stream.
    pub async fn fill<R: AsyncRead + Unpin>(&mut self, s: &mut R) -> std::io::Result<usize> {
        let cap = self.data.len();
        if self.end > cap - cap / 4 {
            // Keep the tail roomy: move the partial frame (usually small) to the front.
            if self.start > 0 {
                self.data.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.end > cap - cap / 4 {
                self.data.resize(cap * 2, 0);
            }
        }
        let n = s.read(&mut self.data[self.end..]).await?;
        self.end += n;
        Ok(n)
    }

    /// Scans every complete frame, handing each to `f` with the buffer it indexes into.
    pub fn drain(&mut self, mut f: impl FnMut(&[u8], Frame)) -> Result<()> {
        while let Some((frame, next)) = scan(&self.data[..self.end], self.start)? {
            f(&self.data, frame);
            self.start = next;
        }
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        Ok(())
    }
}

/// Scans a stream of every frame kind cut at every byte: frames must come out whole and equal
/// whatever the split. Runs at start-up (a bench built with `harness = false` runs no `#[test]`).
pub fn self_check() -> Result<()> {
    let wire: &[u8] = b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n\
        *3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n\
        *4\r\n$8\r\npmessage\r\n$3\r\nc*h\r\n$2\r\nch\r\n$0\r\n\r\n:42\r\n-ERR x\r\n";
    for cut in 0..wire.len() {
        let mut frames = Vec::new();
        let mut pos = 0;
        while let Some((f, next)) = scan(&wire[..cut], pos)? {
            frames.push(f);
            pos = next;
        }
        while let Some((f, next)) = scan(wire, pos)? {
            frames.push(f);
            pos = next;
        }
        let hello = match frames.get(1) {
            Some(Frame::Message { payload }) => &wire[payload.0..payload.1],
            _ => b"",
        };
        let ok = pos == wire.len()
            && frames.len() == 5
            && frames[0]
                == Frame::Confirm {
                    kind: ConfirmKind::Subscribe,
                    count: 1,
                }
            && hello == b"hello"
            && matches!(frames[2], Frame::PMessage { .. })
            && frames[3] == Frame::Int(42)
            && matches!(frames[4], Frame::Error(_));
        if !ok {
            bail!("RESP scanner self-check failed when the input is cut at byte {cut}: {frames:?}");
        }
    }
    Ok(())
}
