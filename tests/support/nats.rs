//! nats-server and pubsubd processes for the backbone tests, on free loopback ports and
//! stopped by PID; nats-server's monitoring endpoint (/subsz, /connz) as an independent
//! witness of interest and traffic; the subjects pubsubd maps channels to.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use pubsubd::backbone::subject::{nats_match, Subjects};
use pubsubd::registry::Namespace;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::info::{bulk_text, info_map};
use super::process::{free_port, port_open, temp_dir};
use super::server::Raw;

/// How long a condition is polled before a test fails.
pub const WAIT: Duration = Duration::from_secs(15);

/// The `nats-server` binary: `$NATS_SERVER`, else the one on PATH (Debian installs it in
/// /usr/sbin, which a plain user's PATH may lack).
fn nats_bin() -> String {
    if let Ok(b) = std::env::var("NATS_SERVER") {
        return b;
    }
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/sbin", "/usr/bin"])
    {
        let p = std::path::Path::new(dir).join("nats-server");
        if p.exists() {
            return p.display().to_string();
        }
    }
    panic!("nats-server not found: scripts/test.sh installs it (apt-get install nats-server)");
}

/// Polls `f` every 20 ms until it holds, or fails the test after `WAIT`.
pub async fn wait_until<F, Fut>(what: &str, f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    super::process::wait_until(what, WAIT, f).await;
}

/// One nats-server process.
pub struct Nats {
    child: Option<Child>,
    pub port: u16,
    pub monitor: u16,
    pub cluster_port: u16,
    args: Vec<String>,
    pub log: PathBuf,
    /// The account whose subscriptions `interest` counts (operator mode); the global one if
    /// `None`.
    pub account: Option<String>,
}

impl Nats {
    /// A standalone server with `extra` arguments (e.g. `--user u --pass p`, `-c file`).
    pub async fn start(extra: &[String]) -> Nats {
        Self::spawn(extra.to_vec(), 0).await
    }

