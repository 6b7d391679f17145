//! The named masks of the differential fuzzer: each hides one kind of field or order that
//! differs between any two servers (or between Redis 7.0 and 7.2), says what it hides and why,
//! and nothing else is relaxed. Both servers' replies go through the same masks before they
//! are compared. The masks marked `Reference70` apply only when the reference reports
//! `redis_version:7.0.*`, so against a 7.2 reference nothing version-specific is hidden.

use std::collections::HashMap;

use crate::fuzz_masks70 as v70;
use crate::normalize::{apply_frames, Normalizer};
use crate::resp::Frame;

/// When a mask applies.
#[derive(Clone, Copy, PartialEq)]
pub enum When {
    /// Against every reference.
    Always,
    /// Only when the reference is Redis 7.0 (the difference is between 7.0 and 7.2).
    Reference70,
}

/// How a mask is applied.
#[derive(Clone, Copy)]
pub enum How {
    /// To every frame a client receives.
    Frames(fn(Vec<Frame>, &Ctx) -> Vec<Frame>),
    /// To the replies of one command, which the runner brackets with PINGs.
    Bracketed(fn(Vec<Frame>) -> Vec<Frame>),
    /// To a client's bytes before they are parsed.
    Bytes(fn(&[u8]) -> Vec<u8>),
    /// Not a transformation: the commands are not generated for this reference.
    NotSent,
}

/// One named mask.
pub struct Mask {
    pub name: &'static str,
    pub hides: &'static str,
    pub why: &'static str,
    pub when: When,
    pub how: How,
}

/// What a side's masks need to know: the ports of its clients (by client name) and its own.
pub struct Ctx<'a> {
    pub ports: &'a HashMap<u16, String>,
    pub server_port: u16,
}

