//! The named normalizers a script step may apply to its client's reply before the two
//! servers' bytes are compared. Each one hides a specific, explained difference and nothing
//! else; the set is kept small on purpose.
//!
//! A reply is parsed into frames, transformed and encoded again, so lengths stay correct.
//! Bytes that do not parse as RESP are left exactly as they were.

use crate::resp::{self, Frame};

/// Text replies that describe fields come in two shapes, and the field-based normalizers
/// understand both:
/// - INFO: `key:value` lines (`# Section` headers and blank lines in between);
/// - CLIENT INFO / CLIENT LIST: lines of space-separated `key=value` tokens.
#[derive(Clone, Debug, PartialEq)]
pub enum Normalizer {
    /// `~mask-ints`: every integer reply (`:N`) becomes `:#`.
    MaskInts,
    /// `~mask k1,k2`: the values of these fields become `<masked>`: in `key:value` and
    /// `key=value` text, and in arrays or maps read as key/value pairs (HELLO's reply).
    Mask(Vec<Vec<u8>>),
    /// `~only k1,k2`: field text keeps just these fields, in the order the server sent them,
    /// and INFO's `# Section` headers; other INFO lines and blank lines are dropped.
    Only(Vec<Vec<u8>>),
    /// `~sort`: the elements of each top-level array (pairs of a map) are sorted, for
    /// replies whose order is hash-table order.
    Sort,
    /// `~sort-frames`: the reply's top-level frames are sorted, for messages whose order is
    /// hash-table order (one client matching several patterns).
    SortFrames,
    /// `~sort-channels`: the channel names (second element) of the top-level frames are
    /// sorted while everything else stays in place, for UNSUBSCRIBE-all style replies whose
    /// channel order is hash-table order but whose counts must still count down.
    SortChannels,
    /// `~keep-commands a,b`: in COMMAND / COMMAND INFO style replies (an array of entries
    /// that start with the command name) and COMMAND DOCS style replies (name/value pairs),
    /// keeps only the named commands, sorted by name; their subcommands (`name|sub`),
    /// listed in hash-table order, are sorted too.
    KeepCommands(Vec<Vec<u8>>),
}

/// Applies `norms`, in order, to a client's bytes for one step.
pub fn apply(norms: &[Normalizer], bytes: &[u8]) -> Vec<u8> {
    if norms.is_empty() {
        return bytes.to_vec();
    }
    let (frames, rest) = resp::parse_all(bytes);
    let frames = apply_frames(norms, frames);
    let mut out = Vec::new();
    frames.iter().for_each(|f| f.write(&mut out));
    out.extend_from_slice(rest);
    out
}

/// Applies `norms`, in order, to parsed frames.
pub fn apply_frames(norms: &[Normalizer], mut frames: Vec<Frame>) -> Vec<Frame> {
    for norm in norms {
        match norm {
            Normalizer::SortFrames => frames.sort_by_key(encoded),
            Normalizer::SortChannels => sort_channels(&mut frames),
            _ => frames = frames.into_iter().map(|f| top_level(norm, f)).collect(),
        }
    }
    frames
}

fn encoded(frame: &Frame) -> Vec<u8> {
    frame.to_bytes()
}

fn sort_channels(frames: &mut [Frame]) {
    let mut names: Vec<Frame> = frames
        .iter()
        .filter_map(|f| match f {
            Frame::Aggregate(_, Some(items)) if items.len() >= 3 => Some(items[1].clone()),
            _ => None,
        })
        .collect();
    names.sort_by_key(encoded);
    let mut names = names.into_iter();
    for f in frames.iter_mut() {
        if let Frame::Aggregate(_, Some(items)) = f {
            if items.len() >= 3 {
                items[1] = names.next().expect("as many names as frames");
            }
        }
    }
}

fn top_level(norm: &Normalizer, frame: Frame) -> Frame {
    match norm {
        Normalizer::Sort => match frame {
            Frame::Aggregate(kind, Some(items)) => {
                Frame::Aggregate(kind, Some(sort_items(kind, items)))
            }
            other => other,
        },
        Normalizer::KeepCommands(names) => keep_commands(names, frame),
        _ => deep(norm, frame),
    }
}

