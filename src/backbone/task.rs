//! The backbone task: owns the NATS client, the reference-counted NATS subscriptions and the
//! reassembly buffer. Each NATS subscription has a small forwarding task (tokio wakes exactly
//! the subscription that has data, however many there are) that drains it at once, decides
//! each message's fate with the shared dedup window — first copy forwarded, later copies
//! dropped, and over `backbone-queue-limit` the first copy dropped too, so a later copy
//! through another subscription cannot overtake newer messages — and feeds the task's inbound
//! queue. The task delivers in the order the forwarders forwarded, which keeps each channel in
//! its origin's order: every subscription that matches a channel holds that channel's messages
//! in wire order.
//!
//! Log lines (one each): connected, disconnected, reconnected or failed over (with the time
//! it took), each distinct connection error while down, the start and end of an episode of
//! dropped messages.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_nats::{Client, Event, Message, Subscriber};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use super::envelope::{self, Envelope};
use super::inbound::{self, Added, Reassembly, Seen};
use super::subject::Decoded;
use super::Sink;
use super::{
    describe_server, options, Backbone, Command, ControlMessage, Outgoing, Status, INTEREST_WAIT,
};
use crate::outbox::Outbox;
use crate::protocol::Namespace;
use tokio_util::sync::CancellationToken;

/// Items taken off a queue per turn of the loop.
const BATCH: usize = 256;
/// How long the task waits at shutdown for messages already queued to reach NATS.
const FLUSH_AT_SHUTDOWN: Duration = Duration::from_secs(1);

struct Sub {
    refs: usize,
    forwarder: AbortHandle,
    broad: bool,
}

struct Task {
    sink: Arc<dyn Sink>,
    bb: Arc<Backbone>,
    client: Client,
    tracker: TaskTracker,
    subs: HashMap<String, Sub>,
    controls: Vec<AbortHandle>,
    inbound: mpsc::UnboundedSender<Inbound>,
    reassembly: Reassembly,
    seq: u64,
    wakes: Vec<Outbox>,
    down_since: Option<Instant>,
    last_server_id: String,
    last_server: String,
    errors_logged: HashSet<String>,
    slow_logged: bool,
    control_too_big_logged: bool,
}

