//! Logging: `tracing` events written in Redis's log line format, to stdout or `logfile`.
//!
//! ```text
//! 4242:M 23 Nov 2026 18:53:26.306 * Ready to accept connections tcp on 127.0.0.1:6379
//! 4242:M 23 Nov 2026 18:53:30.120 # Client closed for overcoming of output buffer limits client_id=7 addr=127.0.0.1:50312 omem=33554440
//! ```
//!
//! The level mark is Redis's: `.` debug, `-` verbose, `*` notice, `#` warning (times are UTC).
//! `loglevel` maps to `tracing` levels (debug → trace, verbose → debug, notice → info,
//! warning → warn) and can change at run time (`set_level`, from CONFIG SET). `reopen` reopens
//! the log file (SIGHUP), so logrotate can move it away. `RUST_LOG`, if set, overrides the
//! level at start.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter};

use crate::config::{Config, LogLevel};

/// Where log lines go: standard output, or the log file (reopened by `reopen`).
#[derive(Clone)]
struct Sink {
    path: String,
    file: Arc<Mutex<Option<File>>>,
}

fn open(path: &str) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// One event's writer: lines are buffered and written whole.
struct LineWriter {
    sink: Sink,
    buf: Vec<u8>,
}

impl Write for LineWriter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if self.sink.path.is_empty() {
            let _ = io::stdout().lock().write_all(&self.buf);
            return;
        }
        if let Some(f) = self.sink.file.lock().as_mut() {
            let _ = f.write_all(&self.buf);
        }
    }
}

impl<'a> MakeWriter<'a> for Sink {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        LineWriter {
            sink: self.clone(),
            buf: Vec::with_capacity(160),
        }
    }
}

/// Redis's `pid:role dd Mon yyyy HH:MM:SS.mmm <mark> message` line.
struct RedisFormat {
    pid: u32,
}

/// Days since 1970-01-01 → (year, month 1-12, day), Howard Hinnant's civil_from_days.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `23 Nov 2026 18:53:26.306` for a time since the epoch.
pub fn redis_time(since_epoch: std::time::Duration) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = since_epoch.as_secs() as i64;
    let (y, m, d) = civil(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{d:02} {} {y} {:02}:{:02}:{:02}.{:03}",
        MONTHS[(m - 1) as usize],
        s / 3600,
        s / 60 % 60,
        s % 60,
        since_epoch.subsec_millis()
    )
}

/// Redis's level mark for a `tracing` level.
pub fn mark(level: &Level) -> char {
    match *level {
        Level::TRACE => '.',
        Level::DEBUG => '-',
        Level::INFO => '*',
        _ => '#',
    }
}

impl<S, N> FormatEvent<S, N> for RedisFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        write!(
            w,
            "{}:M {} {} ",
            self.pid,
            redis_time(now),
            mark(event.metadata().level())
        )?;
        ctx.format_fields(w.by_ref(), event)?;
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                if let Some(f) = span.extensions().get::<FormattedFields<N>>() {
                    if !f.is_empty() {
                        write!(w, " {f}")?;
                    }
                }
            }
        }
        writeln!(w)
    }
}

type LevelSetter = Box<dyn Fn(LogLevel) + Send + Sync>;

static SET_LEVEL: OnceLock<LevelSetter> = OnceLock::new();
static SINK: OnceLock<Sink> = OnceLock::new();

/// Installs the global subscriber for `cfg.loglevel` and `cfg.logfile`. `Err` says why the
/// log file cannot be opened, in Redis's words.
pub fn init(cfg: &Config) -> Result<(), String> {
    let file = if cfg.logfile.is_empty() {
        None
    } else {
        Some(open(&cfg.logfile).map_err(|e| format!("Can't open the log file: {e}"))?)
    };
    let sink = Sink {
        path: cfg.logfile.clone(),
        file: Arc::new(Mutex::new(file)),
    };
    let from_env = std::env::var("RUST_LOG").is_ok();
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(cfg.loglevel.filter()));
    let (filter, handle) = reload::Layer::new(filter);
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .event_format(RedisFormat {
            pid: std::process::id(),
        })
        .with_writer(sink.clone());
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .try_init()
        .map_err(|e| e.to_string())?;
    let _ = SINK.set(sink);
    if !from_env {
        let _ = SET_LEVEL.set(Box::new(move |l: LogLevel| {
            let _ = handle.modify(|f| *f = EnvFilter::new(l.filter()));
        }));
    }
    Ok(())
}

/// Changes the log level (CONFIG SET loglevel). No effect before `init`, or under `RUST_LOG`.
pub fn set_level(level: LogLevel) {
    if let Some(f) = SET_LEVEL.get() {
        f(level);
    }
}

/// Reopens the log file (SIGHUP), so a rotated file is let go.
pub fn reopen() -> io::Result<()> {
    let Some(sink) = SINK.get() else {
        return Ok(());
    };
    if sink.path.is_empty() {
        return Ok(());
    }
    let f = open(&sink.path)?;
    *sink.file.lock() = Some(f);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_like_redis() {
        assert_eq!(
            redis_time(std::time::Duration::from_millis(1_795_459_998_033)),
            "23 Nov 2026 18:53:18.033"
        );
        assert_eq!(
            redis_time(std::time::Duration::ZERO),
            "01 Jan 1970 00:00:00.000"
        );
        assert_eq!(
            redis_time(std::time::Duration::from_secs(951_782_400)),
            "29 Feb 2000 00:00:00.000"
        );
    }
}
