//! Parser for the differential script language (described in `main.rs`).

use std::collections::BTreeMap;

use crate::normalize::Normalizer;

/// One line of a script that does something.
#[derive(Debug)]
pub struct Step {
    /// 1-based line number in the script file.
    pub line: usize,
    /// The line as written, for failure reports.
    pub text: String,
    pub action: Action,
    /// Modifiers by the client they apply to: the step's own client, or the one named by
    /// `~on`.
    pub mods: BTreeMap<String, Mods>,
}

impl Step {
    /// The modifiers for `client` (none: compared byte for byte).
    pub fn mods(&self, client: &str) -> &Mods {
        static EXACT: Mods = Mods {
            norms: Vec::new(),
            reasons: Vec::new(),
            ignore: None,
            differs: None,
            differs_72: None,
            pubsubd: None,
            expect: None,
            capture: None,
        };
        self.mods.get(client).unwrap_or(&EXACT)
    }
}

#[derive(Debug)]
pub enum Action {
    /// Write the pieces to the client's connection in one write, connecting first if the
    /// client has not been used yet.
    Send { client: String, pieces: Vec<Piece> },
    /// Open the client's connection (again, after `close` or after the server closed it).
    Connect(String),
    /// Close the client's connection from our side.
    Close(String),
    /// Assert that the server has closed each of these connections (on both servers).
    ExpectClosed(Vec<String>),
    /// Assert that each of these connections is still open (on both servers).
    ExpectOpen(Vec<String>),
    /// Wait this many milliseconds before collecting replies.
    Sleep(u64),
}

impl Action {
    /// The client whose reply the step's modifiers apply to.
    pub fn client(&self) -> Option<&str> {
        match self {
            Action::Send { client, .. } | Action::Connect(client) | Action::Close(client) => {
                Some(client)
            }
            _ => None,
        }
    }
}

#[derive(Debug)]
pub enum Piece {
    /// Bytes sent exactly as written: quoted strings as they are, unquoted words after
    /// substitution, concatenated.
    Raw(Vec<Arg>),
    /// A command, sent as a RESP multibulk request, `count` times.
    Command { args: Vec<Arg>, count: usize },
}

/// A command argument.
#[derive(Debug, Clone)]
pub enum Arg {
    /// A quoted argument: its bytes after unescaping, with no substitution.
    Literal(Vec<u8>),
    /// An unquoted argument; `{…}` in it is substituted per server when the step runs.
    Template(String),
}

/// The `~` modifiers of a step. They apply to the bytes of the step's own client.
#[derive(Debug, Default)]
pub struct Mods {
    /// Normalizers applied to both servers' bytes, in the order written.
    pub norms: Vec<Normalizer>,
    /// Why each normalizer is needed (kept so every difference has a written reason).
    pub reasons: Vec<String>,
    /// `~ignore "why"`: this reply is not compared at all.
    pub ignore: Option<String>,
    /// `~differs "why"`: pubsubd differs from Redis on purpose.
    pub differs: Option<String>,
    /// `~differs-7.2 "why"`: Redis 7.2 (the reference) differs from the local 7.0.
    pub differs_72: Option<String>,
    /// `~pubsubd "bytes"`: what pubsubd must send for a `~differs`/`~differs-7.2` step.
    pub pubsubd: Option<Vec<u8>>,
    /// `~expect "bytes"`: what both servers must send (after normalizers).
    pub expect: Option<Vec<u8>>,
    /// `~capture NAME`: remember the first reply (integer or string) per server as `{NAME}`.
    pub capture: Option<String>,
}

impl Mods {
    /// Whether the step's client is compared byte for byte between the servers.
    pub fn exact(&self) -> bool {
        self.norms.is_empty()
            && self.ignore.is_none()
            && self.differs.is_none()
            && self.differs_72.is_none()
    }
}

#[derive(Debug, Clone)]
struct Token {
    bytes: Vec<u8>,
    quoted: bool,
}

impl Token {
    fn word(&self) -> Option<&str> {
        if self.quoted {
            None
        } else {
            std::str::from_utf8(&self.bytes).ok()
        }
    }
}

fn tokenize(line: &str) -> Result<Vec<Token>, String> {
    let bytes = line.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if bytes[i] == b'#' {
            break;
        }
        if bytes[i] == b'"' {
            let mut out = Vec::new();
            i += 1;
            loop {
                match bytes.get(i) {
                    None => return Err("unterminated quoted string".into()),
                    Some(b'"') => break,
                    Some(b'\\') => {
                        let (b, used) = unescape(&bytes[i..])?;
                        out.push(b);
                        i += used;
                        continue;
                    }
                    Some(&b) => out.push(b),
                }
                i += 1;
            }
            i += 1;
            if bytes.get(i).is_some_and(|b| !b.is_ascii_whitespace()) {
                return Err("a quoted string must be followed by a space".into());
            }
            tokens.push(Token {
                bytes: out,
                quoted: true,
            });
        } else {
            let start = i;
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            tokens.push(Token {
                bytes: bytes[start..i].to_vec(),
                quoted: false,
            });
        }
    }
    Ok(tokens)
}

