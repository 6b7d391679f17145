//! redis.conf and the command line: every directive pubsubd honours, memory units, quoting,
//! `include` (nested, globbed), repeated directives, ignored keyspace directives, errors with
//! file and line, real redis.conf files, and `--check-config`.

use std::process::Command;

use pubsubd::config::cli::{self, Action};
use pubsubd::config::{file, Config, LogLevel};

use crate::support::process;

fn load(text: &str) -> Config {
    let mut c = Config::default();
    file::apply_text(&mut c, text).unwrap_or_else(|e| panic!("{e}"));
    c
}

fn error(text: &str) -> String {
    let mut c = Config::default();
    file::apply_text(&mut c, text).unwrap_err().to_string()
}

#[test]
fn every_honoured_directive_is_applied() {
    let c = load(
        "bind 127.0.0.1 -::1\nport 7000\nmaxclients 50\ntimeout 30\ntcp-keepalive 60\n\
         loglevel warning\nlogfile /tmp/x.log\npidfile /tmp/x.pid\ndaemonize no\ndatabases 4\n\
         client-output-buffer-limit normal 1mb 2mb 3 replica 4mb 5mb 6 pubsub 64mb 16mb 30\n\
         proto-max-bulk-len 2mb\nclient-query-buffer-limit 4mb\nio-threads 3\n\
         shutdown-timeout 2\nslowlog-log-slower-than -1\nslowlog-max-len 5\nmetrics-port 9121\n\
         supervised auto\n",
    );
    assert_eq!(c.bind, ["127.0.0.1", "-::1"]);
    assert_eq!(c.port, 7000);
    assert_eq!(c.maxclients, 50);
    assert_eq!(c.timeout, 30);
    assert_eq!(c.tcp_keepalive, 60);
    assert_eq!(c.loglevel, LogLevel::Warning);
    assert_eq!(c.logfile, "/tmp/x.log");
    assert_eq!(c.pidfile, "/tmp/x.pid");
    assert!(!c.daemonize);
    assert_eq!(c.databases, 4);
    assert_eq!(c.normal_output_limit, (1 << 20, 2 << 20, 3));
    assert_eq!(c.replica_output_limit, (4 << 20, 5 << 20, 6));
    assert_eq!(c.pubsub_output_limit, (64 << 20, 16 << 20, 30));
    assert_eq!(c.proto_max_bulk_len, 2 << 20);
    assert_eq!(c.client_query_buffer_limit, 4 << 20);
    assert_eq!(c.io_threads, 3);
    assert_eq!(c.shutdown_timeout, 2);
    assert_eq!(c.slowlog_log_slower_than, -1);
    assert_eq!(c.slowlog_max_len, 5);
    assert_eq!(c.metrics_port, 9121);
    assert_eq!(c.supervised, "auto");
    assert!(c.ignored.is_empty(), "{:?}", c.ignored);
}

#[test]
fn memory_units_quotes_case_and_repeats_follow_redis() {
    let c = load(
        "PROTO-MAX-BULK-LEN 1GB\nclient-query-buffer-limit 2000k\n\
         logfile 'with space.log'\npidfile \"/tmp/a\\x41.pid\"\n\
         port 1\nport 2\n  maxclients   7  \n",
    );
    assert_eq!(c.proto_max_bulk_len, 1 << 30);
    assert_eq!(c.client_query_buffer_limit, 2_000_000);
    assert_eq!(c.logfile, "with space.log");
    assert_eq!(c.pidfile, "/tmp/aA.pid");
    assert_eq!(c.port, 2, "the last of repeated directives wins");
    assert_eq!(c.maxclients, 7);
}

#[test]
fn keyspace_directives_are_recorded_once_each() {
    let c = load("save 900 1\nsave 300 10\nappendonly yes\nappendonly no\nmaxmemory 1gb\n");
    assert_eq!(
        c.ignored,
        ["save 900 1 300 10", "appendonly no", "maxmemory 1gb"]
    );
}