/// Runs backbone `bb` until `stop` is cancelled (the server cancels it once no reader can
/// publish any more), delivering other nodes' messages into `sink`; every task it starts goes
/// through `tracker`.
pub async fn run(
    bb: Arc<Backbone>,
    sink: Arc<dyn Sink>,
    stop: CancellationToken,
    tracker: TaskTracker,
) {
    let Some(mut rx) = bb.receivers.lock().take() else {
        return;
    };
    let (ev_tx, mut events) = mpsc::unbounded_channel();
    let name = format!(
        "pubsubd {} node {:016x}",
        env!("CARGO_PKG_VERSION"),
        bb.node_id
    );
    let opts = match options(&bb.config, name).await {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!("Backbone disabled: {e}");
            return;
        }
    };
    // The status is set here, in the client's event task, so publishers see it at once even
    // while this task waits on the client.
    let status = bb.clone();
    let opts = opts.retry_on_initial_connect().event_callback(move |ev| {
        match ev {
            Event::Connected => status.set_status(Status::Connected),
            Event::Disconnected => status.set_status(Status::Disconnected),
            _ => {}
        }
        let tx = ev_tx.clone();
        async move {
            let _ = tx.send(ev);
        }
    });
    let client = match opts.connect(bb.config.url_list()).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("Backbone disabled: {e}");
            return;
        }
    };
    let (in_tx, mut inbound) = mpsc::unbounded_channel();
    let mut t = Task {
        reassembly: Reassembly::new(bb.config.reassembly_limit as usize),
        sink,
        bb,
        client,
        tracker,
        subs: HashMap::new(),
        controls: Vec::new(),
        inbound: in_tx,
        seq: 0,
        wakes: Vec::new(),
        down_since: None,
        last_server_id: String::new(),
        last_server: String::new(),
        errors_logged: HashSet::new(),
        slow_logged: false,
        control_too_big_logged: false,
    };
    let (mut cmds, mut msgs, mut outs) = (Vec::new(), Vec::new(), Vec::new());
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {
                t.bb.end_drop_episode();
                let bb = &t.bb;
                if bb.pending_in.load(Ordering::Relaxed) == 0
                    && bb.dropping_in.swap(false, Ordering::Relaxed)
                {
                    tracing::warn!(
                        "Backbone: keeping up with other nodes again ({} incoming messages dropped so far)",
                        bb.counters.dropped_in.load(Ordering::Relaxed)
                    );
                }
            }
            Some(ev) = events.recv() => t.event(ev).await,
            n = rx.commands.recv_many(&mut cmds, BATCH) => {
                if n == 0 {
                    break;
                }
                t.commands(&mut cmds).await;
            }
            _ = inbound.recv_many(&mut msgs, BATCH) => {
                for m in msgs.drain(..) {
                    t.deliver(m);
                }
                for o in t.wakes.drain(..) {
                    o.flush();
                }
            }
            n = rx.outgoing.recv_many(&mut outs, BATCH) => {
                if n == 0 {
                    break;
                }
                // Requests queued before these messages are carried out first: a subscription
                // a subsystem asked for before publishing (cluster membership's control
                // subject before its hello) is in place when the answers come.
                while let Ok(c) = rx.commands.try_recv() {
                    cmds.push(c);
                }
                t.commands(&mut cmds).await;
                for o in outs.drain(..) {
                    t.publish(o).await;
                }
            }
        }
    }
    // What local clients published before shutdown goes out, within a bound.
    while let Ok(o) = rx.outgoing.try_recv() {
        t.publish(o).await;
    }
    let _ = tokio::time::timeout(FLUSH_AT_SHUTDOWN, t.client.flush()).await;
    for s in t.subs.values() {
        s.forwarder.abort();
    }
    for c in &t.controls {
        c.abort();
    }
}

/// A first copy, on its way from a forwarder to the task.
struct Inbound {
    ns: Namespace,
    /// `None` for a hashed subject: the channel is at the start of the data.
    channel: Option<Bytes>,
    env: Envelope,
    /// Bytes counted in `Backbone::pending_in`.
    size: usize,
}

async fn forward(mut sub: Subscriber, to: mpsc::UnboundedSender<Inbound>, bb: Arc<Backbone>) {
    while let Some(m) = sub.next().await {
        // Only a node with a wildcard subscription can get two copies of one message. Then the
        // first-copy check and the hand-over to the task happen under the window's lock: two
        // forwarders each passing on a first copy keep the origin's order (a copy checked
        // first is queued first). Without one, the window is not consulted: a burst over many
        // channels may arrive far out of sequence order across subscriptions, and would
        // otherwise be refused as too old.
        let mut window = (bb.wildcards.load(Ordering::Relaxed) != 0).then(|| bb.dedup.lock());
        if let Some(i) = first_copy(&bb, m, window.as_deref_mut()) {
            if to.send(i).is_err() {
                return;
            }
        }
    }
}

