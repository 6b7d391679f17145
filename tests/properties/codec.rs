//! Codec properties: requests survive encoding and decoding whatever their bytes, a pipelined
//! stream decodes to the same commands however it is cut into reads (and malformed input gives
//! the same error), and replies and push frames are well-formed RESP2/RESP3 that a separate
//! reader (`fuzz_harness::resp`) parses back to what was written.
//!
//! Case counts are modest so `cargo test` stays fast; set `PROPTEST_CASES` for a longer run.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use pubsubd::protocol::encode::{self, PushItem};
use pubsubd::protocol::{Decoder, ProtocolError, ReplyBuf, Request, RespVersion};

use crate::fuzz_harness;
use crate::fuzz_harness::resp::{parse_all, Value};
use crate::support::prop::config;

/// Binary-safe arguments, biased towards the bytes that matter to the protocol.
fn arg() -> impl Strategy<Value = Vec<u8>> {
    let special = prop::sample::select(vec![0u8, b'\r', b'\n', b'$', b'*', b' ', b'"', 0xff, 0xc3]);
    let byte = prop_oneof![any::<u8>(), special];
    prop::collection::vec(byte, 0..48)
}

fn request() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(arg(), 1..6)
}

/// Arguments an inline command can carry without quoting (not starting with `*`, which would
/// make the line a multibulk header).
fn inline_word() -> impl Strategy<Value = Vec<u8>> {
    "[A-Za-z0-9_.:?!@#%^&()+=,<>/|~-][A-Za-z0-9_.:*?!@#%^&()+=,<>/|~-]{0,15}"
        .prop_map(String::into_bytes)
}

fn multibulk(args: &[Vec<u8>]) -> Vec<u8> {
    let args: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a)).collect();
    fuzz_harness::decode::encode(&args)
}

/// Decodes `chunks` fed one read at a time (default limits).
fn decode_reads(chunks: &[&[u8]]) -> (Vec<Request>, Option<ProtocolError>) {
    let mut d = Decoder::default();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match d.decode(&mut buf, false) {
                Ok(Some(r)) => out.push(r),
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
    }
    (out, None)
}

/// `stream` cut at `cuts` (positions, any order, may repeat).
fn cut<'a>(stream: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
    at.sort_unstable();
    let mut chunks = Vec::new();
    let mut prev = 0;
    for c in at.into_iter().chain([stream.len()]) {
        chunks.push(&stream[prev..c]);
        prev = c;
    }
    chunks
}

fn as_vecs(reqs: &[Request]) -> Vec<Vec<Vec<u8>>> {
    reqs.iter()
        .map(|r| r.iter().map(|a| a.to_vec()).collect())
        .collect()
}

/// One command of a pipeline: its bytes and the arguments it must decode to.
fn pipelined() -> impl Strategy<Value = (Vec<u8>, Vec<Vec<u8>>)> {
    prop_oneof![
        request().prop_map(|r| (multibulk(&r), r)),
        (
            prop::collection::vec(inline_word(), 1..5),
            prop::sample::select(vec![" ", "  ", "\t", " \t "]),
            prop::sample::select(vec!["\r\n", "\n"]),
        )
            .prop_map(|(words, sep, end)| {
                let mut line = words.join(sep.as_bytes());
                line.extend_from_slice(end.as_bytes());
                (line, words)
            }),
    ]
}

/// Malformed endings and the error each must give.
fn malformed() -> impl Strategy<Value = (Vec<u8>, ProtocolError)> {
    prop::sample::select(vec![
        (&b"*x\r\n"[..], ProtocolError::InvalidMultibulkLength),
        (b"*1\r\n+foo\r\n", ProtocolError::ExpectedDollar('+')),
        (b"*1\r\n$-5\r\n", ProtocolError::InvalidBulkLength),
        (
            b"*2\r\n$1\r\na\r\n$04\r\n",
            ProtocolError::InvalidBulkLength,
        ),
        (b"PING \"a\r\n", ProtocolError::UnbalancedQuotes),
        (b"ECHO 'a'b\n", ProtocolError::UnbalancedQuotes),
    ])
    .prop_map(|(b, e)| (b.to_vec(), e))
}

