//! Just enough RESP2/RESP3 to take replies apart for the named normalizers and `~capture`,
//! and to print bytes readably. Comparisons are always made on bytes: a reply is parsed only
//! when a script step asks for it.

/// One reply frame, kept close to its wire form so that `encode(parse(x)) == x`.
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

/// Writes `frame` in its wire form.
pub fn encode(frame: &Frame, out: &mut Vec<u8>) {
    match frame {
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
                encode(item, out);
            }
            return;
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// Encodes a command as a RESP multibulk request.
pub fn command(args: &[Vec<u8>]) -> Vec<u8> {
    let items = args
        .iter()
        .map(|a| Frame::Blob(b'$', Some(a.clone())))
        .collect();
    let mut out = Vec::new();
    encode(&Frame::Aggregate(b'*', Some(items)), &mut out);
    out
}

/// Shows bytes as a double-quoted string with `\r`, `\n`, `\0`, `\"`, `\\` and `\xNN`
/// escapes: the same notation the scripts use.
pub fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() + 2);
    s.push('"');
    for &b in bytes {
        match b {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            0 => s.push_str("\\0"),
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_then_encode_gives_back_the_same_bytes() {
        let wire: &[u8] =
            b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n>3\r\n$11\r\nunsubscribe\r\n_\r\n:0\r\n\
            %2\r\n+a\r\n,1.5\r\n$-1\r\n=8\r\ntxt:id=1\r\n*-1\r\n*0\r\n$0\r\n\r\n-ERR x\r\n";
        let (frames, rest) = parse_all(wire);
        assert!(rest.is_empty());
        assert_eq!(frames.len(), 7);
        let mut out = Vec::new();
        frames.iter().for_each(|f| encode(f, &mut out));
        assert_eq!(out, wire);
    }

    #[test]
    fn incomplete_frames_are_left_over() {
        let (frames, rest) = parse_all(b"+OK\r\n$5\r\nhel");
        assert_eq!(frames, vec![Frame::Line(b'+', b"OK".to_vec())]);
        assert_eq!(rest, b"$5\r\nhel");
    }

    #[test]
    fn escape_shows_control_bytes() {
        assert_eq!(escape(b"a\r\n\0\xff\"\\"), r#""a\r\n\0\xff\"\\""#);
    }
}