fn deep(norm: &Normalizer, frame: Frame) -> Frame {
    match frame {
        Frame::Line(b':', _) if *norm == Normalizer::MaskInts => Frame::Line(b':', b"#".to_vec()),
        Frame::Blob(b'$', Some(text)) => Frame::Blob(b'$', Some(fields(norm, &text))),
        Frame::Blob(b'=', Some(text)) if text.len() >= 4 => {
            let mut out = text[..4].to_vec();
            out.extend(fields(norm, &text[4..]));
            Frame::Blob(b'=', Some(out))
        }
        Frame::Aggregate(kind, Some(items)) => {
            let pairs = matches!(kind, b'%' | b'|') || kind == b'*';
            let mut out = Vec::with_capacity(items.len());
            let mut mask_next = false;
            for (i, item) in items.into_iter().enumerate() {
                if mask_next {
                    out.push(Frame::Line(b'+', b"<masked>".to_vec()));
                    mask_next = false;
                    continue;
                }
                if let (Normalizer::Mask(keys), true, 0) = (norm, pairs, i % 2) {
                    mask_next = item.text().is_some_and(|t| keys.iter().any(|k| k == t));
                }
                out.push(deep(norm, item));
            }
            Frame::Aggregate(kind, Some(out))
        }
        other => other,
    }
}

fn sort_items(kind: u8, items: Vec<Frame>) -> Vec<Frame> {
    let key = encoded;
    if matches!(kind, b'%' | b'|') {
        let mut pairs: Vec<(Frame, Frame)> = pairs(items);
        pairs.sort_by_key(|(k, v)| (key(k), key(v)));
        pairs.into_iter().flat_map(|(k, v)| [k, v]).collect()
    } else {
        let mut items = items;
        items.sort_by_key(key);
        items
    }
}

fn pairs(items: Vec<Frame>) -> Vec<(Frame, Frame)> {
    let mut it = items.into_iter();
    let mut out = Vec::new();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    out
}

fn keep_commands(names: &[Vec<u8>], frame: Frame) -> Frame {
    let Frame::Aggregate(kind, Some(items)) = frame else {
        return frame;
    };
    let wanted =
        |name: Option<&[u8]>| name.is_some_and(|n| names.iter().any(|w| w.eq_ignore_ascii_case(n)));
    let entries = items.iter().all(
        |i| matches!(i, Frame::Aggregate(_, Some(v)) if v.first().and_then(Frame::text).is_some()),
    );
    if entries && kind != b'%' {
        let name = |f: &Frame| match f {
            Frame::Aggregate(_, Some(v)) => v[0].text().map(<[u8]>::to_ascii_lowercase),
            _ => None,
        };
        let mut kept: Vec<Frame> = items
            .into_iter()
            .filter(|f| wanted(name(f).as_deref()))
            .map(sort_subcommands)
            .collect();
        kept.sort_by_key(name);
        Frame::Aggregate(kind, Some(kept))
    } else {
        let mut kept: Vec<(Frame, Frame)> = pairs(items)
            .into_iter()
            .filter(|(k, _)| wanted(k.text()))
            .collect();
        kept.sort_by_key(|(k, _)| k.text().map(<[u8]>::to_ascii_lowercase));
        Frame::Aggregate(
            kind,
            Some(
                kept.into_iter()
                    .flat_map(|(k, v)| [k, sort_subcommands(v)])
                    .collect(),
            ),
        )
    }
}

/// Sorts, at any depth, lists of subcommand entries and maps keyed by subcommand name.
fn sort_subcommands(frame: Frame) -> Frame {
    let Frame::Aggregate(kind, Some(items)) = frame else {
        return frame;
    };
    let items: Vec<Frame> = items.into_iter().map(sort_subcommands).collect();
    let sub = |f: &Frame| f.text().is_some_and(|t| t.contains(&b'|'));
    let entry_name = |f: &Frame| match f {
        Frame::Aggregate(_, Some(v)) => v
            .first()
            .filter(|n| sub(n))
            .and_then(Frame::text)
            .map(<[u8]>::to_vec),
        _ => None,
    };
    if !items.is_empty() && items.iter().all(|f| entry_name(f).is_some()) {
        let mut items = items;
        items.sort_by_key(entry_name);
        return Frame::Aggregate(kind, Some(items));
    }
    if !items.is_empty() && items.len() % 2 == 0 && items.iter().step_by(2).all(sub) {
        let mut pairs = pairs(items);
        pairs.sort_by_key(|(k, _)| k.text().map(<[u8]>::to_vec));
        return Frame::Aggregate(
            kind,
            Some(pairs.into_iter().flat_map(|(k, v)| [k, v]).collect()),
        );
    }
    Frame::Aggregate(kind, Some(items))
}