/// The masks, in the order they are applied.
pub const MASKS: &[Mask] = &[
    Mask {
        name: "client-address",
        hides: "`127.0.0.1:<port>` in any text (CLIENT LIST/INFO addr= and laddr=, ACL LOG client-info) becomes the client's name, or `server`",
        why: "each server sees its own ephemeral client ports and listens on its own port; naming them still checks which client a line is about",
        when: When::Always,
        how: How::Frames(client_address),
    },
    Mask {
        name: "fd",
        hides: "fd= in CLIENT LIST/INFO text",
        why: "file descriptor numbers are the process's own",
        when: When::Always,
        how: How::Frames(fd),
    },
    Mask {
        name: "age-idle",
        hides: "age= and idle= in CLIENT LIST/INFO text, age-seconds in ACL LOG entries",
        why: "elapsed seconds: a second boundary can fall between the two servers' replies",
        when: When::Always,
        how: How::Frames(age_idle),
    },
    Mask {
        name: "memory",
        hides: "qbuf-free=, rbs=, rbp= and tot-mem= in CLIENT LIST/INFO text",
        why: "sizes of allocations: Redis reports its query buffer's usable size as its allocator rounds it and its peak; pubsubd's buffers are its own (qbuf and argv-mem, the bytes of the commands, are compared)",
        when: When::Always,
        how: How::Frames(memory),
    },
    Mask {
        name: "output-buffer",
        hides: "obl=, oll=, omem= and events= in CLIENT LIST/INFO text",
        why: "replies not yet written at that moment: Redis writes a client's replies after it has run the whole read, pubsubd's writer tasks write while the commands run, so how much is pending (and whether a write is awaited, events=rw) is a matter of timing",
        when: When::Always,
        how: How::Frames(output_buffer),
    },
    Mask {
        name: "acl-log-time",
        hides: "timestamp-created and timestamp-last-updated in ACL LOG entries",
        why: "wall-clock milliseconds",
        when: When::Always,
        how: How::Frames(acl_log_time),
    },
    Mask {
        name: "unsubscribe-order",
        hides: "the order of the channel (pattern) names in the confirmations of UNSUBSCRIBE, PUNSUBSCRIBE and SUNSUBSCRIBE without arguments (the counts stay in place)",
        why: "Redis walks the client's hash table of subscriptions, whose order is per process",
        when: When::Always,
        how: How::Bracketed(sort_channels),
    },
    Mask {
        name: "list-order",
        hides: "the order of the elements of PUBSUB CHANNELS, PUBSUB SHARDCHANNELS and ACL CAT <category> replies",
        why: "Redis lists them in its hash tables' order, which is per process",
        when: When::Always,
        how: How::Bracketed(sort_elements),
    },
    Mask {
        name: "auth-error-after-reply",
        hides: "the -WRONGPASS reply of an AUTH or HELLO … AUTH that is not the first command of its step",
        why: "Redis 7.2.4 drops a failed AUTH's error when the client has replies not yet written (addAuthErrReply); pubsubd always answers (README, Differences on purpose)",
        when: When::Always,
        how: How::Bracketed(drop_wrongpass),
    },
    Mask {
        name: "pattern-order",
        hides: "the order of consecutive pmessage frames for the same channel and payload (one PUBLISH matching several patterns of the client)",
        why: "Redis walks its pattern hash table, whose order is per process",
        when: When::Always,
        how: How::Frames(pattern_order),
    },
    Mask {
        name: "hello-version-7.0",
        hides: "the version field of HELLO's reply",
        why: "7.0.15 against pubsubd's 7.2.4",
        when: When::Reference70,
        how: How::Frames(v70::hello_version),
    },
    Mask {
        name: "client-lib-fields-7.0",
        hides: "the lib-name= and lib-ver= fields of CLIENT LIST/INFO lines (dropped)",
        why: "both fields are new in Redis 7.2",
        when: When::Reference70,
        how: How::Frames(v70::client_lib_fields),
    },
    Mask {
        name: "acl-sanitize-payload-7.0",
        hides: "the sanitize-payload flag in ACL LIST lines and ACL GETUSER flags (dropped)",
        why: "Redis 7.2 shows it on every user; 7.0 does not",
        when: When::Reference70,
        how: How::Frames(v70::sanitize_payload),
    },
    Mask {
        name: "acl-command-rules-7.0",
        hides: "the command rules (+… and -… words) of ACL LIST lines and ACL GETUSER's commands value",
        why: "Redis 7.0 rebuilds the rules from its command bitmap in its own order; 7.2 keeps them in the order given, compacted",
        when: When::Reference70,
        how: How::Frames(v70::command_rules),
    },
    Mask {
        name: "help-footer-7.0",
        hides: "7.0's `Prints this help.` line of HELP replies, read as 7.2's `Print this help.`",
        why: "Redis 7.2 reworded its shared HELP footer",
        when: When::Reference70,
        how: How::Frames(v70::help_footer),
    },
    Mask {
        name: "client-help-7.0",
        hides: "the whole CLIENT HELP reply",
        why: "Redis 7.2 added NO-TOUCH and SETINFO to it and reworded lines",
        when: When::Reference70,
        how: How::Frames(v70::client_help),
    },
    Mask {
        name: "acl-log-fields-7.0",
        hides: "the entry-id, timestamp-created and timestamp-last-updated fields of ACL LOG entries (dropped)",
        why: "the three fields are new in Redis 7.2",
        when: When::Reference70,
        how: How::Frames(v70::acl_log_fields),
    },
    Mask {
        name: "noperm-text-7.0",
        hides: "who NOPERM errors and ACL DRYRUN denials name (7.2 `User alice`, 7.0 `this user`), 7.0's ` or its subcommand`, and the whole text of a channel NOPERM",
        why: "Redis 7.2 reworded them: commands name the user, channels say `No permissions to access a channel` (7.0: `… one of the channels used as arguments`)",
        when: When::Reference70,
        how: How::Frames(v70::noperm_text),
    },
    Mask {
        name: "own-message-order-7.0",
        hides: "where the message pushes a client delivers to itself (RESP3 message, pmessage, smessage) sit among its replies: they are moved after everything else it received in the step, in their order; a push inside an array is taken out of it",
        why: "Redis 7.0 writes them before the PUBLISH reply, inside EXEC's array in a transaction; 7.2 after the command's reply, after the whole EXEC reply",
        when: When::Reference70,
        how: How::Bytes(v70::own_messages_last),
    },
    Mask {
        name: "not-sent-to-7.0",
        hides: "CLIENT SETINFO and CLIENT NO-TOUCH are not generated, nor SUBSCRIBE, PSUBSCRIBE or HELLO inside a transaction",
        why: "the two CLIENT subcommands are new in Redis 7.2 (7.0 answers unknown subcommand); a transaction that subscribes, or switches to RESP2, and then publishes to the client itself gets RESP2 messages inside EXEC's array from 7.0, which no mask can tell from replies",
        when: When::Reference70,
        how: How::NotSent,
    },
];

