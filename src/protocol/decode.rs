//! Request decoder: RESP multibulk (`*N\r\n$L\r\n…`) and inline commands, as Redis's
//! `processMultibulkBuffer` and `processInlineBuffer` parse them, quirks included:
//!
//! - line searches stop at a NUL byte, as `strchr` does, so a `\0` before the `\r` means
//!   "no line yet";
//! - the two bytes after a bulk argument are skipped, not checked;
//! - `*0` and `*-1` are empty requests and are skipped silently, as are blank inline lines;
//! - lengths are parsed with `string2ll`'s rules (no `+`, no leading zeros, no `-0`).
//!
//! The decoder keeps its state between calls, so a request split across any number of reads
//! (a 500 MiB bulk arriving in 64 KiB chunks) is never re-scanned from the start.

use bytes::{Buf, Bytes, BytesMut};

use super::error::ProtocolError;
/// Inline requests are split as redis.conf lines are.
pub use crate::config::split::split_args;
use crate::config::{DEFAULT_CLIENT_QUERY_BUFFER_LIMIT, DEFAULT_PROTO_MAX_BULK_LEN};

/// `PROTO_INLINE_MAX_SIZE`: the longest inline request, and the longest `*`/`$` header line.
pub const PROTO_INLINE_MAX_SIZE: usize = 64 * 1024;
/// Multibulk count allowed before authentication (`authRequired` in networking.c).
const UNAUTH_MAX_MULTIBULK: i64 = 10;
/// Bulk length allowed before authentication.
const UNAUTH_MAX_BULK: i64 = 16384;
/// Most argument slots preallocated for one request, whatever count it announces.
const MAX_PREALLOC_ARGS: usize = 1024;

/// One decoded command: its arguments, binary-safe.
pub type Request = Vec<Bytes>;

/// Incremental request decoder for one connection.
#[derive(Debug)]
pub struct Decoder {
    /// Arguments still expected for the multibulk request in progress (0: none in progress).
    multibulk_left: usize,
    /// Length of the bulk argument being read, once its `$` line was parsed.
    bulk_len: Option<usize>,
    args: Vec<Bytes>,
    /// Bytes held by `args`, for the query-buffer limit.
    args_bytes: usize,
    pub proto_max_bulk_len: usize,
    pub query_buffer_limit: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new(
            DEFAULT_PROTO_MAX_BULK_LEN,
            DEFAULT_CLIENT_QUERY_BUFFER_LIMIT,
        )
    }
}

impl Decoder {
    pub fn new(proto_max_bulk_len: usize, query_buffer_limit: usize) -> Self {
        Decoder {
            multibulk_left: 0,
            bulk_len: None,
            args: Vec::new(),
            args_bytes: 0,
            proto_max_bulk_len,
            query_buffer_limit,
        }
    }

    /// Bytes of the request in progress that were already taken out of the buffer.
    pub fn pending_bytes(&self) -> usize {
        self.args_bytes
    }

    /// Whether a multibulk request is partly read.
    pub fn in_progress(&self) -> bool {
        self.multibulk_left > 0
    }

    /// Decodes the next complete request from `buf`, consuming its bytes. `Ok(None)` means more
    /// bytes are needed. `auth_required` applies Redis's tighter limits for clients that have not
    /// authenticated yet.
    pub fn decode(
        &mut self,
        buf: &mut BytesMut,
        auth_required: bool,
    ) -> Result<Option<Request>, ProtocolError> {
        loop {
            if self.multibulk_left == 0 {
                if buf.is_empty() {
                    return Ok(None);
                }
                if buf[0] == b'*' {
                    match self.multibulk_header(buf, auth_required)? {
                        Header::Incomplete => return self.check_limit(buf).map(|_| None),
                        Header::Empty => continue,
                        Header::Started => {}
                    }
                } else {
                    match inline(buf)? {
                        None => return self.check_limit(buf).map(|_| None),
                        Some(args) if args.is_empty() => continue,
                        Some(args) => return Ok(Some(args)),
                    }
                }
            }
            match self.multibulk_args(buf, auth_required)? {
                Some(req) => return Ok(Some(req)),
                None => return self.check_limit(buf).map(|_| None),
            }
        }
    }

    fn check_limit(&self, buf: &BytesMut) -> Result<(), ProtocolError> {
        if buf.len() + self.args_bytes > self.query_buffer_limit {
            Err(ProtocolError::QueryBufferLimit)
        } else {
            Ok(())
        }
    }

