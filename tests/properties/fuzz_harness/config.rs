//! The `config` target: the redis.conf reader on arbitrary text.
//!
//! Input: the bytes as text (invalid UTF-8 replaced, as the reader does with a file), one
//! directive per line. `include` lines are blanked before parsing, keeping the line numbers:
//! they read files by name (a fuzzer would find `/dev/zero`). Checks:
//!
//! - a refused text gives a `Directive` error naming the right line: its number, its trimmed
//!   text, a reason, all in the printed report;
//! - an accepted config passes `validate` or fails it with a reason (without the aclfile and
//!   the TLS port, which would read files);
//! - CONFIG REWRITE's text for the accepted config loads again to the same CONFIG GET values,
//!   and rewriting that text changes nothing.

use pubsubd::config::file::{apply_text, ConfigError};
use pubsubd::config::{params, rewrite, Config};
use pubsubd::protocol::decode::split_args;

/// The input's lines, with `include` directives blanked.
pub fn text(data: &[u8]) -> String {
    let text = String::from_utf8_lossy(data);
    let lines: Vec<&str> = text
        .lines()
        .map(|l| {
            let first = split_args(l.trim().as_bytes()).and_then(|a| a.into_iter().next());
            match first {
                Some(w) if w.eq_ignore_ascii_case(b"include") => "",
                _ => l,
            }
        })
        .collect();
    lines.join("\n")
}

fn everything(cfg: &Config) -> Vec<(&'static str, String)> {
    params::get(cfg, &[b"*"])
}

pub fn run(data: &[u8]) {
    let text = text(data);
    let mut cfg = Config::default();
    if let Err(e) = apply_text(&mut cfg, &text) {
        let ConfigError::Directive {
            file,
            line,
            text: shown,
            reason,
            ..
        } = &e
        else {
            panic!("text without include failed otherwise: {e}");
        };
        let lines: Vec<&str> = text.lines().collect();
        assert!(file.is_empty(), "text has no file name");
        assert!(
            *line >= 1 && *line <= lines.len(),
            "line {line} out of range"
        );
        assert_eq!(
            shown,
            lines[line - 1].trim(),
            "the error shows another line"
        );
        assert!(!reason.is_empty(), "an error without a reason");
        let report = e.to_string();
        assert!(
            report.contains(&format!("at line {line}\n>>> '{shown}'\n{reason}")),
            "badly formed report: {report}"
        );
        return;
    }
    let mut probe = cfg.clone();
    probe.aclfile.clear();
    probe.tls.port = 0;
    if let Err(e) = pubsubd::server::startup::check(&probe) {
        assert!(!e.to_string().is_empty());
    }
    let rewritten = rewrite::rewrite_text(&text, &cfg);
    let mut again = Config::default();
    if let Err(e) = apply_text(&mut again, &rewritten) {
        panic!("the rewritten config does not load: {e}\n--- rewritten:\n{rewritten}");
    }
    assert_eq!(
        everything(&cfg),
        everything(&again),
        "the rewritten config loads other values\n--- rewritten:\n{rewritten}"
    );
    assert_eq!(
        rewrite::rewrite_text(&rewritten, &again),
        rewritten,
        "a second rewrite changed the text"
    );
}
