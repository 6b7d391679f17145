//! The membership task of a node started with `cluster-enabled yes` and a transport (the
//! backbone's control subjects, or a loopback in tests): announces the node every
//! `cluster-node-timeout / 5`, applies the others' announcements, expires the silent, says
//! goodbye at shutdown, and logs each change of the slot map. The state it drives is
//! `cluster::Cluster`, which holds no tasks or timers of its own.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;

use crate::cluster::membership::MembershipTransport;
use crate::cluster::{announce_interval, Cluster};
use crate::state::ServerState;

/// How a node reaches the others: where it sends, and what it receives.
pub struct Membership {
    pub transport: Arc<dyn MembershipTransport>,
    pub inbox: UnboundedReceiver<Bytes>,
}

/// Runs until shutdown (or until the transport's inbox closes).
pub async fn run(state: Arc<ServerState>, cluster: Arc<Cluster>, membership: Membership) {
    let Membership {
        transport,
        mut inbox,
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
            _ = state.shutdown.cancelled() => {
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
            c.slots_moved.notify_one();
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