    fn multibulk_header(
        &mut self,
        buf: &mut BytesMut,
        auth_required: bool,
    ) -> Result<Header, ProtocolError> {
        let Some(cr) = find_cr(buf) else {
            if buf.len() > PROTO_INLINE_MAX_SIZE {
                return Err(ProtocolError::TooBigMbulkCount);
            }
            return Ok(Header::Incomplete);
        };
        if cr + 2 > buf.len() {
            return Ok(Header::Incomplete);
        }
        let n = match string2ll(&buf[1..cr]) {
            Some(n) if n <= i32::MAX as i64 => n,
            _ => return Err(ProtocolError::InvalidMultibulkLength),
        };
        if n > UNAUTH_MAX_MULTIBULK && auth_required {
            return Err(ProtocolError::UnauthenticatedMultibulkLength);
        }
        buf.advance(cr + 2);
        if n <= 0 {
            return Ok(Header::Empty);
        }
        self.multibulk_left = n as usize;
        self.args = Vec::with_capacity((n as usize).min(MAX_PREALLOC_ARGS));
        self.args_bytes = 0;
        Ok(Header::Started)
    }

    fn multibulk_args(
        &mut self,
        buf: &mut BytesMut,
        auth_required: bool,
    ) -> Result<Option<Request>, ProtocolError> {
        while self.multibulk_left > 0 {
            let len = match self.bulk_len {
                Some(len) => len,
                None => {
                    let Some(cr) = find_cr(buf) else {
                        if buf.len() > PROTO_INLINE_MAX_SIZE {
                            return Err(ProtocolError::TooBigBulkCount);
                        }
                        return Ok(None);
                    };
                    if cr + 2 > buf.len() {
                        return Ok(None);
                    }
                    if buf[0] != b'$' {
                        return Err(ProtocolError::ExpectedDollar(buf[0] as char));
                    }
                    let len = match string2ll(&buf[1..cr]) {
                        Some(n) if n >= 0 && (n as u64) <= self.proto_max_bulk_len as u64 => n,
                        _ => return Err(ProtocolError::InvalidBulkLength),
                    };
                    if len > UNAUTH_MAX_BULK && auth_required {
                        return Err(ProtocolError::UnauthenticatedBulkLength);
                    }
                    buf.advance(cr + 2);
                    let len = len as usize;
                    self.bulk_len = Some(len);
                    if buf.capacity() < len + 2 {
                        // One allocation for a big argument instead of repeated doubling.
                        buf.reserve(len + 2 - buf.len());
                    }
                    len
                }
            };
            if buf.len() < len + 2 {
                return Ok(None);
            }
            let arg = buf.split_to(len).freeze();
            // Redis skips the two bytes after the argument without looking at them.
            buf.advance(2);
            self.args_bytes += len;
            self.args.push(arg);
            self.bulk_len = None;
            self.multibulk_left -= 1;
        }
        self.args_bytes = 0;
        Ok(Some(std::mem::take(&mut self.args)))
    }
}

enum Header {
    Incomplete,
    Empty,
    Started,
}

/// Position of the first `\r`, unless a NUL comes first (Redis searches with `strchr`).
fn find_cr(buf: &[u8]) -> Option<usize> {
    match memchr::memchr2(b'\r', 0, buf) {
        Some(i) if buf[i] == b'\r' => Some(i),
        _ => None,
    }
}

