//! Differential test: the same scripted sessions are played against Debian's redis-server
//! (the reference) and against pubsubd, and every client's replies are compared byte for
//! byte, step by step, together with whether each connection is still open.
//!
//! Each script in `scripts/` gets its own `#[test]` and its own pair of fresh servers, so
//! scripts are independent (client ids, channel counts, INFO counters). redis-server must
//! be on PATH (`apt-get install redis-server`); without it the test fails, it never skips.
//! `PUBSUBD_REFERENCE_SERVER=/path/to/redis-server` runs them against another Redis build.
//!
//! The differential fuzzer (`fuzz.rs`) sends random sessions to the same pair of servers;
//! see its module doc.
//!
//! # Reference version
//!
//! pubsubd follows Redis 7.2; Debian ships 7.0.15. Where the two Redis versions differ, the
//! step says so with `~differs-7.2 "why"` and gives Redis 7.2's exact bytes with
//! `~pubsubd "…"`; pubsubd is checked against those bytes instead of against 7.0.15 (and if
//! the local redis-server is itself 7.2, it is checked against them too).
//!
//! # Script language
//!
//! One step per line; `#` starts a comment (at the start of a word, outside quotes).
//!
//! ```text
//! c1: SUBSCRIBE news "two words"     # a command, sent as a RESP multibulk request
//! c2: PUBLISH news hello | PING      # `|` pipelines several commands into one write
//! c2: repeat 100 PUBLISH news x      # the same command 100 times, in one write
//! c1: raw "PING\r\n" "*1\r\n"        # bytes exactly as written, concatenated, one write
//! c1: raw "*" {rep:70000:1}          # unquoted words in raw are substituted (see below)
//! c3: connect                        # (re)open a connection; first use connects implicitly
//! c3: close                          # close the connection from the client side
//! expect-closed c1 c2                # both servers must have closed these connections
//! expect-open c3                     # both servers must still have these open
//! sleep 100                          # wait, in milliseconds, before collecting replies
//! ```
//!
//! Client names are words (`c1`, `sub`, `pub2`). Quoted strings take `\r \n \t \0 \\ \"`
//! and `\xNN`. Unquoted arguments may contain substitutions, made separately for each
//! server: `{addr:c2}` is c2's address as the server sees it (`127.0.0.1:port`),
//! `{rep:N:text}` repeats `text` N times, and `{name}` is a value saved by `~capture name`.
//!
//! After each step the runner reads every connection until no byte arrives for a quiet
//! period (25 ms; `DIFF_QUIET_MS` overrides), then compares, per client, the bytes the two
//! servers sent during the step and whether the connection is open. `DIFF_TRACE=1` prints
//! what every client received from each server at every step (with `-- --nocapture`),
//! which is the quickest way to write a `~pubsubd` expectation or read a failure.
//!
//! # Naming a difference
//!
//! Modifiers follow the step and apply to the reply of the step's own client; `~on c2`
//! makes the modifiers after it apply to c2 instead (e.g. to a subscriber receiving a
//! PUBLISH). Clients without modifiers are compared exactly. Each modifier that relaxes the
//! comparison takes a reason.
//!
//! - `~mask-ints "why"`: integer replies become `:#` (client ids).
//! - `~mask k1,k2 "why"`: the values of these fields become `<masked>`, in INFO's
//!   `key:value` lines, CLIENT LIST's `key=value` words, and key/value arrays and maps
//!   (HELLO).
//! - `~only k1,k2 "why"`: INFO / CLIENT LIST text keeps only these fields, and INFO's
//!   `# Section` headers (their presence and values are compared; other fields are not).
//! - `~sort "why"`: sorts the elements of the reply (hash-table order, e.g. PUBSUB CHANNELS).
//! - `~sort-frames "why"`: sorts the frames received (pmessages from several patterns).
//! - `~sort-channels "why"`: sorts only the channel names of the frames received, so the
//!   counts of an UNSUBSCRIBE-all reply must still count down in order.
//! - `~keep-commands a,b "why"`: COMMAND / COMMAND INFO / COMMAND DOCS replies keep only
//!   these commands, sorted by name.
//! - `~ignore "why"`: the reply is not compared (only the connection state is).
//! - `~differs "why"`: pubsubd deliberately differs from Redis; with `~pubsubd "bytes"` its
//!   reply is checked against those bytes instead.
//! - `~differs-7.2 "why" ~pubsubd "bytes"`: see *Reference version*.
//! - `~expect "bytes"`: both servers must send exactly these bytes (after normalizers).
//! - `~capture name`: saves the first reply (an integer or string) of each server as
//!   `{name}`.

#[path = "../support/mod.rs"]
mod support;

mod fuzz;
mod fuzz_gen;
mod fuzz_masks;
mod fuzz_masks70;
mod fuzz_run;
mod normalize;
mod report;
mod resp;
mod runner;
mod script;
mod server;

use std::path::PathBuf;

fn scripts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/differential/scripts")
}

/// Parses `scripts/<name>.txt`, runs it against fresh servers and fails with a report of
/// every difference.
fn run_script(name: &str) {
    let path = scripts_dir().join(format!("{name}.txt"));
    let source =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file = format!("scripts/{name}.txt");
    let steps = script::parse(&source).unwrap_or_else(|e| panic!("{file}: {e}"));
    let version = server::redis_version();
    let (redis, pubsubd) = std::thread::scope(|s| {
        let redis = s.spawn(|| server::redis(&version));
        let pubsubd = s.spawn(server::pubsubd);
        (redis.join(), pubsubd.join())
    });
    let (redis, pubsubd) = match (redis, pubsubd) {
        (Ok(r), Ok(p)) => (r, p),
        (Err(e), _) | (_, Err(e)) => std::panic::resume_unwind(e),
    };
    let reference = runner::Target {
        label: redis.label.clone(),
        addr: redis.addr,
    };
    let subject = runner::Target {
        label: pubsubd.label.clone(),
        addr: pubsubd.addr,
    };
    let failures = runner::run(&steps, &reference, &subject, version.starts_with("7.2."));
    drop((redis, pubsubd));
    if !failures.is_empty() {
        panic!("{}", report::report(&file, &steps, &failures));
    }
}

macro_rules! scripts {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                run_script(stringify!($name));
            }
        )*
        const SCRIPTS: &[&str] = &[$(stringify!($name)),*];
    };
}

scripts!(
    pubsub_basic,
    patterns,
    sharded,
    introspection,
    resp3,
    resp2_context,
    connection,
    client,
    server_info,
    transactions,
    errors,
    protocol,
    inline,
    binary,
    pipelining,
    auth_acl,
    operations,
    cluster,
);

#[test]
fn every_script_file_has_a_test_and_parses() {
    let mut files: Vec<String> = std::fs::read_dir(scripts_dir())
        .expect("scripts directory")
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .into_string()
                .ok()?
                .strip_suffix(".txt")
                .map(str::to_string)
        })
        .collect();
    files.sort();
    let mut listed: Vec<String> = SCRIPTS.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(
        files, listed,
        "every scripts/*.txt needs an entry in scripts!() and vice versa"
    );
    for name in &files {
        let source = std::fs::read_to_string(scripts_dir().join(format!("{name}.txt"))).unwrap();
        if let Err(e) = script::parse(&source) {
            panic!("scripts/{name}.txt: {e}");
        }
    }
}
