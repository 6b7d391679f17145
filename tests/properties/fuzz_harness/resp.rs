//! A strict reader of what the server writes, independent of the server's own encoder: every
//! byte of a client's output must parse as whole RESP values of the client's protocol. RESP2
//! output may only use `+ - : $ *`; RESP3 output may use the RESP3 types but not RESP2's
//! `$-1`/`*-1` nulls. Lines must not contain a bare `\r` or `\n`, lengths and integers follow
//! Redis's `string2ll` rules, and a bulk string must be followed by exactly `\r\n`.
//!
//! This is not the lenient reader the other tests share (`tests/support/resp.rs`): it checks
//! the protocol rules that one ignores, and it must build inside the fuzz targets, which
//! include this harness by path and nothing from `tests/support`.

use pubsubd::protocol::decode::string2ll;
use pubsubd::protocol::RespVersion;

/// Deepest nesting of aggregates accepted (the server never nests more than a few levels).
const MAX_DEPTH: usize = 32;

/// One RESP value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Simple(Vec<u8>),
    Error(Vec<u8>),
    Int(i64),
    Bulk(Vec<u8>),
    /// `$-1` (RESP2).
    NullBulk,
    Array(Vec<Value>),
    /// `*-1` (RESP2).
    NullArray,
    /// `_` (RESP3).
    Null,
    Bool(bool),
    Double(Vec<u8>),
    BigNumber(Vec<u8>),
    BlobError(Vec<u8>),
    /// `=`: format (three bytes) and text.
    Verbatim(Vec<u8>, Vec<u8>),
    Map(Vec<(Value, Value)>),
    Set(Vec<Value>),
    Push(Vec<Value>),
}

impl Value {
    /// The bytes of a simple or bulk string, if it is one.
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Simple(b) | Value::Bulk(b) => Some(b),
            _ => None,
        }
    }

    /// The elements of an array or push.
    pub fn items(&self) -> Option<&[Value]> {
        match self {
            Value::Array(v) | Value::Push(v) | Value::Set(v) => Some(v),
            _ => None,
        }
    }
}

/// Parses every value in `buf`, which must end on a value boundary.
pub fn parse_all(buf: &[u8], proto: RespVersion) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        match parse(&buf[at..], proto)? {
            Some((v, used)) => {
                out.push(v);
                at += used;
            }
            None => {
                return Err(format!(
                    "incomplete value at byte {at}: {:?}",
                    String::from_utf8_lossy(&buf[at..buf.len().min(at + 80)])
                ))
            }
        }
    }
    Ok(out)
}

/// Parses one value from the start of `buf`: `Ok(None)` if more bytes are needed.
pub fn parse(buf: &[u8], proto: RespVersion) -> Result<Option<(Value, usize)>, String> {
    let mut r = Reader { buf, at: 0, proto };
    match r.value(0) {
        Ok(v) => Ok(Some((v, r.at))),
        Err(Malformed::Incomplete) => Ok(None),
        Err(Malformed::Bad(e)) => Err(e),
    }
}

enum Malformed {
    Incomplete,
    Bad(String),
}

fn bad<T>(msg: impl Into<String>) -> Result<T, Malformed> {
    Err(Malformed::Bad(msg.into()))
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
    proto: RespVersion,
}

