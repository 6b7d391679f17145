//! The backbone: pubsubd nodes scaled out over NATS.
//!
//! ```text
//!  clients ──RESP──▶ pubsubd A ──┐                 ┌──▶ pubsubd B ──RESP──▶ clients
//!                                ├──▶ NATS cluster ─┤
//!  clients ──RESP──▶ pubsubd C ──┘  (interest-routed) └──▶ …
//! ```
//!
//! The backbone is one more subscriber and publisher of the registry, not a branch in each
//! command. The registry reports (through `registry::Hook`, implemented by `Backbone`):
//! a channel's first local subscriber and its last one leaving (per namespace), likewise for
//! patterns, and every local PUBLISH/SPUBLISH. Each report is an enqueue onto the backbone task
//! (interest changes on an unbounded queue, as many as subscription changes; messages on a
//! queue bounded in bytes by `backbone-queue-limit`), made inside the registry's stripe, so the
//! task sees transitions and messages in the registry's order. A publisher never blocks or
//! awaits: when the queue is full, or NATS is not connected, the message is not forwarded,
//! counted (`backbone_dropped_out`), and logged once per episode.
//!
//! The task (`task.rs`) owns the NATS client (`async-nats`): it holds one NATS subscription per
//! locally subscribed channel and per pattern interest subject (reference-counted, see
//! `subject.rs` for what each pattern shape costs), publishes local messages
//! (`envelope.rs`: origin node, sequence number, chunks), and delivers what it receives through
//! `Registry::deliver` — the same fan-out under the same stripe as a local PUBLISH, so every
//! local subscriber of a channel sees one order. A message that matched two of this node's NATS
//! subscriptions (a channel and a pattern) is delivered once (`inbound::Dedup`); a node never
//! receives its own messages (`no_echo`).
//!
//! ## Guarantees
//! - PUBLISH/SPUBLISH reply with this node's receiver count; PUBSUB reports this node (as in
//!   Redis Cluster).
//! - Every message of one origin node on one channel reaches every other node in the origin's
//!   order (one NATS connection per node, one NATS subscription per channel interest, and
//!   first-copy-wins dedup). Messages of one origin on different channels that reach a node
//!   through different NATS subscriptions may interleave differently there.
//! - At most once: messages published while NATS is unreachable, or beyond the queue limit,
//!   are not forwarded (counted). NATS's own slow-consumer drops are counted in
//!   `backbone_dropped_in`.
//! - Interest propagation is asynchronous: a SUBSCRIBE is confirmed to the client when it is
//!   in effect locally; other nodes' messages reach it once the NATS subscription has made the
//!   round trip to NATS (and across NATS routes), typically well under a millisecond on one
//!   host. Waiting for NATS's flush before confirming would put a network round trip inside
//!   every SUBSCRIBE; it is not done.
//!
//! ## Memory bounds
//! Outgoing: `backbone-queue-limit` bytes (default 64 MiB) plus the NATS client's command
//! queue (`CLIENT_CAPACITY` messages) and its write buffer. Incoming: `backbone-queue-limit`
//! bytes between the subscriptions' forwarders and the task (beyond it messages are dropped,
//! counted in `backbone_dropped_in`, logged once per episode), `backbone-reassembly-limit`
//! bytes (default 64 MiB) of partly received large messages, and what the NATS client holds
//! per subscription (`SUBSCRIPTION_CAPACITY` messages, drained at once by each subscription's
//! forwarder). Each NATS message is at most the server's `max_payload` (1 MiB by default).
//!
//! ## Control messages
//! `publish_control` / `subscribe_control` carry other subsystems' messages (cluster
//! membership) on `<prefix>.c.<name>`; see their docs.
//!
//! ## Start-up
//! `preflight` makes one connection attempt before the server starts listening: with
//! `backbone-required yes` a failure stops start-up (exit 1, the reason logged); by default the
//! reason is logged and the node starts standalone while the task keeps retrying, as a Redis
//! user expects a node to come up and serve its local clients.

pub mod envelope;
pub mod inbound;
pub mod subject;
mod task;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::config::file::redact_url;
use crate::config::BackboneConfig;
use crate::protocol::Namespace;
use subject::Subjects;

pub use task::run;

