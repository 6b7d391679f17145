//! CLIENT PAUSE / UNPAUSE: Redis's client pause, as a storeless server has it.
//!
//! `WRITE` holds back the commands Redis marks `write` or `may_replicate`; of pubsubd's that is
//! PUBLISH (and an EXEC that would run one) — not SPUBLISH, which Redis 7 does not replicate.
//! `ALL` holds back every command, CLIENT UNPAUSE included (checked against redis-server 7.0,
//! where CLIENT UNPAUSE sent during `PAUSE ALL` waits for the pause to end). A held-back
//! client reads nothing more until its command can run, as a Redis client blocked by the
//! pause. A new pause never shortens or relaxes one in force (Redis's `pauseClients`).
//!
//! The check on every command is one relaxed atomic load while no pause is in force.

use std::sync::atomic::{AtomicU8, Ordering};

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

/// What a pause holds back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PauseMode {
    Write = 1,
    All = 2,
}

#[derive(Default)]
pub struct Pause {
    /// 0 (none), or the `PauseMode` in force.
    mode: AtomicU8,
    until: Mutex<Option<Instant>>,
    changed: Notify,
}

impl Pause {
    /// Pauses for `mode` until `until`, keeping a stricter or longer pause already in force.
    pub fn pause(&self, mode: PauseMode, until: Instant) {
        let mut u = self.until.lock();
        let current = self.current_locked(&mut u);
        let mode = current.map_or(mode, |c| c.max(mode));
        let until = u.map_or(until, |t| t.max(until));
        *u = Some(until);
        self.mode.store(mode as u8, Ordering::Release);
        drop(u);
        self.changed.notify_waiters();
    }

    /// Ends any pause now.
    pub fn unpause(&self) {
        let mut u = self.until.lock();
        *u = None;
        self.mode.store(0, Ordering::Release);
        drop(u);
        self.changed.notify_waiters();
    }

    fn current_locked(&self, until: &mut Option<Instant>) -> Option<PauseMode> {
        match *until {
            Some(t) if Instant::now() < t => match self.mode.load(Ordering::Acquire) {
                1 => Some(PauseMode::Write),
                2 => Some(PauseMode::All),
                _ => None,
            },
            Some(_) => {
                *until = None;
                self.mode.store(0, Ordering::Release);
                None
            }
            None => None,
        }
    }

    /// The pause in force, if any.
    pub fn current(&self) -> Option<PauseMode> {
        if self.mode.load(Ordering::Relaxed) == 0 {
            return None;
        }
        self.current_locked(&mut self.until.lock())
    }

    /// Whether a command is held back now: `writes` tells whether it counts as a write.
    #[inline]
    pub fn holds(&self, writes: bool) -> bool {
        if self.mode.load(Ordering::Relaxed) == 0 {
            return false;
        }
        match self.current() {
            Some(PauseMode::All) => true,
            Some(PauseMode::Write) => writes,
            None => false,
        }
    }

    /// Waits until the pause ends or changes (the caller checks again).
    pub async fn changed(&self) {
        let notified = self.changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let until = *self.until.lock();
        if let Some(t) = until {
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(t) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn write_pause_holds_writes_until_it_ends() {
        let p = Pause::default();
        assert!(!p.holds(true));
        p.pause(PauseMode::Write, Instant::now() + Duration::from_secs(2));
        assert!(p.holds(true));
        assert!(!p.holds(false));
        // A shorter ALL pause makes it stricter but not shorter.
        p.pause(PauseMode::All, Instant::now() + Duration::from_secs(1));
        assert!(p.holds(false));
        p.changed().await;
        assert!(!p.holds(true), "ended after the longer of the two");
        p.pause(PauseMode::All, Instant::now() + Duration::from_secs(60));
        p.unpause();
        assert!(!p.holds(false));
    }
}