impl Reader<'_> {
    /// The line after the type byte, without its `\r\n`.
    fn line(&mut self) -> Result<&[u8], Malformed> {
        let rest = &self.buf[self.at..];
        let Some(end) = rest.windows(2).position(|w| w == b"\r\n") else {
            if rest.contains(&b'\n') {
                return bad("bare \\n in a line");
            }
            return Err(Malformed::Incomplete);
        };
        let line = &rest[..end];
        if line.iter().any(|&b| b == b'\r' || b == b'\n') {
            return bad(format!(
                "bare CR/LF in line {:?}",
                String::from_utf8_lossy(line)
            ));
        }
        self.at += end + 2;
        Ok(&self.buf[self.at - end - 2..self.at - 2])
    }

    fn number(&mut self) -> Result<i64, Malformed> {
        let line = self.line()?;
        string2ll(line).ok_or_else(|| {
            Malformed::Bad(format!("bad number {:?}", String::from_utf8_lossy(line)))
        })
    }

    /// A length: `-1` (a RESP2 null) gives `None`.
    fn len(&mut self, what: u8) -> Result<Option<usize>, Malformed> {
        match self.number()? {
            -1 if self.proto == RespVersion::Resp2 && (what == b'$' || what == b'*') => Ok(None),
            n if n >= 0 => Ok(Some(n as usize)),
            n => bad(format!("bad length {n} for '{}'", what as char)),
        }
    }

    fn blob(&mut self, n: usize) -> Result<Vec<u8>, Malformed> {
        if self.buf.len() - self.at < n + 2 {
            return Err(Malformed::Incomplete);
        }
        let data = self.buf[self.at..self.at + n].to_vec();
        if &self.buf[self.at + n..self.at + n + 2] != b"\r\n" {
            return bad("blob not followed by CRLF");
        }
        self.at += n + 2;
        Ok(data)
    }

    fn values(&mut self, n: usize, depth: usize) -> Result<Vec<Value>, Malformed> {
        (0..n).map(|_| self.value(depth + 1)).collect()
    }

    fn value(&mut self, depth: usize) -> Result<Value, Malformed> {
        if depth > MAX_DEPTH {
            return bad("nested too deep");
        }
        let Some(&t) = self.buf.get(self.at) else {
            return Err(Malformed::Incomplete);
        };
        if self.proto == RespVersion::Resp2 && !b"+-:$*".contains(&t) {
            return bad(format!("'{}' is not a RESP2 type", t as char));
        }
        self.at += 1;
        Ok(match t {
            b'+' => Value::Simple(self.line()?.to_vec()),
            b'-' => Value::Error(self.line()?.to_vec()),
            b':' => Value::Int(self.number()?),
            b'$' => match self.len(t)? {
                None => Value::NullBulk,
                Some(n) => Value::Bulk(self.blob(n)?),
            },
            b'*' => match self.len(t)? {
                None => Value::NullArray,
                Some(n) => Value::Array(self.values(n, depth)?),
            },
            b'_' => {
                if !self.line()?.is_empty() {
                    return bad("null with content");
                }
                Value::Null
            }
            b'#' => match self.line()? {
                b"t" => Value::Bool(true),
                b"f" => Value::Bool(false),
                _ => return bad("bad boolean"),
            },
            b',' => {
                let line = self.line()?.to_vec();
                let text = String::from_utf8_lossy(&line);
                let ok = matches!(&*text, "inf" | "-inf" | "nan") || text.parse::<f64>().is_ok();
                if !ok {
                    return bad(format!("bad double {text:?}"));
                }
                Value::Double(line)
            }
            b'(' => {
                let line = self.line()?.to_vec();
                let digits = line.strip_prefix(b"-").unwrap_or(&line);
                if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                    return bad("bad big number");
                }
                Value::BigNumber(line)
            }
            b'!' => {
                let n = self.len(t)?.unwrap_or(0);
                Value::BlobError(self.blob(n)?)
            }
            b'=' => {
                let n = self.len(t)?.unwrap_or(0);
                let data = self.blob(n)?;
                if data.len() < 4 || data[3] != b':' {
                    return bad("verbatim string without a format");
                }
                Value::Verbatim(data[..3].to_vec(), data[4..].to_vec())
            }
            b'%' => {
                let n = self.len(t)?.unwrap_or(0);
                let mut pairs = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    let k = self.value(depth + 1)?;
                    let v = self.value(depth + 1)?;
                    pairs.push((k, v));
                }
                Value::Map(pairs)
            }
            b'~' => {
                let n = self.len(t)?.unwrap_or(0);
                Value::Set(self.values(n, depth)?)
            }
            b'>' => {
                let n = self.len(t)?.unwrap_or(0);
                Value::Push(self.values(n, depth)?)
            }
            _ => return bad(format!("unknown type byte {t:#04x}")),
        })
    }
}
