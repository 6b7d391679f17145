//! Command line in redis-server's manner: `pubsubd [/path/to/redis.conf | -] [--directive value …]`.
//!
//! Every `--name args…` becomes a config line applied after the file, so any directive the file
//! accepts is also a flag (`--port 7000`, `--bind 127.0.0.1 ::1`,
//! `--client-output-buffer-limit "pubsub 64mb 16mb 60"`).
//!
//! Two operational modes take the same arguments: `--check-config` loads the configuration,
//! reports what it would ignore and exits (0 if it would start), and `--health-check
//! [host:]port` is the container's health probe (PING, no redis-cli needed).
//!
//! `PUBSUBD_DEFAULTS`, if set, names a config file applied before everything else: the
//! container image uses it to listen on every interface by default, as the official Redis
//! image does, while a mounted redis.conf and flags still override it. `REDIS_PASSWORD` or
//! `REDIS_PASSWORD_FILE` (see `env`) set `requirepass` in the same place, after those defaults.

use std::io::Read;
use std::path::Path;

use super::{env, file, Config, ConfigError};

/// Environment variable naming a file of defaults applied before the config file and flags.
pub const DEFAULTS_ENV: &str = "PUBSUBD_DEFAULTS";

/// What `main` should do.
// Built once at start: the size of `Run` does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Action {
    Run(Config),
    /// `--check-config`: the configuration loaded; report and exit.
    CheckConfig(Config),
    /// `--health-check [[host:]port]`: PING the server there (or, without a port, on the ports
    /// the container's pubsubd listens on) and exit 0 if it answers.
    HealthCheck(Option<String>),
    Help(String),
    Version(String),
}

/// The version line, in redis-server's format.
pub fn version_line() -> String {
    format!(
        "pubsubd v={} (Redis-compatible {}) bits=64",
        env!("CARGO_PKG_VERSION"),
        crate::REDIS_VERSION
    )
}

fn help() -> String {
    clap::Command::new("pubsubd")
        .version(env!("CARGO_PKG_VERSION"))
        .about("A Redis-compatible pub/sub broker")
        .override_usage(
            "pubsubd [/path/to/redis.conf] [--directive value ...]\n       pubsubd - (read config from stdin)\n       pubsubd --check-config [/path/to/redis.conf] [--directive value ...]\n       pubsubd --health-check [[host:]port]\n       pubsubd -v | --version\n       pubsubd -h | --help",
        )
        .after_help(
            "Examples:\n  pubsubd                       (127.0.0.1:6379)\n  pubsubd --port 7777\n  pubsubd /etc/redis/redis.conf --loglevel verbose\n  pubsubd --bind 0.0.0.0 --client-output-buffer-limit \"pubsub 64mb 16mb 60\"",
        )
        .render_help()
        .to_string()
}

/// Quotes a value so that `sdssplitargs` reads it back as one argument, with Redis's
/// `sdscatrepr` escapes (what `rewriteConfigStringOption` writes): `\n \r \t \a \b \\ \"`, and
/// `\xHH` for every other byte outside printable ASCII. A raw NUL would end the line for
/// `sdssplitargs`, so it must be escaped like the rest.
pub(crate) fn quote(arg: &str) -> String {
    let mut s = String::from("\"");
    for &b in arg.as_bytes() {
        match b {
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            7 => s.push_str("\\a"),
            8 => s.push_str("\\b"),
            0x20..=0x7e => s.push(char::from(b)),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s.push('"');
    s
}

/// Parses the arguments (without the program name) into a config.
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Action, ConfigError> {
    let args: Vec<String> = args.into_iter().collect();
    match args.first().map(String::as_str) {
        Some("-h" | "--help") => return Ok(Action::Help(help())),
        Some("-v" | "--version") => return Ok(Action::Version(version_line())),
        Some("--health-check") => {
            return Ok(Action::HealthCheck(args.get(1).cloned()));
        }
        Some("--check-config") => {
            return Ok(Action::CheckConfig(load(&args[1..])?));
        }
        _ => {}
    }
    Ok(Action::Run(load(&args)?))
}

/// Builds the configuration: `PUBSUBD_DEFAULTS` → `REDIS_PASSWORD[_FILE]` → the file (or
/// stdin) → the flags.
fn load(args: &[String]) -> Result<Config, ConfigError> {
    let mut cfg = Config::default();
    if let Some(defaults) = std::env::var_os(DEFAULTS_ENV).filter(|v| !v.is_empty()) {
        file::load_file(&mut cfg, Path::new(&defaults))?;
    }
    let env_password = env::password(|k| std::env::var_os(k))?;
    if let Some(pw) = &env_password {
        cfg.requirepass = pw.clone();
    }
    let mut rest = args;
    if let Some(first) = args.first() {
        if first == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|err| ConfigError::Open {
                    path: "-".into(),
                    err,
                })?;
            file::apply_source(&mut cfg, &text, "stdin", 0)?;
            rest = &args[1..];
        } else if !first.starts_with('-') {
            file::load_file(&mut cfg, Path::new(first))?;
            // CONFIG REWRITE and INFO need the absolute path, as Redis keeps it.
            cfg.config_file = std::path::absolute(first)
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| first.clone());
            rest = &args[1..];
        }
    }
    let mut lines = String::new();
    for a in rest {
        if let Some(name) = a.strip_prefix("--") {
            if !lines.is_empty() {
                lines.push('\n');
            }
            lines.push_str(name);
        } else {
            // A value holding spaces (`--save "900 1"`) is several arguments, as in redis-server.
            lines.push(' ');
            if a.split_whitespace().count() > 1 {
                lines.push_str(a);
            } else {
                lines.push_str(&quote(a));
            }
        }
    }
    file::apply_source(&mut cfg, &lines, "the command line", 0)?;
    if env_password.is_some_and(|pw| pw != cfg.requirepass) {
        cfg.warnings.push(format!(
            "requirepass from the configuration overrides the password from {} or {}",
            env::PASSWORD_ENV,
            env::PASSWORD_FILE_ENV
        ));
    }
    if cfg.daemonize {
        return Err(ConfigError::Fatal {
            reason: "daemonize yes is not supported: run pubsubd in the foreground under a supervisor (systemd, Docker), e.g. with --daemonize no".to_string(),
        });
    }
    cfg.validate()?;
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Config {
        match parse(args.iter().map(|s| s.to_string())) {
            Ok(Action::Run(c)) => c,
            _ => panic!("expected a config"),
        }
    }

    #[test]
    fn flags_are_directives() {
        let c = run(&[
            "--port",
            "7000",
            "--bind",
            "127.0.0.1",
            "::1",
            "--client-output-buffer-limit",
            "pubsub 1mb 0 0",
        ]);
        assert_eq!(c.port, 7000);
        assert_eq!(c.bind, vec!["127.0.0.1", "::1"]);
        assert_eq!(c.pubsub_output_limit, (1 << 20, 0, 0));
    }

    #[test]
    fn unknown_flag_is_an_error() {
        assert!(parse(["--prot".to_string(), "1".to_string()]).is_err());
    }
}