/// Messages each NATS subscription may hold in the client before NATS-side drops (async-nats's
/// default, 65,536). Its forwarder drains it without waiting, so it only fills when the
/// forwarders get no CPU; a smaller one (8,192) dropped messages under the cross-node fan-out
/// benchmark on two busy cores.
pub const SUBSCRIPTION_CAPACITY: usize = 65_536;
/// Commands (publishes, subscriptions) queued in the NATS client; with the outgoing queue this
/// bounds what waits to go out (each publish is at most the server's `max_payload`).
pub const CLIENT_CAPACITY: usize = 256;
/// Control messages queued to one control subscriber before they are dropped.
pub const CONTROL_CAPACITY: usize = 1024;
/// Bytes counted per queued message on top of its channel and payload.
const QUEUED_OVERHEAD: usize = 64;
/// Time without drops that ends an episode of dropped messages (one log line at each end).
const EPISODE_QUIET: Duration = Duration::from_secs(2);
/// NATS ping interval: how fast a silent, half-open server is noticed (a killed one is
/// noticed at once, by the closed socket).
const PING_INTERVAL: Duration = Duration::from_secs(5);

/// Where the NATS connection stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Status {
    /// Not connected yet since start.
    Connecting = 0,
    Connected = 1,
    /// Was connected, lost it, retrying.
    Disconnected = 2,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Connecting => "connecting",
            Status::Connected => "connected",
            Status::Disconnected => "disconnected",
        }
    }
}

/// The backbone's counters (INFO `# Backbone`, `pubsubd_backbone_*` in /metrics).
#[derive(Debug, Default)]
pub struct Counters {
    pub connects: AtomicU64,
    pub disconnects: AtomicU64,
    pub messages_out: AtomicU64,
    pub bytes_out: AtomicU64,
    pub messages_in: AtomicU64,
    pub bytes_in: AtomicU64,
    /// Local messages not forwarded: queue full or NATS not connected.
    pub dropped_out: AtomicU64,
    /// Received messages not delivered: older than the dedup window, partial messages evicted,
    /// NATS client slow-consumer drops, control subscribers not keeping up.
    pub dropped_in: AtomicU64,
    /// Second copies suppressed (a message that matched two NATS subscriptions of this node).
    pub duplicates: AtomicU64,
    /// Received messages that are not pubsubd backbone messages.
    pub malformed_in: AtomicU64,
    /// NATS subscriptions held.
    pub subjects: AtomicU64,
    /// Of which broad pattern subscriptions (`<prefix>.g.>`).
    pub broad_subjects: AtomicU64,
    pub partial_bytes: AtomicU64,
}

/// One value of `Backbone::fields`.
pub enum Field {
    Text(String),
    Counter(u64),
    Gauge(u64),
}

/// Where messages from other nodes are delivered: the registry's local fan-out
/// (`Registry::deliver`), as the server assembles it. Outboxes that were given messages are
/// appended to `wakes`; the task flushes them (`Outbox::flush`) after each batch.
pub trait Sink: Send + Sync + 'static {
    fn deliver(
        &self,
        ns: Namespace,
        channel: &[u8],
        payload: &[u8],
        wakes: &mut Vec<crate::outbox::Outbox>,
    );
}

/// Why a control message was not queued.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error("the backbone is not connected")]
    NotConnected,
    #[error("the backbone's outgoing queue is full")]
    QueueFull,
    #[error("invalid control name")]
    BadName,
}

/// A control message from another node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlMessage {
    /// The name it was published under (the part of the subject after `<prefix>.c.`).
    pub name: String,
    /// The sending node's id (`Backbone::node_id` there).
    pub origin: u64,
    pub payload: Bytes,
}

/// Requests from the registry and other subsystems to the task, in order.
enum Command {
    Channel {
        ns: Namespace,
        channel: Bytes,
        subscribed: bool,
        /// Non-zero for new interest: confirmed through `interest_confirmed` once NATS has it.
        ticket: u64,
    },
    Pattern {
        pattern: Bytes,
        subscribed: bool,
        ticket: u64,
    },
    Control {
        name: String,
        tx: mpsc::Sender<ControlMessage>,
    },
}

/// Messages to publish.
enum Outgoing {
    Message {
        ns: Namespace,
        /// Channel then payload, one allocation.
        data: Bytes,
        channel_len: usize,
    },
    Control {
        name: String,
        payload: Bytes,
    },
}

