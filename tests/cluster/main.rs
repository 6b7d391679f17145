//! Cluster mode: Redis Cluster's client protocol (CLUSTER, READONLY/READWRITE/ASKING,
//! CROSSSLOT, `-MOVED`) answered as Redis 7.2 answers it, and nodes that learn each other,
//! agree on one slot map of the live members and follow it as members come and go. Replies are
//! asserted as exact bytes.
//!
//! - `one_node`: one node in the test's runtime: CLUSTER with `cluster-enabled no` (standalone
//!   Redis's error) and `yes` (a one-node cluster owning every slot), the CROSSSLOT rule, INFO
//!   and HELLO.
//! - `members`: several in-process nodes on a loopback membership bus: the map they agree on,
//!   `-MOVED` to a shard channel's owner, SUNSUBSCRIBE for shard subscribers whose slots move
//!   away, a node that shuts down leaving the map at once.
//! - `backbone`: three pubsubd processes on a real nats-server, on free loopback ports and
//!   stopped by PID: agreement, redirects, classic pub/sub across nodes, a killed node leaving
//!   after `cluster-node-timeout` and rejoining with its id, a stopped node's goodbye.

#[path = "../support/mod.rs"]
mod support;

mod backbone;
mod members;
mod one_node;
