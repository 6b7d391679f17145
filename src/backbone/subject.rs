//! Channel names ⇄ NATS subjects.
//!
//! A subject is `<prefix>.<ns>.<tokens>`: `g` for the global namespace (PUBLISH/SUBSCRIBE and
//! patterns), `s` for the shard namespace (SPUBLISH/SSUBSCRIBE), `c` for control messages. A
//! channel is split at its `.` bytes, and each piece becomes one NATS token:
//!
//! - bytes in `SAFE` stand for themselves; every other byte (space, `*`, `>`, `.`-free
//!   control bytes, `~`, non-ASCII …) is written `~HH` (upper-case hex);
//! - an empty piece (a leading, trailing or doubled dot, or the empty channel) is the token `~`.
//!
//! So every byte string maps, the mapping is reversible, and no token is a NATS wildcard. A
//! Redis pattern whose literal beginning ends in a `.` (`news.*`, `news.sports.?x*`) therefore
//! selects whole tokens, and its node can subscribe narrowly to `<prefix>.g.news.>`.
//!
//! A subject longer than `MAX_SUBJECT` (NATS's control line is 4 KiB by default) is replaced by
//! a *hashed* one: as many leading tokens as fit in `HASH_KEEP` bytes, then `~~<hash>`. The
//! real channel then travels in the message (see `envelope`). Keeping the leading tokens is
//! what lets a narrow pattern subscription, whose own subject is cut at `HASH_KEEP` the same
//! way, still match. `~~` cannot start an escaped token (`~` itself is escaped), so hashed
//! subjects are recognised without ambiguity.

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::protocol::Namespace;

/// Longest subject published or subscribed to. NATS's default `max_control_line` is 4096
/// bytes for the whole `HPUB`/`MSG` line; this leaves room for the rest of it.
pub const MAX_SUBJECT: usize = 1024;
/// Leading bytes of the subject kept before the hash in a hashed subject, and the longest
/// narrow pattern subscription (anything longer is cut to whole tokens within it).
pub const HASH_KEEP: usize = 256;
/// Longest `backbone-prefix`.
pub const MAX_PREFIX: usize = 64;

/// Bytes that stand for themselves in a token.
fn safe(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'_' | b':' | b'#' | b'/' | b'@' | b'+' | b'=' | b',' | b'!'
        )
}