/// A reply tree, written through `ReplyBuf`.
#[derive(Debug, Clone)]
enum Reply {
    Ok,
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Null,
    NullArray,
    Verbatim(Vec<u8>),
    Array(Vec<Reply>),
    Map(Vec<(Reply, Reply)>),
    Set(Vec<Reply>),
}

fn reply() -> impl Strategy<Value = Reply> {
    let leaf = prop_oneof![
        Just(Reply::Ok),
        "[ -~]{0,20}".prop_map(Reply::Simple),
        "(ERR|NOAUTH|WRONGPASS)[ -~\r\n]{0,20}".prop_map(Reply::Error),
        any::<i64>().prop_map(Reply::Int),
        arg().prop_map(Reply::Bulk),
        Just(Reply::Null),
        Just(Reply::NullArray),
        arg().prop_map(Reply::Verbatim),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Reply::Array),
            prop::collection::vec((inner.clone(), inner.clone()), 0..3).prop_map(Reply::Map),
            prop::collection::vec(inner, 0..4).prop_map(Reply::Set),
        ]
    })
}

fn write(r: &Reply, out: &mut ReplyBuf) {
    match r {
        Reply::Ok => out.ok(),
        Reply::Simple(s) => out.simple(s),
        Reply::Error(s) => out.error(s),
        Reply::Int(n) => out.int(*n),
        Reply::Bulk(b) => out.bulk(b),
        Reply::Null => out.null(),
        Reply::NullArray => out.null_array(),
        Reply::Verbatim(b) => out.verbatim(b),
        Reply::Array(items) => {
            out.array(items.len());
            items.iter().for_each(|i| write(i, out));
        }
        Reply::Map(pairs) => {
            out.map(pairs.len());
            for (k, v) in pairs {
                write(k, out);
                write(v, out);
            }
        }
        Reply::Set(items) => {
            out.set(items.len());
            items.iter().for_each(|i| write(i, out));
        }
    }
}

/// What a client of protocol `v` must read for `r`.
fn expected(r: &Reply, v: RespVersion) -> Value {
    let resp3 = v == RespVersion::Resp3;
    let all = |items: &[Reply]| items.iter().map(|i| expected(i, v)).collect::<Vec<_>>();
    match r {
        Reply::Ok => Value::Simple(b"OK".to_vec()),
        Reply::Simple(s) => Value::Simple(s.clone().into_bytes()),
        Reply::Error(s) => Value::Error(s.replace(['\r', '\n'], " ").into_bytes()),
        Reply::Int(n) => Value::Int(*n),
        Reply::Bulk(b) => Value::Bulk(b.clone()),
        Reply::Null if resp3 => Value::Null,
        Reply::Null => Value::NullBulk,
        Reply::NullArray if resp3 => Value::Null,
        Reply::NullArray => Value::NullArray,
        Reply::Verbatim(b) if resp3 => Value::Verbatim(b"txt".to_vec(), b.clone()),
        Reply::Verbatim(b) => Value::Bulk(b.clone()),
        Reply::Array(items) => Value::Array(all(items)),
        Reply::Set(items) if resp3 => Value::Set(all(items)),
        Reply::Set(items) => Value::Array(all(items)),
        Reply::Map(pairs) if resp3 => Value::Map(
            pairs
                .iter()
                .map(|(k, x)| (expected(k, v), expected(x, v)))
                .collect(),
        ),
        Reply::Map(pairs) => Value::Array(
            pairs
                .iter()
                .flat_map(|(k, x)| [expected(k, v), expected(x, v)])
                .collect(),
        ),
    }
}

fn version() -> impl Strategy<Value = RespVersion> {
    prop_oneof![Just(RespVersion::Resp2), Just(RespVersion::Resp3)]
}

#[derive(Debug, Clone)]
enum Item {
    Bulk(Vec<u8>),
    Null,
    Int(i64),
}