/// Redis's `string2ll`: strict decimal, at most 20 characters, no `+`, no leading zeros.
pub fn string2ll(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() >= 21 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !(b'1'..=b'9').contains(&digits[0]) {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((d - b'0') as u64)?;
    }
    if neg {
        if v > (i64::MAX as u64) + 1 {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else if v > i64::MAX as u64 {
        None
    } else {
        Some(v as i64)
    }
}

/// Parses one inline request: `None` if no full line yet, `Some(vec![])` for a blank line.
fn inline(buf: &mut BytesMut) -> Result<Option<Request>, ProtocolError> {
    let nl = match memchr::memchr2(b'\n', 0, buf) {
        Some(i) if buf[i] == b'\n' => i,
        _ => {
            if buf.len() > PROTO_INLINE_MAX_SIZE {
                return Err(ProtocolError::TooBigInline);
            }
            return Ok(None);
        }
    };
    let end = if nl > 0 && buf[nl - 1] == b'\r' {
        nl - 1
    } else {
        nl
    };
    let args = split_args(&buf[..end]).ok_or(ProtocolError::UnbalancedQuotes)?;
    buf.advance(nl + 1);
    Ok(Some(args.into_iter().map(Bytes::from).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8]) -> (Vec<Request>, Option<ProtocolError>) {
        let mut d = Decoder::default();
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        loop {
            match d.decode(&mut buf, false) {
                Ok(Some(r)) => out.push(r),
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e)),
            }
        }
    }

    fn strs(r: &[Request]) -> Vec<Vec<&[u8]>> {
        r.iter()
            .map(|a| a.iter().map(|b| &b[..]).collect())
            .collect()
    }

    #[test]
    fn multibulk_and_pipelining() {
        let (r, e) = all(b"*2\r\n$4\r\nPING\r\n$2\r\nhi\r\n*1\r\n$4\r\nPING\r\n");
        assert_eq!(e, None);
        assert_eq!(strs(&r), vec![vec![&b"PING"[..], b"hi"], vec![b"PING"]]);
    }

    #[test]
    fn binary_args_keep_every_byte() {
        let (r, _) = all(b"*2\r\n$7\r\nPUBLISH\r\n$5\r\na\0\r\nb\r\n");
        assert_eq!(&r[0][1][..], b"a\0\r\nb");
    }

    #[test]
    fn empty_multibulk_is_skipped() {
        let (r, e) = all(b"*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n");
        assert_eq!(e, None);
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn inline_quoting_like_sdssplitargs() {
        let (r, e) = all(b"SET \"a b\" 'c\\'d' \"\\x41\\n\"\r\n\r\nPING\n");
        assert_eq!(e, None);
        assert_eq!(
            strs(&r),
            vec![vec![&b"SET"[..], b"a b", b"c'd", b"A\n"], vec![b"PING"]]
        );
    }

    #[test]
    fn inline_unbalanced_quotes() {
        assert_eq!(
            all(b"PING \"a\r\n").1,
            Some(ProtocolError::UnbalancedQuotes)
        );
        assert_eq!(
            all(b"PING \"a\"b\r\n").1,
            Some(ProtocolError::UnbalancedQuotes)
        );
    }

    #[test]
    fn protocol_errors_match_redis() {
        assert_eq!(
            all(b"*x\r\n").1,
            Some(ProtocolError::InvalidMultibulkLength)
        );
        assert_eq!(
            all(b"*3000000000\r\n").1,
            Some(ProtocolError::InvalidMultibulkLength)
        );
        assert_eq!(
            all(b"*1\r\n+foo\r\n").1,
            Some(ProtocolError::ExpectedDollar('+'))
        );
        assert_eq!(
            all(b"*1\r\n$-5\r\n").1,
            Some(ProtocolError::InvalidBulkLength)
        );
        // was: a leading zero was accepted; string2ll rejects it.
        assert_eq!(
            all(b"*1\r\n$04\r\n").1,
            Some(ProtocolError::InvalidBulkLength)
        );
        assert_eq!(
            all(b"*1\r\n$536870913\r\n").1,
            Some(ProtocolError::InvalidBulkLength)
        );
        let (r, e) = all(b"*1\r\n$536870912\r\n");
        assert!(r.is_empty() && e.is_none(), "512mb is allowed and awaited");
    }

    #[test]
    fn long_header_lines_are_errors() {
        let mut big = b"*1".to_vec();
        big.extend(std::iter::repeat_n(b'1', PROTO_INLINE_MAX_SIZE + 1));
        assert_eq!(all(&big).1, Some(ProtocolError::TooBigMbulkCount));
        let mut inl = vec![b'a'; PROTO_INLINE_MAX_SIZE + 1];
        assert_eq!(all(&inl).1, Some(ProtocolError::TooBigInline));
        inl.extend_from_slice(b"\r\n");
        assert_eq!(all(&inl).1, None);
    }

    #[test]
    fn unauthenticated_limits() {
        let mut d = Decoder::default();
        let mut buf = BytesMut::from(&b"*11\r\n"[..]);
        assert_eq!(
            d.decode(&mut buf, true),
            Err(ProtocolError::UnauthenticatedMultibulkLength)
        );
        let mut d = Decoder::default();
        let mut buf = BytesMut::from(&b"*1\r\n$16385\r\n"[..]);
        assert_eq!(
            d.decode(&mut buf, true),
            Err(ProtocolError::UnauthenticatedBulkLength)
        );
    }

    #[test]
    fn query_buffer_limit_closes() {
        let mut d = Decoder::new(DEFAULT_PROTO_MAX_BULK_LEN, 100);
        let mut buf = BytesMut::from(&b"*2\r\n$60\r\n"[..]);
        buf.extend_from_slice(&[b'x'; 62]);
        buf.extend_from_slice(b"$60\r\n");
        buf.extend_from_slice(&[b'x'; 50]);
        assert_eq!(
            d.decode(&mut buf, false),
            Err(ProtocolError::QueryBufferLimit)
        );
    }

    #[test]
    fn nul_before_cr_means_no_line_yet() {
        let (r, e) = all(b"*1\0\r\n");
        assert!(r.is_empty() && e.is_none());
    }

    #[test]
    fn string2ll_rules() {
        assert_eq!(string2ll(b"-1"), Some(-1));
        assert_eq!(string2ll(b"-0"), None);
        assert_eq!(string2ll(b"+1"), None);
        assert_eq!(string2ll(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(string2ll(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(string2ll(b"9223372036854775808"), None);
    }
}
