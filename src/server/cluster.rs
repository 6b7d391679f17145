//! The membership task of a node started with `cluster-enabled yes` and a transport (the
//! backbone's control subjects, or a loopback in tests): announces the node every
//! `cluster-node-timeout / 5`, applies the others' announcements, expires the silent, says
//! goodbye at shutdown, and logs each change of the slot map. The state it drives is
//! `cluster::Cluster`, which holds no tasks or timers of its own.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;

use tokio_util::task::TaskTracker;

use crate::backbone::Backbone;
use crate::cluster::membership::MembershipTransport;
use crate::cluster::{announce_interval, Cluster};
use crate::state::ServerState;

/// How a node reaches the others: where it sends, and what it receives.
pub struct Membership {
    pub transport: Arc<dyn MembershipTransport>,
    pub inbox: UnboundedReceiver<Bytes>,
    /// Changes when the transport has (re)connected: the node says hello again.
    pub reconnected: Option<tokio::sync::watch::Receiver<u64>>,
}

/// The control subject membership messages travel on (`<backbone-prefix>.c.cluster.members`).
const MEMBERS_SUBJECT: &str = "cluster.members";

/// Sends membership messages as backbone control messages. A message that cannot be sent (NATS
/// not connected, queue full) is lost like any backbone message: the next announcement, at
/// most `cluster-node-timeout / 5` later, repeats it.
struct BackboneTransport(Arc<Backbone>);

impl MembershipTransport for BackboneTransport {
    fn broadcast(&self, msg: Bytes) {
        if let Err(e) = self.0.publish_control(MEMBERS_SUBJECT, msg) {
            tracing::debug!("Cluster: announcement not sent: {e}");
        }
    }
}

/// Membership over the backbone's control subjects: what the other nodes of the same
/// `backbone-prefix` announce arrives here (never this node's own: the backbone is `no_echo`).
/// The backbone's bounded control queue is drained by a task into the membership inbox.
pub fn over_backbone(backbone: &Arc<Backbone>, tracker: &TaskTracker) -> Option<Membership> {
    let mut control = match backbone.subscribe_control(MEMBERS_SUBJECT) {
        Ok(rx) => rx,
        Err(e) => {
            tracing::warn!("Cluster: cannot hear the other nodes over the backbone: {e}");
            return None;
        }
    };
    let (tx, inbox) = tokio::sync::mpsc::unbounded_channel();
    tracker.spawn(async move {
        loop {
            tokio::select! {
                m = control.recv() => match m {
                    Some(m) if tx.send(m.payload.clone()).is_ok() => {}
                    _ => return,
                },
                // The membership task has ended (shutdown).
                _ = tx.closed() => return,
            }
        }
    });
    let mut reconnected = backbone.connections();
    // The first connection may already be made; either way `attach` says hello then.
    reconnected.mark_unchanged();
    Some(Membership {
        transport: Arc::new(BackboneTransport(backbone.clone())),
        inbox,
        reconnected: Some(reconnected),
    })
}

/// Runs until shutdown (or until the transport's inbox closes).
pub async fn run(state: Arc<ServerState>, cluster: Arc<Cluster>, membership: Membership) {
    let Membership {
        transport,
        mut inbox,
        mut reconnected,
    } = membership;
    cluster.attach(transport);
    let mut tick = tokio::time::interval(announce_interval(cluster.node_timeout()));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let changed = tokio::select! {
            _ = tick.tick() => {
                cluster.announce();
                cluster.tick(Instant::now())
            }
            msg = inbox.recv() => match msg {
                Some(m) => cluster.receive(&m, Instant::now()),
                None => return,
            },
            Ok(()) = async {
                match reconnected.as_mut() {
                    Some(r) => r.changed().await,
                    None => std::future::pending().await,
                }
            } => {
                cluster.hello();
                false
            }
            _ = state.shutdown.cancelled() => {
                // `server::run_with` has said goodbye already (before the backbone stops);
                // this covers a membership task driven without it.
                cluster.leave();
                return;
            }
        };
        if changed {
            log_view(&cluster);
            rehome_subscribers(&state);
        }
    }
}

/// Wakes every connection with shard subscriptions: each drops those in slots this node no
/// longer serves (`commands::drop_moved_shard_channels`).
fn rehome_subscribers(state: &ServerState) {
    for c in state.clients.iter() {
        if c.meta.lock().ssub > 0 {
            c.outbox.wake_reader();
        }
    }
}

fn log_view(cluster: &Cluster) {
    let v = cluster.view();
    let (first, last) = v.map.range(v.me).unwrap_or((0, 0));
    tracing::info!(
        "Cluster: {} node(s){}, this node serves slots {first}-{last}",
        v.nodes.len(),
        if v.agreed {
            ""
        } else {
            " (others not yet agreeing)"
        },
    );
}