fn push_item() -> impl Strategy<Value = Item> {
    prop_oneof![
        arg().prop_map(Item::Bulk),
        Just(Item::Null),
        any::<i64>().prop_map(Item::Int),
    ]
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn multibulk_requests_decode_to_the_same_arguments(req in request()) {
        let mut d = Decoder::default();
        let mut buf = BytesMut::from(&multibulk(&req)[..]);
        let got = d.decode(&mut buf, false).expect("valid request");
        prop_assert_eq!(got.map(|r| as_vecs(&[r])), Some(vec![req]));
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn inline_commands_split_on_blanks(
        words in prop::collection::vec(inline_word(), 1..6),
        sep in prop::sample::select(vec![" ", "  ", "\t", " \t"]),
        end in prop::sample::select(vec!["\r\n", "\n"]),
    ) {
        let mut line = sep.as_bytes().to_vec();
        line.extend(words.join(sep.as_bytes()));
        line.extend_from_slice(sep.as_bytes());
        line.extend_from_slice(end.as_bytes());
        let (got, err) = decode_reads(&[&line]);
        prop_assert_eq!(err, None);
        prop_assert_eq!(as_vecs(&got), vec![words]);
    }

    #[test]
    fn any_split_of_a_pipeline_gives_the_same_commands(
        cmds in prop::collection::vec(pipelined(), 1..8),
        bad in prop::option::of(malformed()),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
    ) {
        let mut stream: Vec<u8> = cmds.iter().flat_map(|(b, _)| b.clone()).collect();
        let want: Vec<Vec<Vec<u8>>> = cmds.iter().map(|(_, a)| a.clone()).collect();
        let want_err = bad.as_ref().map(|(_, e)| e.clone());
        if let Some((b, _)) = &bad {
            stream.extend_from_slice(b);
        }
        let (got, err) = decode_reads(&cut(&stream, &cuts));
        prop_assert_eq!(as_vecs(&got), want);
        prop_assert_eq!(err, want_err);
    }

    #[test]
    fn replies_are_well_formed_in_both_protocols(
        replies in prop::collection::vec(reply(), 1..6),
        v in version(),
    ) {
        let mut out = ReplyBuf::new(v);
        replies.iter().for_each(|r| write(r, &mut out));
        let bytes = out.take();
        let parsed = parse_all(&bytes, v);
        let want: Vec<Value> = replies.iter().map(|r| expected(r, v)).collect();
        prop_assert_eq!(parsed, Ok(want));
    }

    #[test]
    fn push_frames_are_well_formed_in_both_protocols(
        items in prop::collection::vec(push_item(), 0..5),
        channel in arg(),
        payload in arg(),
        v in version(),
    ) {
        let pushed: Vec<PushItem> = items
            .iter()
            .map(|i| match i {
                Item::Bulk(b) => PushItem::Bulk(b),
                Item::Null => PushItem::Null,
                Item::Int(n) => PushItem::Int(*n),
            })
            .collect();
        let resp3 = v == RespVersion::Resp3;
        let frame = |elems: Vec<Value>| if resp3 { Value::Push(elems) } else { Value::Array(elems) };
        let want = frame(
            items
                .iter()
                .map(|i| match i {
                    Item::Bulk(b) => Value::Bulk(b.clone()),
                    Item::Null if resp3 => Value::Null,
                    Item::Null => Value::NullBulk,
                    Item::Int(n) => Value::Int(*n),
                })
                .collect(),
        );
        prop_assert_eq!(parse_all(&encode::push(v, &pushed), v), Ok(vec![want]));
        let bulk = |b: &[u8]| Value::Bulk(b.to_vec());
        prop_assert_eq!(
            parse_all(&encode::message(v, b"message", &channel, &payload), v),
            Ok(vec![frame(vec![bulk(b"message"), bulk(&channel), bulk(&payload)])])
        );
        prop_assert_eq!(
            parse_all(&encode::pmessage(v, &payload, &channel, &payload), v),
            Ok(vec![frame(vec![bulk(b"pmessage"), bulk(&payload), bulk(&channel), bulk(&payload)])])
        );
        let null = if resp3 { Value::Null } else { Value::NullBulk };
        prop_assert_eq!(
            parse_all(&encode::confirmation(v, b"unsubscribe", None, 3), v),
            Ok(vec![frame(vec![bulk(b"unsubscribe"), null, Value::Int(3)])])
        );
    }
}