#[test]
fn errors_name_the_line_and_reason_in_redis_words() {
    let e = error("port 1\n\nprot 7000\n");
    assert_eq!(
        e,
        "\n*** FATAL CONFIG FILE ERROR (pubsubd 0.1.0) ***\nReading the configuration file, at line 3\n>>> 'prot 7000'\nBad directive or wrong number of arguments"
    );
    for (text, reason) in [
        (
            "port 70000",
            "argument must be between 0 and 65535 inclusive",
        ),
        ("port x", "argument couldn't be parsed into an integer"),
        (
            "maxclients 0",
            "argument must be between 1 and 4294967295 inclusive",
        ),
        ("timeout", "Bad directive or wrong number of arguments"),
        (
            "loglevel loud",
            "argument(s) must be one of the following: debug, verbose, notice, warning, nothing",
        ),
        ("daemonize maybe", "argument must be 'yes' or 'no'"),
        (
            "client-output-buffer-limit pubsub 1 2",
            "Wrong number of arguments in buffer limit configuration.",
        ),
        (
            "client-output-buffer-limit foo 1 2 3",
            "Invalid client class specified in buffer limit configuration.",
        ),
        (
            "client-output-buffer-limit pubsub x 2 3",
            "Error in hard, soft or soft_seconds setting in buffer limit configuration.",
        ),
        (
            "supervised maybe",
            "argument(s) must be one of the following: upstart, systemd, auto, no",
        ),
        ("logfile \"open", "Unbalanced quotes in configuration line"),
        (
            "loadmodule /x.so",
            "Modules are not supported: pubsubd cannot load Redis modules",
        ),
    ] {
        let e = error(text);
        assert!(e.ends_with(&format!("\n{reason}")), "{text}: {e}");
        assert!(e.contains("at line 1\n"), "{text}: {e}");
    }
}