    /// `n` servers in one cluster (routes on loopback), each knowing every other one.
    pub async fn cluster(n: usize) -> Vec<Nats> {
        let cports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let routes = cports
            .iter()
            .map(|p| format!("nats-route://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut out = Vec::new();
        for (i, &cp) in cports.iter().enumerate() {
            let args = vec![
                "--name".into(),
                format!("n{}", i + 1),
                "--cluster_name".into(),
                "pubsubd-test".into(),
                "--cluster".into(),
                format!("nats://127.0.0.1:{cp}"),
                "--routes".into(),
                routes.clone(),
            ];
            out.push(Self::spawn(args, cp).await);
        }
        for s in &out {
            wait_until("every route is up", || async {
                s.get("/routez").await["num_routes"].as_u64() == Some(n as u64 - 1)
            })
            .await;
        }
        out
    }

    async fn spawn(mut extra: Vec<String>, cluster_port: u16) -> Nats {
        let port = free_port();
        let monitor = free_port();
        let log = temp_dir("nats").join("nats.log");
        let mut args = vec![
            "-a".to_string(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
            "-m".into(),
            monitor.to_string(),
            "-l".into(),
            log.display().to_string(),
        ];
        args.append(&mut extra);
        let mut n = Nats {
            child: None,
            port,
            monitor,
            cluster_port,
            args,
            log,
            account: None,
        };
        n.restart().await;
        n
    }

    /// Starts the server again with the same ports and arguments.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none());
        let child = Command::new(nats_bin())
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        let (p, m) = (self.port, self.monitor);
        wait_until("nats-server listens", || async move {
            port_open(p).await && port_open(m).await
        })
        .await;
    }

    /// SIGKILL by PID, and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// A monitoring endpoint's JSON.
    pub async fn get(&self, path: &str) -> serde_json::Value {
        let body = http_get(self.monitor, path).await;
        serde_json::from_str(&body).unwrap_or(serde_json::Value::Null)
    }

    /// Subscriptions this server knows that match `subject`: its own clients' (`/subsz?test=`)
    /// and those learnt from other servers over routes (`/routez?subs=1`).
    pub async fn interest(&self, subject: &str) -> u64 {
        let v = self
            .get(&format!(
                "/subsz?subs=1&test={}{}",
                url_escape(subject),
                self.account
                    .as_ref()
                    .map(|a| format!("&acc={a}"))
                    .unwrap_or_default()
            ))
            .await;
        let local = v["total"].as_u64().unwrap_or(0);
        let r = self.get("/routez?subs=1").await;
        let routed = r["routes"]
            .as_array()
            .map(|routes| {
                routes
                    .iter()
                    .flat_map(|r| {
                        r["subscriptions_list"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default()
                    })
                    .filter(|s| s.as_str().is_some_and(|s| nats_match(s, subject)))
                    .count() as u64
            })
            .unwrap_or(0);
        local + routed
    }

    /// Messages this server sent to the client connection whose name contains `name`
    /// (pubsubd names its connection after its node id): `/connz`'s `out_msgs`.
    pub async fn out_msgs(&self, name: &str) -> Option<u64> {
        let v = self.get("/connz?limit=1024").await;
        v["connections"]
            .as_array()?
            .iter()
            .find(|c| c["name"].as_str().is_some_and(|n| n.contains(name)))
            .and_then(|c| c["out_msgs"].as_u64())
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}

fn url_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn http_get(port: u16, path: &str) -> String {
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
            .await
            .ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.ok()?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        Some(text.split_once("\r\n\r\n")?.1.to_string())
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// The subject pubsubd publishes `channel` on, with the default prefix.
pub fn subject(ns: Namespace, channel: &[u8]) -> String {
    Subjects::new("pubsubd").channel(ns, channel).subject
}

/// One pubsubd process.
pub struct Node {
    child: Option<Child>,
    pub port: u16,
    args: Vec<String>,
    pub log: PathBuf,
}

impl Node {
    /// A node attached to `backbone` (the directive's value) with `extra` directives; waits
    /// until it listens, not until the backbone is connected.
    pub async fn start(backbone: &str, extra: &[&str]) -> Node {
        let port = free_port();
        let log = temp_dir("node").join("pubsubd.log");
        let mut args: Vec<String> = vec![
            "--port".into(),
            port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--logfile".into(),
            log.display().to_string(),
        ];
        if !backbone.is_empty() {
            args.push("--backbone".into());
            args.push(backbone.into());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut n = Node {
            child: None,
            port,
            args,
            log,
        };
        n.restart().await;
        n
    }

    /// A node that is connected to the backbone.
    pub async fn connected(backbone: &str, extra: &[&str]) -> Node {
        let n = Self::start(backbone, extra).await;
        n.wait_status("connected").await;
        n
    }

    /// Starts the process again with the same port and arguments.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none());
        let child = Command::new(env!("CARGO_BIN_EXE_pubsubd"))
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pubsubd");
        self.child = Some(child);
        let p = self.port;
        wait_until("pubsubd listens", || async move { port_open(p).await }).await;
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGTERM, as a service manager stops it, and waits for it to exit.
    pub fn terminate(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: signalling a child process this test started and has not yet reaped.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            let _ = c.wait();
        }
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    pub async fn client(&self) -> Raw {
        Raw::connect(self.addr()).await
    }

    /// INFO backbone as a map (`backbone_status` → `connected` …).
    pub async fn info(&self) -> BTreeMap<String, String> {
        let mut c = self.client().await;
        c.cmd(&["INFO", "backbone"]).await;
        info_map(&bulk_text(&c.frame().await))
    }

    pub async fn field(&self, name: &str) -> String {
        self.info().await.get(name).cloned().unwrap_or_default()
    }

    pub async fn counter(&self, name: &str) -> u64 {
        self.field(name).await.parse().unwrap_or(0)
    }

    pub async fn wait_status(&self, status: &str) {
        wait_until(&format!("node {} is {status}", self.port), || async {
            self.field("backbone_status").await == status
        })
        .await;
    }

    /// This node's id on the backbone, which names its NATS connection.
    pub async fn node_id(&self) -> String {
        self.field("backbone_node_id").await
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until `nats` (the server publishers use) sees at least `n` subscriptions matching
/// the subject of `channel`: a message published after this reaches them.
pub async fn wait_interest(nats: &Nats, ns: Namespace, channel: &[u8], n: u64) {
    let s = subject(ns, channel);
    wait_until(
        &format!("{n} subscriptions for {s:.80} on NATS"),
        || async { nats.interest(&s).await >= n },
    )
    .await;
}

/// RESP2 `message` frame.
pub fn message(kind: &[u8], channel: &[u8], payload: &[u8]) -> Vec<u8> {
    super::resp::encode(&[kind, channel, payload])
}

/// RESP2 `pmessage` frame.
pub fn pmessage(pattern: &[u8], channel: &[u8], payload: &[u8]) -> Vec<u8> {
    super::resp::encode(&[b"pmessage", pattern, channel, payload])
}