impl Outgoing {
    fn queued_size(&self) -> usize {
        QUEUED_OVERHEAD
            + match self {
                Outgoing::Message { data, .. } => data.len(),
                Outgoing::Control { payload, name } => payload.len() + name.len(),
            }
    }
}

/// The task's ends of the queues, taken once by `run`.
struct Receivers {
    commands: mpsc::UnboundedReceiver<Command>,
    outgoing: mpsc::UnboundedReceiver<Outgoing>,
}

/// How long a SUBSCRIBE that adds interest waits for NATS to confirm it before it is replied
/// to anyway (a NATS server that slow is logged by the client's events).
pub const INTEREST_WAIT: Duration = Duration::from_secs(1);

thread_local! {
    /// The last interest ticket handed out on this thread (`Backbone::take_interest_ticket`).
    static LAST_TICKET: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The backbone as the rest of the server sees it: the registry hook, the control API and the
/// counters. Built by `ServerState::new` when `backbone` is set; `run` drives it.
pub struct Backbone {
    config: BackboneConfig,
    subjects: Subjects,
    node_id: u64,
    commands: mpsc::UnboundedSender<Command>,
    outgoing: mpsc::UnboundedSender<Outgoing>,
    /// Bytes queued in `outgoing` (by `Outgoing::queued_size`).
    pending_out: AtomicUsize,
    status: AtomicU8,
    /// Tickets of new interest: the last one handed out, and the last one NATS has confirmed
    /// (its SUB processed: a PING after it answered), so a SUBSCRIBE is replied to once other
    /// nodes' messages reach it (`interest_settled`).
    interest_requested: AtomicU64,
    interest_confirmed: tokio::sync::watch::Sender<u64>,
    /// Counts the connections made to NATS (first and reconnections), for whoever must act on
    /// each one (`connections`).
    connections: tokio::sync::watch::Sender<u64>,
    /// In an episode of dropped outgoing messages (logged at its start and end).
    dropping: AtomicBool,
    /// When the last outgoing message was dropped (milliseconds since `epoch`): an episode
    /// ends after `EPISODE_QUIET` without drops.
    last_drop_ms: AtomicU64,
    epoch: std::time::Instant,
    /// The server connected to (`host:port`), or the last one.
    server: Mutex<String>,
    receivers: Mutex<Option<Receivers>>,
    /// First-copy-wins windows, shared by the subscriptions' forwarders.
    dedup: Mutex<inbound::Dedup>,
    /// Wildcard (`>`) NATS subscriptions held: without one, no message can match two of this
    /// node's subscriptions, and the dedup window is skipped.
    wildcards: AtomicUsize,
    /// Bytes received and waiting for the task (bounded by `backbone-queue-limit`).
    pending_in: AtomicUsize,
    /// In an episode of dropped incoming messages.
    dropping_in: AtomicBool,
    pub counters: Counters,
}

impl std::fmt::Debug for Backbone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backbone")
            .field("prefix", &self.config.prefix)
            .field("node_id", &format_args!("{:016x}", self.node_id))
            .field("status", &self.status())
            .finish()
    }
}

impl Backbone {
    pub fn new(config: &BackboneConfig) -> Self {
        let (ctx, crx) = mpsc::unbounded_channel();
        let (otx, orx) = mpsc::unbounded_channel();
        let mut id = [0u8; 8];
        if getrandom::fill(&mut id).is_err() {
            id = (std::process::id() as u64 ^ 0x5bd1_e995_1234_5678).to_be_bytes();
        }
        Backbone {
            subjects: Subjects::new(&config.prefix),
            config: config.clone(),
            node_id: u64::from_be_bytes(id).max(1),
            commands: ctx,
            outgoing: otx,
            pending_out: AtomicUsize::new(0),
            status: AtomicU8::new(Status::Connecting as u8),
            connections: tokio::sync::watch::Sender::new(0),
            interest_requested: AtomicU64::new(0),
            interest_confirmed: tokio::sync::watch::Sender::new(0),
            dropping: AtomicBool::new(false),
            last_drop_ms: AtomicU64::new(0),
            epoch: std::time::Instant::now(),
            server: Mutex::new(String::new()),
            receivers: Mutex::new(Some(Receivers {
                commands: crx,
                outgoing: orx,
            })),
            dedup: Mutex::new(inbound::Dedup::default()),
            wildcards: AtomicUsize::new(0),
            pending_in: AtomicUsize::new(0),
            dropping_in: AtomicBool::new(false),
            counters: Counters::default(),
        }
    }

