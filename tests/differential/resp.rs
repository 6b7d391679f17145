//! Replies are taken apart with the tests' shared RESP reader (`support::resp`), parsed only
//! when a script step asks for it; comparisons are always made on bytes. This module adds the
//! scripts' notation for printing bytes, and checks that the reader gives back exactly the
//! bytes it read, which the normalizers rely on.

pub use crate::support::resp::{parse, parse_all, Frame};

/// Appends `frame`'s bytes to `out`, as read.
pub fn encode(frame: &Frame, out: &mut Vec<u8>) {
    frame.write(out);
}

/// A request as a RESP array of bulk strings.
pub fn command(args: &[Vec<u8>]) -> Vec<u8> {
    let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
    crate::support::encode(&args)
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
        frames.iter().for_each(|f| f.write(&mut out));
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