/// Counts a received message and decides its fate: `Some` if it is the first copy (checked in
/// `window`, when given) and there is room for it.
fn first_copy(bb: &Backbone, m: Message, window: Option<&mut inbound::Dedup>) -> Option<Inbound> {
    let c = &bb.counters;
    let size = m.payload.len();
    c.messages_in.fetch_add(1, Ordering::Relaxed);
    c.bytes_in.fetch_add(size as u64, Ordering::Relaxed);
    let (Some(Decoded::Channel(ns, channel)), Ok(env)) = (
        bb.subjects.decode(m.subject.as_str()),
        Envelope::decode(m.payload),
    ) else {
        c.malformed_in.fetch_add(1, Ordering::Relaxed);
        return None;
    };
    if env.origin == bb.node_id {
        return None;
    }
    let seen = match window {
        Some(w) => w.check(env.origin, env.seq),
        None => Seen::First,
    };
    match seen {
        Seen::First => {}
        Seen::Duplicate => {
            c.duplicates.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Seen::TooOld => {
            c.dropped_in.fetch_add(1, Ordering::Relaxed);
            return None;
        }
    }
    let limit = bb.config.queue_limit as usize;
    if bb.pending_in.fetch_add(size, Ordering::Relaxed) + size > limit {
        bb.pending_in.fetch_sub(size, Ordering::Relaxed);
        c.dropped_in.fetch_add(1, Ordering::Relaxed);
        if !bb.dropping_in.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "Backbone: this node is not keeping up with messages from other nodes; dropping them (INFO backbone_dropped_in) until it does"
            );
        }
        return None;
    }
    Some(Inbound {
        ns,
        channel,
        env,
        size,
    })
}