    /// This node's id on the backbone (random per start; `ControlMessage::origin` elsewhere).
    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    pub fn status(&self) -> Status {
        match self.status.load(Ordering::Relaxed) {
            1 => Status::Connected,
            2 => Status::Disconnected,
            _ => Status::Connecting,
        }
    }

    fn set_status(&self, s: Status) {
        self.status.store(s as u8, Ordering::Relaxed);
        if s == Status::Connected {
            self.connections.send_modify(|n| *n += 1);
        }
    }

    /// Changes each time the backbone connects to NATS, the first time included: what was
    /// published while it was down was dropped, and a subsystem that must be heard (cluster
    /// membership) speaks again then.
    pub fn connections(&self) -> tokio::sync::watch::Receiver<u64> {
        self.connections.subscribe()
    }

    pub fn subjects(&self) -> &Subjects {
        &self.subjects
    }

    /// Reserves `size` bytes of the outgoing queue, unless NATS is down or the queue is full:
    /// then the message is counted as dropped (and the episode logged once).
    fn admit(&self, size: usize) -> Result<(), ControlError> {
        let why = if self.status() != Status::Connected {
            ControlError::NotConnected
        } else if self.pending_out.fetch_add(size, Ordering::Relaxed) + size
            > self.config.queue_limit as usize
        {
            self.pending_out.fetch_sub(size, Ordering::Relaxed);
            ControlError::QueueFull
        } else {
            return Ok(());
        };
        self.counters.dropped_out.fetch_add(1, Ordering::Relaxed);
        self.last_drop_ms
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
        if !self.dropping.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "Backbone: not forwarding local messages to other nodes ({why}); they are counted in INFO backbone_dropped_out until this clears"
            );
        }
        Err(why)
    }

    /// Queues `o` for the task, space reserved by `admit`.
    fn send(&self, o: Outgoing) {
        if let Err(e) = self.outgoing.send(o) {
            self.pending_out
                .fetch_sub(e.0.queued_size(), Ordering::Relaxed);
        }
    }

    /// Called by the task as it takes `size` bytes off the queue.
    fn dequeued(&self, size: usize) {
        self.pending_out.fetch_sub(size, Ordering::Relaxed);
    }

    /// Ends an episode of dropped outgoing messages (one log line) once NATS is connected, the
    /// queue is below half its limit and nothing was dropped for `EPISODE_QUIET`. Called by the
    /// task now and then.
    fn end_drop_episode(&self) {
        let quiet = self.epoch.elapsed().as_millis() as u64
            >= self.last_drop_ms.load(Ordering::Relaxed) + EPISODE_QUIET.as_millis() as u64;
        if quiet
            && self.dropping.load(Ordering::Relaxed)
            && self.pending_out.load(Ordering::Relaxed) < self.config.queue_limit as usize / 2
            && self.status() == Status::Connected
            && self.dropping.swap(false, Ordering::Relaxed)
        {
            tracing::warn!(
                "Backbone: forwarding local messages again ({} dropped so far)",
                self.counters.dropped_out.load(Ordering::Relaxed)
            );
        }
    }

    /// Publishes `payload` to every other node's subscribers of control subject `name`
    /// (`<prefix>.c.<name>`; `name` is one or more `.`-separated tokens of letters, digits,
    /// `-` and `_`). Never blocks; fire-and-forget like every backbone message: `Err` when NATS
    /// is not connected or the outgoing queue is full (counted in `backbone_dropped_out`). The
    /// payload must fit the server's `max_payload` (1 MiB by default) less 64 bytes, or it is
    /// dropped by the task. Messages from one node arrive in the order it published them.
    pub fn publish_control(&self, name: &str, payload: Bytes) -> Result<(), ControlError> {
        if !subject::valid_prefix(name) {
            return Err(ControlError::BadName);
        }
        let o = Outgoing::Control {
            name: name.to_string(),
            payload,
        };
        self.admit(o.queued_size())?;
        self.send(o);
        Ok(())
    }

    /// Subscribes to control subject `name` (tokens as for `publish_control`; the last token may
    /// be `*` or `>`, NATS's wildcards) and returns the stream of messages other nodes publish
    /// there (never this node's own: the connection is `no_echo`). The subscription is made by
    /// the task, survives reconnects, and ends when the receiver is dropped. At most
    /// `CONTROL_CAPACITY` messages wait in the receiver; beyond that they are dropped and
    /// counted in `backbone_dropped_in`.
    pub fn subscribe_control(
        &self,
        name: &str,
    ) -> Result<mpsc::Receiver<ControlMessage>, ControlError> {
        let ok = !name.is_empty()
            && name.split('.').enumerate().all(|(i, t)| {
                let last = i == name.split('.').count() - 1;
                subject::valid_prefix(t) || t == "*" || (last && t == ">")
            });
        if !ok {
            return Err(ControlError::BadName);
        }
        let (tx, rx) = mpsc::channel(CONTROL_CAPACITY);
        let _ = self.commands.send(Command::Control {
            name: name.to_string(),
            tx,
        });
        Ok(rx)
    }

    /// The backbone's state and counters, by name: INFO prints `backbone_<name>:<value>`, the
    /// metrics endpoint `pubsubd_backbone_<name>[_total]`. The one table both read.
    pub fn fields(&self) -> Vec<(&'static str, Field)> {
        let c = &self.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let connects = g(&c.connects);
        vec![
            ("status", Field::Text(self.status().name().to_string())),
            ("server", Field::Text(self.server.lock().clone())),
            ("node_id", Field::Text(format!("{:016x}", self.node_id))),
            ("prefix", Field::Text(self.config.prefix.clone())),
            (
                "connected",
                Field::Gauge((self.status() == Status::Connected) as u64),
            ),
            ("connects", Field::Counter(connects)),
            ("reconnects", Field::Counter(connects.saturating_sub(1))),
            ("disconnects", Field::Counter(g(&c.disconnects))),
            ("messages_out", Field::Counter(g(&c.messages_out))),
            ("bytes_out", Field::Counter(g(&c.bytes_out))),
            ("messages_in", Field::Counter(g(&c.messages_in))),
            ("bytes_in", Field::Counter(g(&c.bytes_in))),
            ("dropped_out", Field::Counter(g(&c.dropped_out))),
            ("dropped_in", Field::Counter(g(&c.dropped_in))),
            ("duplicates", Field::Counter(g(&c.duplicates))),
            ("malformed_in", Field::Counter(g(&c.malformed_in))),
            ("subjects", Field::Gauge(g(&c.subjects))),
            ("broad_subjects", Field::Gauge(g(&c.broad_subjects))),
            (
                "queued_out_bytes",
                Field::Gauge(self.pending_out.load(Ordering::Relaxed) as u64),
            ),
            ("partial_bytes", Field::Gauge(g(&c.partial_bytes))),
        ]
    }

    /// The configured servers, credentials hidden, for log lines.
    pub fn describe_urls(&self) -> String {
        self.config
            .url_list()
            .iter()
            .map(|u| redact_url(u))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// What the registry reports (`registry::Hook`, implemented for `Backbone` where the server is
/// assembled, in `state`): each is an enqueue, never a wait.
impl Backbone {
    /// `channel` got its first local subscriber, or lost its last one.
    pub fn channel_interest(&self, ns: Namespace, channel: &[u8], subscribed: bool) {
        let _ = self.commands.send(Command::Channel {
            ns,
            channel: Bytes::copy_from_slice(channel),
            subscribed,
            ticket: self.ticket(subscribed),
        });
    }

    /// A ticket for new interest (0 for interest dropped), remembered as this thread's latest:
    /// the registry calls the hook inside the SUBSCRIBE that caused it, on the thread of the
    /// connection that sent it, which reads it with `take_interest_ticket`.
    fn ticket(&self, subscribed: bool) -> u64 {
        if !subscribed {
            return 0;
        }
        let t = self.interest_requested.fetch_add(1, Ordering::Relaxed) + 1;
        LAST_TICKET.with(|c| c.set(t));
        t
    }

    /// The ticket of the last new interest the current thread caused since the previous call
    /// (0 if none), for `interest_settled`.
    pub fn take_interest_ticket() -> u64 {
        LAST_TICKET.with(|c| c.replace(0))
    }

    /// Waits until NATS has the interest of `ticket` (and every earlier one), so that other
    /// nodes' messages published from now on reach this node; at most `INTEREST_WAIT`, and not
    /// at all while NATS is not connected (the subscription is made on reconnection).
    pub async fn interest_settled(&self, ticket: u64) {
        if ticket == 0 || self.status() != Status::Connected {
            return;
        }
        let mut rx = self.interest_confirmed.subscribe();
        let _ = tokio::time::timeout(INTEREST_WAIT, rx.wait_for(|c| *c >= ticket)).await;
    }

    /// Called by the task once NATS has processed the subscriptions up to `ticket`.
    fn interest_confirmed(&self, ticket: u64) {
        self.interest_confirmed
            .send_modify(|c| *c = (*c).max(ticket));
    }

    /// `pattern` got its first local subscriber, or lost its last one.
    pub fn pattern_interest(&self, pattern: &[u8], subscribed: bool) {
        let _ = self.commands.send(Command::Pattern {
            pattern: Bytes::copy_from_slice(pattern),
            subscribed,
            ticket: self.ticket(subscribed),
        });
    }

    /// A local client published: forward it unless NATS is down or the queue is full.
    pub fn published(&self, ns: Namespace, channel: &[u8], payload: &[u8]) {
        // Refused before copying: a publisher into a full queue pays no allocation.
        if self
            .admit(QUEUED_OVERHEAD + channel.len() + payload.len())
            .is_err()
        {
            return;
        }
        let mut data = BytesMut::with_capacity(channel.len() + payload.len());
        data.extend_from_slice(channel);
        data.extend_from_slice(payload);
        self.send(Outgoing::Message {
            ns,
            data: data.freeze(),
            channel_len: channel.len(),
        });
    }
}

/// Connection options shared by `preflight` and the task.
async fn options(cfg: &BackboneConfig, name: String) -> Result<async_nats::ConnectOptions, String> {
    let mut o = if cfg.creds_file.is_empty() {
        async_nats::ConnectOptions::new()
    } else {
        async_nats::ConnectOptions::with_credentials_file(&cfg.creds_file)
            .await
            .map_err(|e| format!("cannot read backbone-creds-file '{}': {e}", cfg.creds_file))?
    };
    // async-nats takes credentials from options, not from the URL: the first URL's
    // `user:password@` (or `token@`) applies to every server.
    if let Some(first) = cfg.url_list().first() {
        let addr: async_nats::ServerAddr = first
            .parse()
            .map_err(|e| format!("invalid backbone URL '{}': {e}", redact_url(first)))?;
        match (addr.username(), addr.password()) {
            (Some(u), Some(p)) => o = o.user_and_password(u.to_string(), p.to_string()),
            (Some(t), None) => o = o.token(t.to_string()),
            _ => {}
        }
    }
    if !cfg.tls_ca_cert_file.is_empty() {
        o = o
            .add_root_certificates(cfg.tls_ca_cert_file.clone().into())
            .require_tls(true);
    }
    if !cfg.tls_cert_file.is_empty() || !cfg.tls_key_file.is_empty() {
        o = o
            .add_client_certificate(
                cfg.tls_cert_file.clone().into(),
                cfg.tls_key_file.clone().into(),
            )
            .require_tls(true);
    }
    Ok(o.no_echo()
        .name(name)
        .connection_timeout(Duration::from_millis(cfg.connect_timeout_ms))
        .ping_interval(PING_INTERVAL)
        .subscription_capacity(SUBSCRIPTION_CAPACITY)
        .client_capacity(CLIENT_CAPACITY)
        .max_reconnects(None)
        .reconnect_delay_callback(reconnect_delay))
}

/// Delay before reconnect attempt `n` (counted across servers since the last success): none
/// for the first, so a failover to the next URL is immediate, then doubling from 50 ms to 2 s.
fn reconnect_delay(attempts: usize) -> Duration {
    if attempts <= 1 {
        Duration::ZERO
    } else {
        let exp = (attempts - 2).min(6) as u32;
        Duration::from_millis(50 * 2u64.pow(exp)).min(Duration::from_secs(2))
    }
}

/// Checks what can be checked without connecting: URLs parse, files exist, cert and key come
/// together, the prefix is made of plain tokens. For `server::startup::check`.
pub fn check_config(cfg: &BackboneConfig) -> Result<(), String> {
    if !subject::valid_prefix(&cfg.prefix) {
        return Err("backbone-prefix must be dot-separated tokens of letters, digits, '-' and '_', at most 64 bytes".into());
    }
    if !cfg.enabled() {
        return Ok(());
    }
    for u in cfg.url_list() {
        u.parse::<async_nats::ServerAddr>()
            .map_err(|e| format!("invalid backbone URL '{}': {e}", redact_url(&u)))?;
    }
    if cfg.tls_cert_file.is_empty() != cfg.tls_key_file.is_empty() {
        return Err(
            "backbone-tls-cert-file and backbone-tls-key-file must be given together".into(),
        );
    }
    for (name, path) in [
        ("backbone-creds-file", &cfg.creds_file),
        ("backbone-tls-ca-cert-file", &cfg.tls_ca_cert_file),
        ("backbone-tls-cert-file", &cfg.tls_cert_file),
        ("backbone-tls-key-file", &cfg.tls_key_file),
    ] {
        if !path.is_empty() {
            std::fs::metadata(path).map_err(|e| format!("cannot read {name} '{path}': {e}"))?;
        }
    }
    Ok(())
}

/// One connection attempt to the configured servers, bounded by `backbone-connect-timeout`
/// per server: `Ok(server)` or the reason it failed, for the start-up log line.
pub async fn preflight(cfg: &BackboneConfig) -> Result<String, String> {
    let o = options(cfg, "pubsubd preflight".into())
        .await?
        .max_reconnects(cfg.url_list().len().max(1));
    let urls = cfg.url_list();
    let bound = Duration::from_millis(cfg.connect_timeout_ms) * (urls.len() as u32 + 1)
        + Duration::from_secs(1);
    match tokio::time::timeout(bound, o.connect(urls)).await {
        Ok(Ok(client)) => {
            let info = client.server_info();
            Ok(describe_server(&info))
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} ms", bound.as_millis())),
    }
}

fn describe_server(info: &async_nats::ServerInfo) -> String {
    let addr = format!("{}:{}", info.host, info.port);
    if info.server_name.is_empty() || info.server_name == info.server_id {
        addr
    } else {
        format!("{addr} ({})", info.server_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_delays_start_at_zero_and_stay_bounded() {
        assert_eq!(reconnect_delay(1), Duration::ZERO);
        assert_eq!(reconnect_delay(2), Duration::from_millis(50));
        assert_eq!(reconnect_delay(3), Duration::from_millis(100));
        assert_eq!(reconnect_delay(100), Duration::from_secs(2));
    }

    #[test]
    fn publishes_are_refused_and_counted_while_not_connected() {
        let b = Backbone::new(&BackboneConfig::default());
        b.published(Namespace::Global, b"ch", b"x");
        assert_eq!(b.counters.dropped_out.load(Ordering::Relaxed), 1);
        b.set_status(Status::Connected);
        b.published(Namespace::Global, b"ch", b"x");
        assert_eq!(b.counters.dropped_out.load(Ordering::Relaxed), 1);
        assert!(b.pending_out.load(Ordering::Relaxed) > 0);
        assert_eq!(
            b.publish_control("a b", Bytes::new()),
            Err(ControlError::BadName)
        );
        assert!(b.subscribe_control("members.>").is_ok());
        assert!(b.subscribe_control(">.x").is_err());
    }

    #[test]
    fn the_queue_is_bounded_in_bytes() {
        let cfg = BackboneConfig {
            queue_limit: 1 << 20,
            ..BackboneConfig::default()
        };
        let b = Backbone::new(&cfg);
        b.set_status(Status::Connected);
        let payload = vec![0u8; 100 * 1024];
        for _ in 0..20 {
            b.published(Namespace::Global, b"ch", &payload);
        }
        assert!(b.pending_out.load(Ordering::Relaxed) <= 1 << 20);
        assert_eq!(b.counters.dropped_out.load(Ordering::Relaxed), 10);
    }
}
