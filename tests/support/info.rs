//! Text replies read as fields: a bulk or verbatim reply's text, INFO's `field:value` lines
//! (the one INFO parser), CLIENT LIST's `key=value` words, CLUSTER NODES' members, and the
//! checks built on them.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::resp::{parse, show, Frame};
use super::server::Raw;

/// The text of a bulk (`$`) or verbatim (`=…txt:`) reply.
pub fn bulk_text(frame: &[u8]) -> String {
    match parse(frame) {
        Some((Frame::Blob(b'$', Some(s)), _)) => String::from_utf8_lossy(&s).into_owned(),
        Some((f @ Frame::Blob(b'=', Some(_)), _)) => {
            String::from_utf8_lossy(f.text().unwrap()).into_owned()
        }
        _ => panic!("not a bulk reply: {}", show(frame)),
    }
}

/// Sends a command and returns its bulk reply's text.
pub async fn text(c: &mut Raw, args: &[&str]) -> String {
    c.cmd(args).await;
    bulk_text(&c.frame().await)
}

/// INFO's `field:value` lines as a map.
pub fn info_map(info: &str) -> BTreeMap<String, String> {
    info.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// One INFO field, read now.
pub async fn info_field(c: &mut Raw, section: &str, field: &str) -> String {
    let info = info_map(&text(c, &["INFO", section]).await);
    info.get(field)
        .cloned()
        .unwrap_or_else(|| panic!("INFO {section} has no {field}: {info:?}"))
}

/// INFO (all default sections) as a map.
pub async fn info(c: &mut Raw) -> BTreeMap<String, String> {
    info_map(&text(c, &["INFO"]).await)
}

/// One numeric INFO field.
pub async fn info_u64(c: &mut Raw, field: &str) -> u64 {
    let i = info(c).await;
    i.get(field)
        .unwrap_or_else(|| panic!("INFO has no {field}"))
        .parse()
        .unwrap()
}

/// A CLIENT LIST line's `key=value` pairs, in order.
pub fn client_fields(line: &str) -> Vec<(String, String)> {
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn field<'a>(fields: &'a [(String, String)], key: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {key} in {fields:?}"))
}

/// CLUSTER NODES as `(port, first slot, last slot)` per member, in slot order.
pub async fn cluster_nodes(c: &mut Raw) -> Vec<(u16, u16, u16)> {
    let mut out: Vec<(u16, u16, u16)> = text(c, &["CLUSTER", "NODES"])
        .await
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            // id ip:port@cport flags master ping-sent pong-recv epoch link-state slots
            let f: Vec<&str> = l.split(' ').collect();
            let port = f[1].split(['@', ':']).nth(1).unwrap().parse().unwrap();
            let (a, b) = f[8].split_once('-').unwrap();
            (port, a.parse().unwrap(), b.parse().unwrap())
        })
        .collect();
    out.sort_by_key(|n| n.1);
    out
}

/// Polls INFO until `connected_clients` is `n`.
pub async fn wait_connected(c: &mut Raw, n: u64) {
    let mut last = 0;
    let limit = Duration::from_secs(30);
    let start = Instant::now();
    loop {
        let now = info_u64(c, "connected_clients").await;
        if now == n {
            return;
        }
        if now != last {
            last = now;
        }
        assert!(
            start.elapsed() < limit,
            "connected_clients stayed {last}, expected {n}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asserts PUBSUB shows no channel, shard channel or pattern left.
pub async fn assert_no_subscriptions(c: &mut Raw) {
    c.roundtrip(&["PUBSUB", "CHANNELS"], b"*0\r\n").await;
    c.roundtrip(&["PUBSUB", "SHARDCHANNELS"], b"*0\r\n").await;
    c.roundtrip(&["PUBSUB", "NUMPAT"], b":0\r\n").await;
}