#[test]
fn includes_nest_glob_and_report_their_own_file_and_line() {
    let dir = process::temp_dir("include");
    let d = dir.display();
    std::fs::create_dir_all(dir.join("conf.d")).unwrap();
    std::fs::write(dir.join("conf.d/10-port.conf"), "port 7001\n").unwrap();
    std::fs::write(dir.join("conf.d/20-port.conf"), "port 7002\nmaxclients 9\n").unwrap();
    std::fs::write(dir.join("conf.d/skip.txt"), "garbage\n").unwrap();
    std::fs::write(
        dir.join("inner.conf"),
        format!("include {d}/conf.d/*.conf\ntimeout 5\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("main.conf"),
        format!("port 1\ninclude {d}/inner.conf\ntimeout 6\n"),
    )
    .unwrap();
    let mut c = Config::default();
    file::load_file(&mut c, &dir.join("main.conf")).unwrap();
    assert_eq!(c.port, 7002, "globbed files load in name order");
    assert_eq!(c.maxclients, 9);
    assert_eq!(c.timeout, 6, "lines after the include override it");

    std::fs::write(dir.join("bad.conf"), "# ok\nport 3\nnosuch 1\n").unwrap();
    std::fs::write(dir.join("top.conf"), format!("include {d}/bad.conf\n")).unwrap();
    let e = file::load_file(&mut Config::default(), &dir.join("top.conf"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!("at line 3 of {d}/bad.conf\n>>> 'nosuch 1'")),
        "{e}"
    );

    std::fs::write(dir.join("loop.conf"), format!("include {d}/loop.conf\n")).unwrap();
    let e = file::load_file(&mut Config::default(), &dir.join("loop.conf"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("Too many nested include directives"), "{e}");

    let e = file::load_file(&mut Config::default(), &dir.join("missing.conf")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("Fatal error, can't open config file"),
        "{e}"
    );
}

fn parse(args: &[&str]) -> Config {
    match cli::parse(args.iter().map(|s| s.to_string())) {
        Ok(Action::Run(c)) => c,
        Ok(_) => panic!("not a run"),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn flags_override_the_file_and_name_themselves_in_errors() {
    let dir = process::temp_dir("flags");
    let f = dir.join("redis.conf");
    std::fs::write(&f, "port 7000\ntimeout 9\n").unwrap();
    let c = parse(&[
        f.to_str().unwrap(),
        "--port",
        "7001",
        "--save",
        "",
        "--client-output-buffer-limit",
        "pubsub 1mb 0 0",
    ]);
    assert_eq!((c.port, c.timeout), (7001, 9));
    assert_eq!(c.pubsub_output_limit, (1 << 20, 0, 0));
    assert_eq!(
        c.config_file,
        f.display().to_string(),
        "kept as an absolute path"
    );
    let Err(e) = cli::parse(["--port".to_string(), "x".to_string()]) else {
        panic!()
    };
    assert!(
        e.to_string().contains("at line 1 of the command line"),
        "{e}"
    );
}

#[test]
fn daemonize_yes_is_refused_unless_overridden() {
    let dir = process::temp_dir("daemonize");
    let f = dir.join("redis.conf");
    std::fs::write(&f, "daemonize yes\n").unwrap();
    assert!(cli::parse([f.display().to_string()]).is_err());
    let c = parse(&[f.to_str().unwrap(), "--daemonize", "no"]);
    assert!(!c.daemonize);
}

#[test]
fn redis_7_2_shipped_directives_load() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/redis-7.2-defaults.conf");
    let mut c = Config::default();
    file::load_file(&mut c, &path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.bind, ["127.0.0.1", "-::1"]);
    assert_eq!(c.pidfile, "/var/run/redis_6379.pid");
    assert!(c
        .ignored
        .iter()
        .any(|d| d == "save" || d.starts_with("appendonly ")));
}

/// Debian's redis.conf for redis-server 7.0.15, as its systemd unit starts it.
#[test]
fn debians_production_redis_conf_checks_out_with_its_units_flags() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/redis-7.0-debian.conf");
    let out = Command::new(env!("CARGO_BIN_EXE_pubsubd"))
        .args([
            "--check-config",
            path.to_str().unwrap(),
            "--supervised",
            "systemd",
            "--daemonize",
            "no",
        ])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.starts_with("Configuration OK ("), "{stdout}");
    assert!(
        stderr.contains("warning: ignoring directive 'appendonly no'"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("'save").count(),
        stderr.matches("directive 'save").count()
    );
    // Without the unit's --daemonize no, it refuses to start rather than pretending to fork.
    let out = Command::new(env!("CARGO_BIN_EXE_pubsubd"))
        .args(["--check-config", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("daemonize yes is not supported"));
}

#[test]
fn check_config_reports_errors_with_exit_code_1() {
    let dir = process::temp_dir("check");
    let f = dir.join("bad.conf");
    std::fs::write(&f, "port 7000\nmaxclients -1\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pubsubd"))
        .args(["--check-config", f.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("at line 2 of {}", f.display())),
        "{err}"
    );
    assert!(err.contains(">>> 'maxclients -1'"), "{err}");
}

#[test]
fn config_can_come_from_stdin() {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_pubsubd"))
        .args(["--check-config", "-", "--timeout", "3"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"port 7123\nsave 60 1\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("port 7123"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("'save 60 1'"));
}

#[test]
fn container_defaults_apply_first() {
    let dir = process::temp_dir("defaults");
    let defaults = dir.join("defaults.conf");
    std::fs::write(&defaults, "bind * -::*\nport 7100\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pubsubd"))
        .args(["--check-config", "--port", "7200"])
        .env(cli::DEFAULTS_ENV, &defaults)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "Configuration OK (defaults and command line): port 7200 bind * -::*"
    );
}

/// redis.conf.example documents every directive pubsubd honours, with its CONFIG SET status.
#[test]
fn the_example_documents_every_honoured_directive() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("redis.conf.example");
    let text = std::fs::read_to_string(path).unwrap();
    for p in pubsubd::config::params::PARAMS {
        let documented = text
            .lines()
            .any(|l| l.trim_start_matches("# ").split_whitespace().next() == Some(p.name));
        assert!(documented, "{} is not in redis.conf.example", p.name);
    }
    let mutable = text.matches("CONFIG SET: yes").count();
    assert_eq!(
        mutable,
        pubsubd::config::params::PARAMS
            .iter()
            .filter(|p| p.mutable)
            .count(),
        "CONFIG SET: yes/no notes"
    );
}
