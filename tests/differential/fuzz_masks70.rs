//! The masks of `fuzz_masks` that apply only when the reference is Redis 7.0: each turns a
//! difference between 7.0 and 7.2 (which pubsubd follows) into the same bytes on both sides.
//! Their names, what they hide and why are in `fuzz_masks::MASKS`.

use crate::fuzz_masks::{keys, map_items, map_text, Ctx};
use crate::normalize::{apply_frames, Normalizer};
use crate::resp::{self, Frame};

/// Rewrites the words of one ACL LIST line.
type WordsFn = dyn Fn(Vec<&[u8]>) -> Vec<Vec<u8>>;

pub fn hello_version(frames: Vec<Frame>, _: &Ctx) -> Vec<Frame> {
    // HELLO's reply is the only key/value reply with a `version` key the fuzzer can get
    // (at any depth: HELLO inside EXEC).
    apply_frames(&[Normalizer::Mask(keys(&["version"]))], frames)
}

pub fn client_lib_fields(frames: Vec<Frame>, _: &Ctx) -> Vec<Frame> {
    let drop_fields = |text: &[u8]| -> Vec<u8> {
        if !text.starts_with(b"id=") {
            return text.to_vec();
        }
        let lines: Vec<Vec<u8>> = text
            .split(|&b| b == b'\n')
            .map(|line| {
                let kept: Vec<&[u8]> = line
                    .split(|&b| b == b' ')
                    .filter(|t| !t.starts_with(b"lib-name=") && !t.starts_with(b"lib-ver="))
                    .collect();
                kept.join(&b' ')
            })
            .collect();
        lines.join(&b'\n')
    };
    frames
        .into_iter()
        .map(|f| map_text(f, &drop_fields))
        .collect()
}

/// Whether `frame` is a message push (RESP3 `>` message, pmessage or smessage).
fn is_message_push(frame: &Frame) -> bool {
    matches!(frame, Frame::Aggregate(b'>', Some(items))
        if matches!(items.first().and_then(Frame::text), Some(b"message" | b"pmessage" | b"smessage")))
}

/// Copies the frame at `at` to `out`, moving any message push met where a frame starts (even
/// inside an aggregate, where it is not counted) to `pushes`. Returns where the frame ends, or
/// `None` if the bytes are incomplete or not RESP.
fn copy_frame(buf: &[u8], mut at: usize, out: &mut Vec<u8>, pushes: &mut Vec<u8>) -> Option<usize> {
    while let Some((frame, n)) = resp::parse(&buf[at..]) {
        if !is_message_push(&frame) {
            break;
        }
        pushes.extend_from_slice(&buf[at..at + n]);
        at += n;
    }
    if at == buf.len() {
        return Some(at);
    }
    let kind = buf[at];
    let eol = buf[at..].windows(2).position(|w| w == b"\r\n")? + at;
    let head = std::str::from_utf8(&buf[at + 1..eol]).ok()?;
    out.extend_from_slice(&buf[at..eol + 2]);
    let mut next = eol + 2;
    match kind {
        b'*' | b'%' | b'~' | b'>' | b'|' => {
            let count: i64 = head.parse().ok()?;
            let count = count.max(0) as usize * if matches!(kind, b'%' | b'|') { 2 } else { 1 };
            for _ in 0..count {
                next = copy_frame(buf, next, out, pushes)?;
            }
        }
        b'$' | b'!' | b'=' => {
            let len: i64 = head.parse().ok()?;
            if len >= 0 {
                let end = next + len as usize + 2;
                out.extend_from_slice(buf.get(next..end)?);
                next = end;
            }
        }
        _ => {}
    }
    Some(next)
}

pub fn own_messages_last(bytes: &[u8]) -> Vec<u8> {
    let (mut out, mut pushes) = (Vec::new(), Vec::new());
    let mut at = 0;
    while at < bytes.len() {
        let mark = out.len();
        match copy_frame(bytes, at, &mut out, &mut pushes) {
            Some(next) => at = next,
            None => {
                out.truncate(mark);
                out.extend_from_slice(&bytes[at..]);
                break;
            }
        }
    }
    out.extend(pushes);
    out
}