/// Applies a field normalizer to INFO-shaped or CLIENT LIST-shaped text.
fn fields(norm: &Normalizer, text: &[u8]) -> Vec<u8> {
    let keys = match norm {
        Normalizer::Mask(keys) | Normalizer::Only(keys) => keys,
        _ => return text.to_vec(),
    };
    let only = matches!(norm, Normalizer::Only(_));
    let mut out = Vec::with_capacity(text.len());
    for raw_line in text.split_inclusive(|&b| b == b'\n') {
        let body_len = raw_line.len()
            - raw_line
                .iter()
                .rev()
                .take_while(|b| matches!(b, b'\r' | b'\n'))
                .count();
        let (body, end) = raw_line.split_at(body_len);
        let colon = body.iter().position(|&b| b == b':');
        let equals = body.iter().position(|&b| b == b'=');
        let info_line = match (colon, equals) {
            (Some(c), Some(e)) => c < e,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if info_line {
            let c = colon.unwrap_or(0);
            let (key, value) = (&body[..c], &body[c..]);
            let named = keys.iter().any(|k| k == key);
            if only && !named {
                continue;
            }
            out.extend_from_slice(key);
            out.extend_from_slice(if named && !only { b":<masked>" } else { value });
        } else if equals.is_some() {
            let mut first = true;
            for token in body.split(|&b| b == b' ') {
                let e = token.iter().position(|&b| b == b'=').unwrap_or(token.len());
                let named = keys.iter().any(|k| k == &token[..e]);
                if only && !named {
                    continue;
                }
                if !first {
                    out.push(b' ');
                }
                first = false;
                out.extend_from_slice(&token[..e]);
                out.extend_from_slice(if named && !only {
                    b"=<masked>"
                } else {
                    &token[e..]
                });
            }
        } else if only && !body.starts_with(b"#") {
            continue;
        } else {
            out.extend_from_slice(body);
        }
        out.extend_from_slice(end);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(list: &[&str]) -> Vec<Vec<u8>> {
        list.iter().map(|k| k.as_bytes().to_vec()).collect()
    }

    #[test]
    fn mask_hides_named_client_fields_and_fixes_the_length() {
        let reply = b"$38\r\nid=7 addr=127.0.0.1:5000 name=x sub=1\n\r\n";
        let out = apply(&[Normalizer::Mask(keys(&["id", "addr"]))], reply);
        assert_eq!(out, b"$39\r\nid=<masked> addr=<masked> name=x sub=1\n\r\n");
    }

    #[test]
    fn only_keeps_named_info_fields() {
        let reply = b"$53\r\n# Clients\r\nconnected_clients:2\r\nblocked_clients:0\r\n\r\n\r\n";
        let out = apply(&[Normalizer::Only(keys(&["connected_clients"]))], reply);
        assert_eq!(out, b"$32\r\n# Clients\r\nconnected_clients:2\r\n\r\n");
    }

    #[test]
    fn mask_reads_flat_arrays_as_pairs() {
        let reply = b"*4\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$2\r\nid\r\n:5\r\n";
        let out = apply(&[Normalizer::Mask(keys(&["version", "id"]))], reply);
        assert_eq!(
            out,
            b"*4\r\n$7\r\nversion\r\n+<masked>\r\n$2\r\nid\r\n+<masked>\r\n"
        );
    }

    #[test]
    fn sort_channels_keeps_the_counts_in_place() {
        let reply = b"*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:1\r\n*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:0\r\n";
        let out = apply(&[Normalizer::SortChannels], reply);
        assert_eq!(out, b"*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:0\r\n");
        let out = apply(&[Normalizer::SortFrames], reply);
        assert!(out.starts_with(b"*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:0\r\n"));
    }

    #[test]
    fn sort_orders_array_elements() {
        let out = apply(&[Normalizer::Sort], b"*2\r\n$1\r\nb\r\n$1\r\na\r\n");
        assert_eq!(out, b"*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    }

    #[test]
    fn keep_commands_filters_and_sorts_entries() {
        let reply = b"*3\r\n*1\r\n$3\r\nget\r\n*1\r\n$4\r\nping\r\n*1\r\n$4\r\necho\r\n";
        let out = apply(&[Normalizer::KeepCommands(keys(&["ping", "echo"]))], reply);
        assert_eq!(out, b"*2\r\n*1\r\n$4\r\necho\r\n*1\r\n$4\r\nping\r\n");
        let docs = b"*4\r\n$4\r\nping\r\n*0\r\n$3\r\nget\r\n*0\r\n";
        let out = apply(&[Normalizer::KeepCommands(keys(&["ping"]))], docs);
        assert_eq!(out, b"*2\r\n$4\r\nping\r\n*0\r\n");
    }
}