fn unescape(s: &[u8]) -> Result<(u8, usize), String> {
    let b = match s.get(1) {
        Some(b'r') => b'\r',
        Some(b'n') => b'\n',
        Some(b't') => b'\t',
        Some(b'0') => 0,
        Some(b'\\') => b'\\',
        Some(b'"') => b'"',
        Some(b'x') => {
            let hex = s.get(2..4).and_then(|h| std::str::from_utf8(h).ok());
            let value = hex.and_then(|h| u8::from_str_radix(h, 16).ok());
            return value
                .map(|v| (v, 4))
                .ok_or_else(|| "\\x needs two hex digits".to_string());
        }
        _ => return Err("unknown escape (use \\r \\n \\t \\0 \\\\ \\\" \\xNN)".into()),
    };
    Ok((b, 2))
}

fn client_name(s: &str) -> Result<String, String> {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        Ok(s.to_string())
    } else {
        Err(format!("bad client name {s:?}"))
    }
}

fn list(t: &Token) -> Vec<Vec<u8>> {
    t.bytes
        .split(|&b| b == b',')
        .filter(|k| !k.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn parse_mods(tokens: &[Token], own: Option<&str>) -> Result<BTreeMap<String, Mods>, String> {
    let mut all: BTreeMap<String, Mods> = BTreeMap::new();
    let mut target = own.map(str::to_string);
    let mut i = 0;
    let quoted = |i: usize, what: &str| -> Result<String, String> {
        match tokens.get(i) {
            Some(t) if t.quoted => Ok(String::from_utf8_lossy(&t.bytes).into_owned()),
            _ => Err(format!(
                "{} needs a quoted {what}",
                tokens[i - 1].word().unwrap_or("?")
            )),
        }
    };
    let bytes = |i: usize| -> Result<Vec<u8>, String> {
        match tokens.get(i) {
            Some(t) if t.quoted => Ok(t.bytes.clone()),
            _ => Err(format!(
                "{} needs a quoted byte string",
                tokens[i - 1].word().unwrap_or("?")
            )),
        }
    };
    let word = |i: usize| -> Result<&Token, String> {
        tokens
            .get(i)
            .filter(|t| !t.quoted)
            .ok_or_else(|| format!("{} needs a word", tokens[i - 1].word().unwrap_or("?")))
    };
    while i < tokens.len() {
        let name = tokens[i].word().filter(|w| w.starts_with('~'));
        let name = name.ok_or_else(|| {
            format!(
                "expected a ~modifier, found {:?}",
                String::from_utf8_lossy(&tokens[i].bytes)
            )
        })?;
        if name == "~on" {
            target = Some(client_name(word(i + 1)?.word().unwrap_or_default())?);
            i += 2;
            continue;
        }
        let client = target
            .clone()
            .ok_or("this line has no client of its own: name one with `~on client`")?;
        let mods = all.entry(client).or_default();
        match name {
            "~ignore" => {
                mods.ignore = Some(quoted(i + 1, "reason")?);
                i += 2;
            }
            "~differs" => {
                mods.differs = Some(quoted(i + 1, "reason")?);
                i += 2;
            }
            "~differs-7.2" => {
                mods.differs_72 = Some(quoted(i + 1, "reason")?);
                i += 2;
            }
            "~pubsubd" => {
                mods.pubsubd = Some(bytes(i + 1)?);
                i += 2;
            }
            "~expect" => {
                mods.expect = Some(bytes(i + 1)?);
                i += 2;
            }
            "~capture" => {
                mods.capture = Some(word(i + 1)?.word().unwrap_or_default().to_string());
                i += 2;
            }
            "~mask-ints" | "~sort" | "~sort-frames" | "~sort-channels" => {
                mods.norms.push(match name {
                    "~sort" => Normalizer::Sort,
                    "~sort-frames" => Normalizer::SortFrames,
                    "~sort-channels" => Normalizer::SortChannels,
                    _ => Normalizer::MaskInts,
                });
                mods.reasons.push(quoted(i + 1, "reason")?);
                i += 2;
            }
            "~mask" | "~only" | "~keep-commands" => {
                let keys = list(word(i + 1)?);
                mods.norms.push(match name {
                    "~mask" => Normalizer::Mask(keys),
                    "~only" => Normalizer::Only(keys),
                    _ => Normalizer::KeepCommands(keys),
                });
                mods.reasons.push(quoted(i + 2, "reason")?);
                i += 3;
            }
            other => return Err(format!("unknown modifier {other}")),
        }
    }
    for mods in all.values() {
        if mods.differs_72.is_some() && mods.pubsubd.is_none() {
            return Err("~differs-7.2 needs ~pubsubd \"the bytes Redis 7.2 sends\"".into());
        }
        if mods.pubsubd.is_some() && mods.differs.is_none() && mods.differs_72.is_none() {
            return Err(
                "~pubsubd goes with ~differs or ~differs-7.2 (otherwise the servers are compared)"
                    .into(),
            );
        }
    }
    Ok(all)
}

fn parse_args(tokens: &[Token]) -> Result<Vec<Arg>, String> {
    if tokens.is_empty() {
        return Err("empty command".into());
    }
    Ok(tokens
        .iter()
        .map(|t| match t.quoted {
            true => Arg::Literal(t.bytes.clone()),
            false => Arg::Template(String::from_utf8_lossy(&t.bytes).into_owned()),
        })
        .collect())
}

fn parse_action(client: &str, tokens: &[Token]) -> Result<Action, String> {
    let client = client_name(client)?;
    let first = tokens.first().ok_or("missing command")?;
    let pieces = match first.word() {
        Some("close") if tokens.len() == 1 => return Ok(Action::Close(client)),
        Some("connect") if tokens.len() == 1 => return Ok(Action::Connect(client)),
        Some("raw") => {
            if tokens.len() < 2 {
                return Err("raw takes one or more quoted strings or {…} words".into());
            }
            vec![Piece::Raw(parse_args(&tokens[1..])?)]
        }
        Some("repeat") => {
            let count = tokens
                .get(1)
                .and_then(Token::word)
                .and_then(|w| w.parse().ok());
            let count = count.ok_or("repeat needs a count")?;
            vec![Piece::Command {
                args: parse_args(&tokens[2..])?,
                count,
            }]
        }
        _ => tokens
            .split(|t| t.word() == Some("|"))
            .map(|cmd| {
                Ok(Piece::Command {
                    args: parse_args(cmd)?,
                    count: 1,
                })
            })
            .collect::<Result<_, String>>()?,
    };
    Ok(Action::Send { client, pieces })
}

fn parse_line(tokens: &[Token]) -> Result<(Action, BTreeMap<String, Mods>), String> {
    let split = tokens
        .iter()
        .position(|t| t.word().is_some_and(|w| w.starts_with('~')))
        .unwrap_or(tokens.len());
    let (action, mods) = tokens.split_at(split);
    if action.is_empty() {
        return Err("a line starts with `client:` or a directive".into());
    }
    let head = action[0]
        .word()
        .ok_or("a line starts with `client:` or a directive")?;
    let names = || {
        action[1..]
            .iter()
            .map(|t| client_name(t.word().unwrap_or_default()))
            .collect::<Result<Vec<_>, _>>()
    };
    let action = match head {
        "expect-closed" => Action::ExpectClosed(names()?),
        "expect-open" => Action::ExpectOpen(names()?),
        "sleep" => {
            let ms = action
                .get(1)
                .and_then(Token::word)
                .and_then(|w| w.parse().ok());
            Action::Sleep(ms.ok_or("sleep needs milliseconds")?)
        }
        _ => match head.strip_suffix(':') {
            Some(client) => parse_action(client, &action[1..])?,
            None => return Err(format!("unknown directive {head:?}")),
        },
    };
    let mods = parse_mods(mods, action.client())?;
    Ok((action, mods))
}

/// Parses a script; errors name the line.
pub fn parse(source: &str) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    for (i, text) in source.lines().enumerate() {
        let tokens = tokenize(text).map_err(|e| format!("line {}: {e}", i + 1))?;
        if tokens.is_empty() {
            continue;
        }
        let (action, mods) =
            parse_line(&tokens).map_err(|e| format!("line {}: {e}: {text}", i + 1))?;
        steps.push(Step {
            line: i + 1,
            text: text.trim().to_string(),
            action,
            mods,
        });
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_line_with_quotes_pipes_and_modifiers() {
        let steps =
            parse("c1: SUBSCRIBE a \"b c\\r\\n\\x00\" | PING  ~mask id,addr \"why\" # note")
                .unwrap();
        let Action::Send { client, pieces } = &steps[0].action else {
            panic!()
        };
        assert_eq!(client, "c1");
        assert_eq!(pieces.len(), 2);
        let Piece::Command { args, .. } = &pieces[0] else {
            panic!()
        };
        assert!(matches!(&args[2], Arg::Literal(b) if b == b"b c\r\n\0"));
        assert_eq!(
            steps[0].mods("c1").norms,
            vec![Normalizer::Mask(vec![b"id".to_vec(), b"addr".to_vec()])]
        );
    }

    #[test]
    fn bad_lines_are_reported_with_their_number() {
        let err = parse("# ok\nc1: PING ~differs-7.2 \"x\"").unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
        assert!(parse("c1: raw \"abc").is_err());
        assert!(parse("c1: PING ~bogus").is_err());
        assert!(parse("expect-closed c1 ~ignore \"x\"").is_err());
        let steps = parse("p: PUBLISH a b ~on c2 ~sort-frames \"order\"").unwrap();
        assert_eq!(steps[0].mods("c2").norms, vec![Normalizer::SortFrames]);
        assert!(steps[0].mods("p").exact());
    }
}
