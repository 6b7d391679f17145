//! Operations: what operators use to watch and steer a running server, kept apart from the
//! pub/sub path. `monitor` (MONITOR), `pause` (CLIENT PAUSE), `slowlog` (SLOWLOG) and
//! `channel_rates` (the busiest channels, for the metrics endpoint) each cost a command one
//! atomic load while unused.

pub mod channel_rates;
pub mod monitor;
pub mod pause;
pub mod slowlog;

use std::sync::atomic::AtomicBool;

use crate::config::Config;
use channel_rates::ChannelRates;
use monitor::Monitors;
use pause::Pause;
use slowlog::SlowLog;

/// The operational state, one per server (`ServerState::ops`).
pub struct Ops {
    pub live: parking_lot::RwLock<Config>,
    pub monitors: Monitors,
    pub pause: Pause,
    pub slowlog: SlowLog,
    pub channel_rates: ChannelRates,
    /// SHUTDOWN NOW: close without waiting for queued output.
    pub shutdown_now: AtomicBool,
}

impl Ops {
    /// Operations for a server started with `config`; `rates` turns on channel rates (wanted by
    /// the metrics endpoint).
    pub fn new(config: Config, rates: bool) -> Self {
        let ops = Ops {
            live: parking_lot::RwLock::new(config),
            monitors: Monitors::default(),
            pause: Pause::default(),
            slowlog: SlowLog::default(),
            channel_rates: ChannelRates::default(),
            shutdown_now: AtomicBool::new(false),
        };
        if rates {
            ops.channel_rates.enable();
        }
        ops
    }
}