pub fn noperm_text(frames: Vec<Frame>, _: &Ctx) -> Vec<Frame> {
    const CHANNEL_70: &[u8] =
        b"NOPERM this user has no permissions to access one of the channels used as arguments";
    const CHANNEL_72: &[u8] = b"NOPERM No permissions to access a channel";
    const HAS: &[u8] = b" has no permissions to ";
    let reword = |t: &[u8]| -> Vec<u8> {
        if t == CHANNEL_70 || t == CHANNEL_72 {
            return b"NOPERM <channel denied>".to_vec();
        }
        let Some(at) = t.windows(HAS.len()).position(|w| w == HAS) else {
            return t.to_vec();
        };
        let who = &t[..at];
        let prefix: &[u8] = if who.starts_with(b"NOPERM ") {
            b"NOPERM "
        } else {
            b""
        };
        let bare = &who[prefix.len()..];
        if !(bare.eq_ignore_ascii_case(b"this user") || bare.starts_with(b"User ")) {
            return t.to_vec();
        }
        let rest = &t[at..];
        let rest = rest.strip_suffix(b" or its subcommand").unwrap_or(rest);
        [prefix, b"<user>", rest].concat()
    };
    frames.into_iter().map(|f| map_text(f, &reword)).collect()
}

pub fn help_footer(frames: Vec<Frame>, _: &Ctx) -> Vec<Frame> {
    let reword = |t: &[u8]| -> Vec<u8> {
        if t == b"    Prints this help." {
            b"    Print this help.".to_vec()
        } else {
            t.to_vec()
        }
    };
    frames.into_iter().map(|f| map_text(f, &reword)).collect()
}

pub fn client_help(frames: Vec<Frame>, _: &Ctx) -> Vec<Frame> {
    let is_help = |items: &[Frame]| {
        items
            .first()
            .and_then(Frame::text)
            .is_some_and(|t| t.starts_with(b"CLIENT <subcommand>"))
    };
    let mask = |f: Frame| match f {
        Frame::Aggregate(_, Some(items)) if is_help(&items) => {
            Frame::Line(b'+', b"<CLIENT HELP>".to_vec())
        }
        other => other,
    };
    frames
        .into_iter()
        .map(|f| {
            let f = mask(f);
            map_items(f, &|items| items.into_iter().map(mask).collect())
        })
        .collect()
}

pub fn acl_log_fields(frames: Vec<Frame>, _: &Ctx) -> Vec<Frame> {
    const NEW: [&[u8]; 3] = [b"entry-id", b"timestamp-created", b"timestamp-last-updated"];
    let drop_new = |items: Vec<Frame>| -> Vec<Frame> {
        if items.first().and_then(Frame::text) != Some(b"count") || items.len() % 2 != 0 {
            return items;
        }
        let mut out = Vec::with_capacity(items.len());
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            if !k.text().is_some_and(|t| NEW.contains(&t)) {
                out.extend([k, v]);
            }
        }
        out
    };
    frames
        .into_iter()
        .map(|f| map_items(f, &drop_new))
        .collect()
}

/// Rewrites the words of ACL LIST lines (`user <name> …`) with `f`.
fn acl_list_words(frames: Vec<Frame>, f: &WordsFn) -> Vec<Frame> {
    let rewrite = |text: &[u8]| -> Vec<u8> {
        if !text.starts_with(b"user ") {
            return text.to_vec();
        }
        f(text.split(|&b| b == b' ').collect()).join(&b' ')
    };
    frames
        .into_iter()
        .map(|fr| map_text(fr, &rewrite))
        .collect()
}