/// Applies every mask that is in force for this reference, in order.
pub fn apply(frames: Vec<Frame>, ctx: &Ctx, reference_70: bool) -> Vec<Frame> {
    MASKS
        .iter()
        .filter(|m| m.when == When::Always || reference_70)
        .fold(frames, |frames, m| match m.how {
            How::Frames(f) => f(frames, ctx),
            How::Bracketed(_) | How::Bytes(_) | How::NotSent => frames,
        })
}

/// Applies the masks in force that work on bytes before they are parsed.
pub fn apply_bytes(bytes: &[u8], reference_70: bool) -> Vec<u8> {
    MASKS
        .iter()
        .filter(|m| m.when == When::Always || reference_70)
        .fold(bytes.to_vec(), |bytes, m| match m.how {
            How::Bytes(f) => f(&bytes),
            _ => bytes,
        })
}

/// The transformation of a bracketed mask, by its name.
pub fn bracketed(name: &str) -> fn(Vec<Frame>) -> Vec<Frame> {
    let mask = MASKS.iter().find(|m| m.name == name).expect("a named mask");
    match mask.how {
        How::Bracketed(f) => f,
        _ => panic!("{name} is not a bracketed mask"),
    }
}

fn sort_channels(frames: Vec<Frame>) -> Vec<Frame> {
    apply_frames(&[Normalizer::SortChannels], frames)
}

fn sort_elements(frames: Vec<Frame>) -> Vec<Frame> {
    apply_frames(&[Normalizer::Sort], frames)
}

/// The error a failed AUTH answers.
const WRONGPASS: &[u8] = b"WRONGPASS invalid username-password pair or user is disabled.";

fn drop_wrongpass(frames: Vec<Frame>) -> Vec<Frame> {
    frames
        .into_iter()
        .filter(|f| !matches!(f, Frame::Line(b'-', e) if e == WRONGPASS))
        .collect()
}

pub fn keys(list: &[&str]) -> Vec<Vec<u8>> {
    list.iter().map(|k| k.as_bytes().to_vec()).collect()
}

fn fd(frames: Vec<Frame>, _: &Ctx) -> Vec<Frame> {
    apply_frames(&[Normalizer::Mask(keys(&["fd"]))], frames)
}

fn age_idle(frames: Vec<Frame>, _: &Ctx) -> Vec<Frame> {
    apply_frames(
        &[Normalizer::Mask(keys(&["age", "idle", "age-seconds"]))],
        frames,
    )
}

fn memory(frames: Vec<Frame>, _: &Ctx) -> Vec<Frame> {
    let names = ["qbuf-free", "rbs", "rbp", "tot-mem"];
    apply_frames(&[Normalizer::Mask(keys(&names))], frames)
}

fn output_buffer(frames: Vec<Frame>, _: &Ctx) -> Vec<Frame> {
    let names = ["obl", "oll", "omem", "events"];
    apply_frames(&[Normalizer::Mask(keys(&names))], frames)
}

fn acl_log_time(frames: Vec<Frame>, _: &Ctx) -> Vec<Frame> {
    let names = ["timestamp-created", "timestamp-last-updated"];
    apply_frames(&[Normalizer::Mask(keys(&names))], frames)
}

/// Applies `f` to every aggregate's elements, at any depth (innermost first).
pub fn map_items(frame: Frame, f: &dyn Fn(Vec<Frame>) -> Vec<Frame>) -> Frame {
    match frame {
        Frame::Aggregate(kind, Some(items)) => {
            let items = items.into_iter().map(|i| map_items(i, f)).collect();
            Frame::Aggregate(kind, Some(f(items)))
        }
        other => other,
    }
}

/// Rewrites every string in `frame` (at any depth) with `f`.
pub fn map_text(frame: Frame, f: &dyn Fn(&[u8]) -> Vec<u8>) -> Frame {
    match frame {
        Frame::Line(kind @ (b'+' | b'-'), s) => Frame::Line(kind, f(&s)),
        Frame::Blob(b'$', Some(s)) => Frame::Blob(b'$', Some(f(&s))),
        Frame::Blob(b'=', Some(s)) if s.len() >= 4 => {
            let mut out = s[..4].to_vec();
            out.extend(f(&s[4..]));
            Frame::Blob(b'=', Some(out))
        }
        Frame::Aggregate(kind, Some(items)) => Frame::Aggregate(
            kind,
            Some(items.into_iter().map(|i| map_text(i, f)).collect()),
        ),
        other => other,
    }
}