/// Checks a `backbone-prefix`: one or more `.`-separated tokens of `[A-Za-z0-9_-]`.
pub fn valid_prefix(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= MAX_PREFIX
        && p.split('.').all(|t| {
            !t.is_empty()
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn push_token(out: &mut String, piece: &[u8]) {
    if piece.is_empty() {
        out.push('~');
        return;
    }
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in piece {
        if safe(b) {
            out.push(b as char);
        } else {
            out.push('~');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
}

/// The length `push_token` would write.
fn token_len(piece: &[u8]) -> usize {
    if piece.is_empty() {
        return 1;
    }
    piece.iter().map(|&b| if safe(b) { 1 } else { 3 }).sum()
}

fn unescape_token(t: &str, out: &mut Vec<u8>) -> Option<()> {
    if t == "~" {
        return Some(());
    }
    let b = t.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'~' {
            let hex = t.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(())
}

/// The subject a channel is published on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSubject {
    pub subject: String,
    /// The subject is hashed: the channel must travel in the message.
    pub hashed: bool,
}

/// What a received subject names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A channel message; `None` when the subject is hashed (the channel is in the message).
    Channel(Namespace, Option<Bytes>),
    /// A control message (`<prefix>.c.<name>`).
    Control(String),
}

/// The subject scheme of one `backbone-prefix`.
#[derive(Debug, Clone)]
pub struct Subjects {
    prefix: String,
}

fn ns_letter(ns: Namespace) -> &'static str {
    match ns {
        Namespace::Global => "g",
        Namespace::Shard => "s",
    }
}

impl Subjects {
    pub fn new(prefix: &str) -> Self {
        Subjects {
            prefix: prefix.to_string(),
        }
    }

    /// `<prefix>.<ns>` without a trailing dot.
    fn base(&self, ns: Namespace) -> String {
        format!("{}.{}", self.prefix, ns_letter(ns))
    }

    /// The subject `channel` is published on in `ns`.
    pub fn channel(&self, ns: Namespace, channel: &[u8]) -> ChannelSubject {
        let base = self.base(ns);
        let full_len = base.len()
            + channel
                .split(|&b| b == b'.')
                .map(|p| 1 + token_len(p))
                .sum::<usize>();
        let mut s = String::with_capacity(full_len.min(MAX_SUBJECT + 64));
        s.push_str(&base);
        if full_len <= MAX_SUBJECT {
            for piece in channel.split(|&b| b == b'.') {
                s.push('.');
                push_token(&mut s, piece);
            }
            return ChannelSubject {
                subject: s,
                hashed: false,
            };
        }
        // Leading whole tokens within HASH_KEEP, then the hash. Not every token fits (else the
        // full subject would), so the hash token always follows at least one real one's place.
        for piece in channel.split(|&b| b == b'.') {
            if s.len() + 1 + token_len(piece) > HASH_KEEP {
                break;
            }
            s.push('.');
            push_token(&mut s, piece);
        }
        let digest = Sha256::digest(channel);
        s.push_str(".~~");
        for b in &digest[..16] {
            s.push_str(&format!("{b:02x}"));
        }
        ChannelSubject {
            subject: s,
            hashed: true,
        }
    }

    /// The NATS subscription that brings every message a local subscriber of `pattern` may
    /// want: the exact subject for a pattern without glob characters, `<prefix>.g.a.b.>` when
    /// the pattern's literal beginning ends in whole tokens `a.b.`, otherwise `<prefix>.g.>`.
    /// Received messages are always matched with the Redis glob, never by this subject alone.
    pub fn pattern_interest(&self, pattern: &[u8]) -> String {
        let special = pattern
            .iter()
            .position(|b| matches!(b, b'*' | b'?' | b'[' | b'\\'));
        let Some(end) = special else {
            return self.channel(Namespace::Global, pattern).subject;
        };
        let literal = &pattern[..end];
        let mut s = self.base(Namespace::Global);
        if let Some(last_dot) = literal.iter().rposition(|&b| b == b'.') {
            for piece in literal[..last_dot].split(|&b| b == b'.') {
                if s.len() + 1 + token_len(piece) + 2 > HASH_KEEP {
                    break;
                }
                s.push('.');
                push_token(&mut s, piece);
            }
        }
        s.push_str(".>");
        s
    }

    /// Whether a NATS subscription subject is the broad one (every global-namespace message).
    pub fn is_broad(&self, interest: &str) -> bool {
        interest.len() == self.prefix.len() + 4 && interest.ends_with(".g.>")
    }

    /// `<prefix>.c.<name>`, for control messages. `name` is one or more NATS tokens and may
    /// end in the wildcards `*` or `>` when subscribing.
    pub fn control(&self, name: &str) -> String {
        format!("{}.c.{name}", self.prefix)
    }

    /// What a received subject names; `None` for a subject outside this prefix or malformed.
    pub fn decode(&self, subject: &str) -> Option<Decoded> {
        let rest = subject.strip_prefix(&self.prefix)?.strip_prefix('.')?;
        let (ns, tokens) = rest.split_once('.')?;
        let ns = match ns {
            "g" => Namespace::Global,
            "s" => Namespace::Shard,
            "c" => return Some(Decoded::Control(tokens.to_string())),
            _ => return None,
        };
        if tokens.rsplit('.').next()?.starts_with("~~") {
            return Some(Decoded::Channel(ns, None));
        }
        let mut out = Vec::with_capacity(tokens.len());
        for (i, t) in tokens.split('.').enumerate() {
            if i > 0 {
                out.push(b'.');
            }
            unescape_token(t, &mut out)?;
        }
        Some(Decoded::Channel(ns, Some(Bytes::from(out))))
    }
}

/// Whether NATS subject `subject` (no wildcards) matches subscription `interest` (which may
/// end in `>` or hold `*` tokens), by NATS's rules. Used by tests and to route control
/// messages to their subscribers.
pub fn nats_match(interest: &str, subject: &str) -> bool {
    let mut it = interest.split('.');
    let mut st = subject.split('.');
    loop {
        match (it.next(), st.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::glob::stringmatch;

    fn s() -> Subjects {
        Subjects::new("pubsubd")
    }

    fn round_trip(ch: &[u8]) -> ChannelSubject {
        let cs = s().channel(Namespace::Global, ch);
        assert!(cs.subject.len() <= MAX_SUBJECT, "{}", cs.subject.len());
        assert!(!cs
            .subject
            .bytes()
            .any(|b| b.is_ascii_whitespace() || !(0x20..=0x7e).contains(&b)));
        assert!(cs
            .subject
            .split('.')
            .all(|t| !t.is_empty() && t != "*" && t != ">"));
        let want = if cs.hashed {
            None
        } else {
            Some(Bytes::copy_from_slice(ch))
        };
        assert_eq!(
            s().decode(&cs.subject),
            Some(Decoded::Channel(Namespace::Global, want))
        );
        cs
    }

    #[test]
    fn awkward_channels_map_reversibly() {
        for ch in [
            &b""[..],
            b" ",
            b"a b",
            b"*",
            b">",
            b".",
            b"..",
            b".a.",
            b"news.*",
            b"\r\n",
            b"\0",
            b"\xff\xfe",
            b"~",
            b"~41",
            b"caf\xc3\xa9",
            b"socket.io#/#",
        ] {
            round_trip(ch);
        }
        assert_eq!(s().channel(Namespace::Global, b"").subject, "pubsubd.g.~");
        assert_eq!(
            s().channel(Namespace::Global, b"..").subject,
            "pubsubd.g.~.~.~"
        );
        assert_eq!(
            s().channel(Namespace::Shard, b"a b.*").subject,
            "pubsubd.s.a~20b.~2A"
        );
        assert_eq!(
            s().channel(Namespace::Global, b"~").subject,
            "pubsubd.g.~7E"
        );
    }

    #[test]
    fn long_channels_hash_and_keep_leading_tokens() {
        let mut long = b"news.sports.".to_vec();
        long.extend(std::iter::repeat_n(b'x', 64 * 1024));
        let cs = round_trip(&long);
        assert!(cs.hashed);
        assert!(
            cs.subject.starts_with("pubsubd.g.news.sports.~~"),
            "{}",
            cs.subject
        );
        let one_token = vec![b'\n'; 1000];
        let cs = round_trip(&one_token);
        assert!(cs.hashed);
        assert!(cs.subject.starts_with("pubsubd.g.~~"));
        // Different long names get different subjects.
        let mut other = long.clone();
        *other.last_mut().unwrap() = b'y';
        assert_ne!(
            s().channel(Namespace::Global, &other),
            s().channel(Namespace::Global, &long)
        );
    }

    #[test]
    fn patterns_subscribe_narrowly_on_whole_token_prefixes() {
        assert_eq!(s().pattern_interest(b"news.*"), "pubsubd.g.news.>");
        assert_eq!(
            s().pattern_interest(b"news.sports.*"),
            "pubsubd.g.news.sports.>"
        );
        assert_eq!(s().pattern_interest(b"news.sp*"), "pubsubd.g.news.>");
        assert_eq!(s().pattern_interest(b"news*"), "pubsubd.g.>");
        assert_eq!(s().pattern_interest(b"*"), "pubsubd.g.>");
        assert_eq!(s().pattern_interest(b"h?llo"), "pubsubd.g.>");
        assert_eq!(s().pattern_interest(b"a\\.b.*"), "pubsubd.g.>");
        assert_eq!(s().pattern_interest(b".*"), "pubsubd.g.~.>");
        assert_eq!(s().pattern_interest(b"plain"), "pubsubd.g.plain");
        assert!(s().is_broad("pubsubd.g.>"));
        assert!(!s().is_broad("pubsubd.g.news.>"));
    }

    /// Every channel a pattern matches is published on a subject its interest subscription
    /// covers, hashed or not.
    #[test]
    fn pattern_interest_covers_every_matching_channel() {
        let long = "x".repeat(2000);
        let cases: &[(&[u8], &[&[u8]])] = &[
            (
                b"news.*",
                &[b"news.", b"news.a", b"news.a.b", b"news...", b"news.\r\n"],
            ),
            (b"news.sports.?", &[b"news.sports.a", b"news.sports.~"]),
            // Redis's matcher never matches the empty channel, not even with `*`.
            (b"*", &[b".", b"a.b"]),
            (b"plain", &[b"plain"]),
        ];
        for (pat, channels) in cases {
            let interest = s().pattern_interest(pat);
            for ch in *channels {
                assert!(
                    stringmatch(pat, ch, false),
                    "{:?} {:?}",
                    String::from_utf8_lossy(pat),
                    String::from_utf8_lossy(ch)
                );
                let subj = s().channel(Namespace::Global, ch).subject;
                assert!(nats_match(&interest, &subj), "{interest} vs {subj}");
            }
        }
        let mut ch = b"news.sports.".to_vec();
        ch.extend(long.as_bytes());
        let subj = s().channel(Namespace::Global, &ch).subject;
        assert!(nats_match(&s().pattern_interest(b"news.sports.*"), &subj));
        // A pattern whose literal tokens exceed HASH_KEEP is cut to tokens within it.
        let mut pat = long.as_bytes()[..100].to_vec();
        pat.extend(b".");
        pat.extend(&long.as_bytes()[..200]);
        pat.extend(b".*");
        let interest = s().pattern_interest(&pat);
        assert!(interest.len() <= HASH_KEEP, "{}", interest.len());
        let mut ch = pat[..pat.len() - 1].to_vec();
        ch.extend(long.as_bytes());
        assert!(nats_match(
            &interest,
            &s().channel(Namespace::Global, &ch).subject
        ));
    }

    #[test]
    fn decode_rejects_foreign_and_malformed_subjects() {
        assert_eq!(s().decode("other.g.a"), None);
        assert_eq!(s().decode("pubsubdx.g.a"), None);
        assert_eq!(s().decode("pubsubd.x.a"), None);
        assert_eq!(s().decode("pubsubd.g.~4"), None);
        assert_eq!(s().decode("pubsubd.g.~ZZ"), None);
        assert_eq!(
            s().decode("pubsubd.c.members.join"),
            Some(Decoded::Control("members.join".into()))
        );
    }

    #[test]
    fn prefixes_are_plain_tokens() {
        assert!(valid_prefix("pubsubd"));
        assert!(valid_prefix("prod.eu-1"));
        for bad in ["", "a..b", "a b", "a.*", "a.>", ".a", "a."] {
            assert!(!valid_prefix(bad), "{bad}");
        }
    }

    #[test]
    fn nats_matching_follows_nats_rules() {
        assert!(nats_match("a.>", "a.b.c"));
        assert!(!nats_match("a.>", "a"));
        assert!(nats_match("a.*.c", "a.b.c"));
        assert!(!nats_match("a.*", "a.b.c"));
        assert!(nats_match("a.b", "a.b"));
    }
}