impl Task {
    async fn event(&mut self, ev: Event) {
        let c = &self.bb.counters;
        match ev {
            Event::Connected => {
                c.connects.fetch_add(1, Ordering::Relaxed);
                // The client publishes the new server's INFO just after this event.
                let mut info = self.client.server_info();
                for _ in 0..50 {
                    if !info.server_id.is_empty() && info.server_id != self.last_server_id {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    info = self.client.server_info();
                }
                let server = describe_server(&info);
                *self.bb.server.lock() = server.clone();
                let subjects = self.subs.len();
                match self.down_since.take() {
                    None => tracing::info!(
                        "Backbone connected to {server} (node id {:016x}, prefix '{}', max_payload {})",
                        self.bb.node_id,
                        self.bb.config.prefix,
                        info.max_payload
                    ),
                    Some(t) if info.server_id != self.last_server_id => tracing::warn!(
                        "Backbone failed over from {} to {server} in {} ms; {subjects} subscriptions restored",
                        self.last_server,
                        t.elapsed().as_millis()
                    ),
                    Some(t) => tracing::warn!(
                        "Backbone reconnected to {server} in {} ms; {subjects} subscriptions restored",
                        t.elapsed().as_millis()
                    ),
                }
                self.last_server_id = info.server_id;
                self.last_server = server;
                self.errors_logged.clear();
                self.slow_logged = false;
            }
            Event::Disconnected => {
                c.disconnects.fetch_add(1, Ordering::Relaxed);
                self.down_since = Some(Instant::now());
                tracing::warn!(
                    "Backbone lost its connection to {}; reconnecting ({}). Local clients are served; messages to other nodes are dropped until it is back",
                    self.last_server,
                    self.bb.describe_urls()
                );
            }
            Event::ClientError(e) => {
                let msg = e.to_string();
                if self.errors_logged.insert(msg.clone()) {
                    tracing::warn!(
                        "Backbone cannot connect to {}: {msg}; retrying",
                        self.bb.describe_urls()
                    );
                }
            }
            Event::ServerError(e) => tracing::warn!("Backbone server error: {e}"),
            Event::SlowConsumer(_) => {
                c.dropped_in.fetch_add(1, Ordering::Relaxed);
                if !self.slow_logged {
                    self.slow_logged = true;
                    tracing::warn!(
                        "Backbone: this node is not keeping up with incoming messages; NATS-side drops are counted in INFO backbone_dropped_in"
                    );
                }
            }
            Event::LameDuckMode => tracing::warn!(
                "Backbone server {} entered lame duck mode; moving to another",
                self.last_server
            ),
            Event::Draining | Event::Closed => {}
        }
    }

    /// Carries out the requests in `cmds` (emptied), in order; once NATS has processed the
    /// subscriptions among them, their interest tickets are confirmed.
    async fn commands(&mut self, cmds: &mut Vec<Command>) {
        let mut ticket = 0;
        for c in cmds.drain(..) {
            ticket = ticket.max(self.command(c).await);
        }
        if ticket > 0 {
            // A request after the SUBs, to a subject nobody answers: the server's "no
            // responders" reply comes once it has processed what came before it on this
            // connection, the SUBs included (a flush only empties our socket buffer). Off the
            // task's loop, so messages keep flowing meanwhile.
            let (client, bb) = (self.client.clone(), self.bb.clone());
            let subject = bb.subjects.control(&format!("sync.{:016x}", bb.node_id));
            self.tracker.spawn(async move {
                let _ = tokio::time::timeout(INTEREST_WAIT, client.request(subject, Bytes::new()))
                    .await;
                bb.interest_confirmed(ticket);
            });
        }
    }

    /// Carries out one request; returns its interest ticket (0 for none).
    async fn command(&mut self, c: Command) -> u64 {
        match c {
            Command::Channel {
                ns,
                channel,
                subscribed,
                ticket,
            } => {
                let s = self.bb.subjects.channel(ns, &channel).subject;
                self.interest(s, subscribed, false).await;
                ticket
            }
            Command::Pattern {
                pattern,
                subscribed,
                ticket,
            } => {
                let s = self.bb.subjects.pattern_interest(&pattern);
                let broad = self.bb.subjects.is_broad(&s);
                self.interest(s, subscribed, broad).await;
                ticket
            }
            Command::Control { name, tx } => {
                let subject = self.bb.subjects.control(&name);
                match self.client.subscribe(subject).await {
                    Ok(sub) => {
                        let bb = self.bb.clone();
                        let h = self.tracker.spawn(forward_control(sub, tx, bb));
                        self.controls.retain(|h| !h.is_finished());
                        self.controls.push(h.abort_handle());
                    }
                    Err(e) => tracing::warn!("Backbone: cannot subscribe to control '{name}': {e}"),
                }
                0
            }
        }
    }

    /// Keeps the wildcard and broad subscription gauges as subscriptions come and go.
    fn count_kind(&self, subject: &str, broad: bool, delta: i64) {
        let add = |a: &std::sync::atomic::AtomicU64| {
            if delta > 0 {
                a.fetch_add(1, Ordering::Relaxed);
            } else {
                a.fetch_sub(1, Ordering::Relaxed);
            }
        };
        if broad {
            add(&self.bb.counters.broad_subjects);
        }
        if subject.ends_with(".>") {
            if delta > 0 {
                self.bb.wildcards.fetch_add(1, Ordering::Relaxed);
            } else {
                self.bb.wildcards.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// One more (or one less) reason to hold the NATS subscription `subject`.
    async fn interest(&mut self, subject: String, subscribed: bool, broad: bool) {
        if subscribed {
            if let Some(s) = self.subs.get_mut(&subject) {
                s.refs += 1;
                return;
            }
            match self.client.subscribe(subject.clone()).await {
                Ok(sub) => {
                    self.count_kind(&subject, broad, 1);
                    let h = self
                        .tracker
                        .spawn(forward(sub, self.inbound.clone(), self.bb.clone()));
                    self.subs.insert(
                        subject,
                        Sub {
                            refs: 1,
                            forwarder: h.abort_handle(),
                            broad,
                        },
                    );
                }
                Err(e) => tracing::warn!("Backbone: cannot subscribe: {e}"),
            }
        } else if let Some(s) = self.subs.get_mut(&subject) {
            s.refs -= 1;
            if s.refs == 0 {
                if let Some(s) = self.subs.remove(&subject) {
                    // Dropping the subscriber unsubscribes on NATS.
                    s.forwarder.abort();
                    self.count_kind(&subject, s.broad, -1);
                }
            }
        }
        self.bb
            .counters
            .subjects
            .store(self.subs.len() as u64, Ordering::Relaxed);
    }

    fn deliver(&mut self, i: Inbound) {
        let bb = &self.bb;
        let c = &bb.counters;
        bb.pending_in.fetch_sub(i.size, Ordering::Relaxed);
        let env = i.env;
        let (data, channel_len) = match env.chunk {
            None => (env.data, env.channel_len),
            Some(chunk) => {
                let key = (env.origin, env.seq.wrapping_sub(chunk.0 as u64));
                let (added, chl, evicted) =
                    self.reassembly.add(key, chunk, env.channel_len, env.data);
                c.dropped_in.fetch_add(evicted as u64, Ordering::Relaxed);
                c.partial_bytes
                    .store(self.reassembly.bytes() as u64, Ordering::Relaxed);
                match added {
                    Added::Complete(d) => (d, chl),
                    Added::Partial | Added::Repeated => return,
                }
            }
        };
        let (channel, payload) = match (i.channel, channel_len) {
            (Some(ch), None) => (ch, data),
            (None, Some(n)) if n as usize <= data.len() => {
                (data.slice(..n as usize), data.slice(n as usize..))
            }
            _ => {
                c.malformed_in.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        self.sink.deliver(i.ns, &channel, &payload, &mut self.wakes);
    }

    async fn publish(&mut self, o: Outgoing) {
        self.bb.dequeued(o.queued_size());
        let c = &self.bb.counters;
        if self.bb.status() != Status::Connected {
            c.dropped_out.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let max = self.client.max_payload();
        let seq = self.seq + 1;
        let (subject, parts) = match o {
            Outgoing::Message {
                ns,
                data,
                channel_len,
            } => {
                let (channel, payload) = data.split_at(channel_len);
                let cs = self.bb.subjects.channel(ns, channel);
                let carried = cs.hashed.then_some(channel);
                (
                    cs.subject,
                    envelope::encode(self.bb.node_id, seq, carried, payload, max),
                )
            }
            Outgoing::Control { name, payload } => {
                let parts = envelope::encode(self.bb.node_id, seq, None, &payload, max);
                if parts.len() > 1 {
                    c.dropped_out.fetch_add(1, Ordering::Relaxed);
                    if !self.control_too_big_logged {
                        self.control_too_big_logged = true;
                        tracing::warn!(
                            "Backbone: a control message of {} bytes exceeds the server's max_payload ({max}); dropped",
                            payload.len()
                        );
                    }
                    return;
                }
                (self.bb.subjects.control(&name), parts)
            }
        };
        self.seq += parts.len() as u64;
        for p in parts {
            let n = p.len() as u64;
            if self.client.publish(subject.clone(), p).await.is_err() {
                c.dropped_out.fetch_add(1, Ordering::Relaxed);
                return;
            }
            c.messages_out.fetch_add(1, Ordering::Relaxed);
            c.bytes_out.fetch_add(n, Ordering::Relaxed);
        }
    }
}

async fn forward_control(mut sub: Subscriber, to: mpsc::Sender<ControlMessage>, bb: Arc<Backbone>) {
    loop {
        let m = tokio::select! {
            m = sub.next() => m,
            _ = to.closed() => return,
        };
        let Some(m) = m else { return };
        let c = &bb.counters;
        c.messages_in.fetch_add(1, Ordering::Relaxed);
        c.bytes_in
            .fetch_add(m.payload.len() as u64, Ordering::Relaxed);
        let (Some(Decoded::Control(name)), Ok(env)) = (
            bb.subjects.decode(m.subject.as_str()),
            Envelope::decode(m.payload),
        ) else {
            c.malformed_in.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let msg = ControlMessage {
            name,
            origin: env.origin,
            payload: Bytes::clone(&env.data),
        };
        if to.try_send(msg).is_err() {
            c.dropped_in.fetch_add(1, Ordering::Relaxed);
        }
    }
}