pub fn sanitize_payload(frames: Vec<Frame>, _: &Ctx) -> Vec<Frame> {
    let flag = |f: &Frame| f.text() == Some(b"sanitize-payload");
    let frames = frames
        .into_iter()
        .map(|f| map_items(f, &|items| items.into_iter().filter(|i| !flag(i)).collect()))
        .collect();
    acl_list_words(frames, &|words| {
        words
            .into_iter()
            .filter(|w| *w != b"sanitize-payload")
            .map(<[u8]>::to_vec)
            .collect()
    })
}

pub fn command_rules(frames: Vec<Frame>, _: &Ctx) -> Vec<Frame> {
    let frames = apply_frames(&[Normalizer::Mask(keys(&["commands"]))], frames);
    acl_list_words(frames, &|words| {
        let mut out: Vec<Vec<u8>> = Vec::new();
        for w in words {
            if w.starts_with(b"+") || w.starts_with(b"-") {
                if out.last().map(Vec::as_slice) != Some(b"<command-rules>") {
                    out.push(b"<command-rules>".to_vec());
                }
            } else {
                out.push(w.to_vec());
            }
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::{encode, parse_all};
    use std::collections::HashMap;

    fn run(mask: fn(Vec<Frame>, &Ctx) -> Vec<Frame>, wire: &[u8]) -> Vec<u8> {
        let ports = HashMap::new();
        let ctx = Ctx {
            ports: &ports,
            server_port: 6379,
        };
        let (frames, _) = parse_all(wire);
        let mut out = Vec::new();
        mask(frames, &ctx).iter().for_each(|f| encode(f, &mut out));
        out
    }

    const MSG: &str = ">3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nx\r\n";

    #[test]
    fn own_messages_leave_exec_arrays_and_go_last() {
        // 7.0: the push inside EXEC's array, before the PUBLISH count.
        let v70 = format!("*2\r\n+abc\r\n{MSG}:1\r\n$4\r\nmark\r\n");
        // 7.2: after the whole EXEC reply.
        let v72 = format!("*2\r\n+abc\r\n:1\r\n{MSG}$4\r\nmark\r\n");
        let want = format!("*2\r\n+abc\r\n:1\r\n$4\r\nmark\r\n{MSG}");
        assert_eq!(own_messages_last(v70.as_bytes()), want.as_bytes());
        assert_eq!(own_messages_last(v72.as_bytes()), want.as_bytes());
        // Subscribe confirmations are pushes too, but stay where they are.
        let confirm = ">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n";
        assert_eq!(own_messages_last(confirm.as_bytes()), confirm.as_bytes());
    }

    #[test]
    fn noperm_texts_of_both_versions_read_the_same() {
        for (v70, v72) in [
            (
                "-NOPERM this user has no permissions to run the 'ping' command or its subcommand\r\n",
                "-NOPERM User alice has no permissions to run the 'ping' command\r\n",
            ),
            (
                "-NOPERM this user has no permissions to access one of the channels used as arguments\r\n",
                "-NOPERM No permissions to access a channel\r\n",
            ),
            (
                "$57\r\nThis user has no permissions to run the 'publish' command\r\n",
                "$58\r\nUser alice has no permissions to run the 'publish' command\r\n",
            ),
        ] {
            assert_eq!(
                run(noperm_text, v70.as_bytes()),
                run(noperm_text, v72.as_bytes())
            );
        }
    }

    #[test]
    fn acl_list_keeps_all_but_the_flag_and_the_command_rules() {
        let v70 = "*1\r\n$34\r\nuser bob on #ab &a* -@all +@pubsub\r\n";
        let v72 = "*1\r\n$51\r\nuser bob on sanitize-payload #ab &a* +@pubsub -@all\r\n";
        let mask = |w: &str| run(command_rules, &run(sanitize_payload, w.as_bytes()));
        assert_eq!(mask(v70), mask(v72));
        assert_eq!(
            mask(v70),
            b"*1\r\n$35\r\nuser bob on #ab &a* <command-rules>\r\n"
        );
    }
}
