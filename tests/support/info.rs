//! Helpers for the operations tests (CONFIG, INFO, CLIENT, MONITOR, metrics, signals): reading
//! bulk replies as text, INFO and CLIENT LIST fields, free ports, the built binary.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::Raw;

/// The text of a bulk (`$`) or verbatim (`=…txt:`) reply.
pub fn bulk_text(frame: &[u8]) -> String {
    let s = String::from_utf8_lossy(frame).into_owned();
    let body = s.split_once("\r\n").map(|(_, b)| b).unwrap_or("");
    let body = body.strip_suffix("\r\n").unwrap_or(body);
    body.strip_prefix("txt:").unwrap_or(body).to_string()
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

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running pubsubd binary, killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn spawn(args: &[&str]) -> Proc {
    Proc(
        Command::new(env!("CARGO_BIN_EXE_pubsubd"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn pubsubd"),
    )
}

pub async fn wait_for_port(port: u16) {
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("nothing listens on {port}");
}

/// Waits for the process to exit (at most 10 s) and returns its status and standard error.
pub async fn wait_exit(mut p: Proc) -> (std::process::ExitStatus, String) {
    tokio::task::spawn_blocking(move || {
        for _ in 0..1000 {
            if let Some(status) = p.0.try_wait().unwrap() {
                let mut err = String::new();
                if let Some(mut e) = p.0.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                return (status, err);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("pubsubd did not exit");
    })
    .await
    .unwrap()
}

pub fn signal(p: &Proc, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &p.0.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig}");
}

/// A fresh directory under the system temp dir for one test.
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("pubsubd-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