fn client_address(frames: Vec<Frame>, ctx: &Ctx) -> Vec<Frame> {
    const HOST: &[u8] = b"127.0.0.1:";
    let rewrite = |s: &[u8]| -> Vec<u8> {
        let mut out = Vec::with_capacity(s.len());
        let mut i = 0;
        while i < s.len() {
            if s[i..].starts_with(HOST) {
                let digits = s[i + HOST.len()..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                let port = std::str::from_utf8(&s[i + HOST.len()..i + HOST.len() + digits])
                    .ok()
                    .and_then(|p| p.parse::<u16>().ok());
                let name = match port {
                    Some(p) if p == ctx.server_port => Some("server".to_string()),
                    Some(p) => ctx.ports.get(&p).cloned(),
                    None => None,
                };
                if let Some(name) = name {
                    out.extend_from_slice(format!("<{name}>").as_bytes());
                    i += HOST.len() + digits;
                    continue;
                }
            }
            out.push(s[i]);
            i += 1;
        }
        out
    };
    frames.into_iter().map(|f| map_text(f, &rewrite)).collect()
}

fn pattern_order(mut frames: Vec<Frame>, _: &Ctx) -> Vec<Frame> {
    // (channel, payload) of a pmessage frame.
    let key = |f: &Frame| match f {
        Frame::Aggregate(b'*' | b'>', Some(items))
            if items.len() == 4 && items[0].text() == Some(b"pmessage") =>
        {
            Some((items[2].clone(), items[3].clone()))
        }
        _ => None,
    };
    let mut start = 0;
    while start < frames.len() {
        let Some(k) = key(&frames[start]) else {
            start += 1;
            continue;
        };
        let mut end = start + 1;
        while end < frames.len() && key(&frames[end]).as_ref() == Some(&k) {
            end += 1;
        }
        frames[start..end].sort_by_key(|f| {
            let mut v = Vec::new();
            crate::resp::encode(f, &mut v);
            v
        });
        start = end;
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::{encode, parse_all};

    fn run(mask: fn(Vec<Frame>, &Ctx) -> Vec<Frame>, wire: &[u8]) -> Vec<u8> {
        let ports = HashMap::from([(5000, "c1".to_string())]);
        let ctx = Ctx {
            ports: &ports,
            server_port: 6379,
        };
        let (frames, _) = parse_all(wire);
        let mut out = Vec::new();
        mask(frames, &ctx).iter().for_each(|f| encode(f, &mut out));
        out
    }

    #[test]
    fn client_address_names_known_ports_only() {
        let out = run(
            client_address,
            b"$60\r\nid=5 addr=127.0.0.1:5000 laddr=127.0.0.1:6379 x=127.0.0.1:7\n\r\n",
        );
        assert_eq!(
            out,
            b"$44\r\nid=5 addr=<c1> laddr=<server> x=127.0.0.1:7\n\r\n".to_vec()
        );
    }

    #[test]
    fn pattern_order_sorts_one_publish_only() {
        let pm = |p: &str, c: &str| {
            format!("*4\r\n$8\r\npmessage\r\n$1\r\n{p}\r\n$1\r\n{c}\r\n$1\r\nx\r\n")
        };
        let wire = [
            pm("b", "a"),
            pm("a", "a"),
            ":2\r\n".into(),
            pm("b", "c"),
            pm("a", "a"),
        ]
        .concat();
        let want = [
            pm("a", "a"),
            pm("b", "a"),
            ":2\r\n".into(),
            pm("b", "c"),
            pm("a", "a"),
        ]
        .concat();
        assert_eq!(run(pattern_order, wire.as_bytes()), want.as_bytes());
    }

    #[test]
    fn every_mask_has_a_unique_name_and_reasons() {
        for (i, m) in MASKS.iter().enumerate() {
            assert!(!m.hides.is_empty() && !m.why.is_empty(), "{}", m.name);
            assert!(MASKS[..i].iter().all(|o| o.name != m.name), "{}", m.name);
        }
    }
}
