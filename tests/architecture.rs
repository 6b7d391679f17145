//! Proves the layering src/lib.rs draws: every `crate::` path in src/ points to the module's own
//! layer's module or to a lower layer, never up and never sideways. Read this after lib.rs.
//!
//! Layers, top to bottom (a module may use only modules of layers below its own):
//!
//! ```text
//! server                      accept loops, connections, listeners, metrics endpoint, start-up checks
//! commands                    table, lookup, dispatch, handlers, request-time ACL glue
//! state                       ServerState: what every connection and command shares
//! auth registry ops           users and rules · channels and patterns · MONITOR, PAUSE, SLOWLOG, rates
//!   backbone cluster          (scale-out: one more subscriber/publisher of the registry; membership)
//! client                      per-connection state (holds its outbox)
//! outbox                      byte-counted outgoing queues (queue encoded frames)
//! protocol logging            RESP codec · log output
//! config stats memory         settings as described · counters · allocator figures
//! glob                        Redis's glob matcher on bytes
//! ```
//!
//! The binary (src/bin/pubsubd/) sits above all of them and uses the library's public API.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The declared order, top first. `backbone` and `cluster` have their place before they exist.
const LAYERS: &[&[&str]] = &[
    &["server"],
    &["commands"],
    &["state"],
    &["auth", "registry", "ops", "backbone", "cluster"],
    &["client"],
    &["outbox"],
    &["protocol", "logging"],
    &["config", "stats", "memory"],
    &["glob"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file of src/ belongs to (`src/commands/acl.rs` → `commands`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// Code without comments: a `//` outside a string literal ends the line's code.
fn code_of(line: &str) -> &str {
    let mut in_str = false;
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if in_str => i += 1,
            b'"' => in_str = !in_str,
            b'/' if !in_str && b.get(i + 1) == Some(&b'/') => return &line[..i],
            _ => {}
        }
        i += 1;
    }
    line
}

/// The top-level names `crate::` paths in `code` reach: `crate::a::b` gives `a`, and
/// `crate::{a::x, b}` gives `a` and `b`.
fn crate_targets(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `pubsubd_crate::` and the like
        }
        if let Some(group) = rest.strip_prefix('{') {
            let (mut depth, mut start) = (1, true);
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            rest = &group[i + 1..];
                            break;
                        }
                    }
                    ',' if depth == 1 => start = true,
                    c if start && depth == 1 && (c.is_alphanumeric() || c == '_') => {
                        let end = group[i..]
                            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                            .map_or(group.len(), |e| i + e);
                        out.push(group[i..end].to_string());
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            out.push(rest[..end].to_string());
        }
    }
    out
}

#[test]
fn crate_paths_are_found_in_every_form() {
    assert_eq!(
        crate_targets("use crate::registry::Registry;"),
        ["registry"]
    );
    assert_eq!(
        crate_targets("use crate::{auth::users::Acl, config::{Config, Runtime}, stats};"),
        ["auth", "config", "stats"]
    );
    assert_eq!(
        crate_targets("let x = crate::outbox::Outbox::new(crate::REDIS_VERSION);"),
        ["outbox", "REDIS_VERSION"]
    );
    assert_eq!(
        crate_targets(code_of("let a = 1; // crate::server")),
        Vec::<String>::new()
    );
    assert_eq!(
        crate_targets(code_of(r#"f("// x", crate::glob::m)"#)),
        ["glob"]
    );
}

#[test]
fn every_module_has_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<String> = files
        .iter()
        .filter(|f| !f.starts_with(src.join("bin")) && *f != &src.join("lib.rs"))
        .map(|f| module_of(&src, f))
        .collect();
    let unplaced: Vec<_> = modules.iter().filter(|m| layer_of(m).is_none()).collect();
    assert!(
        unplaced.is_empty(),
        "modules without a layer in tests/architecture.rs (and lib.rs): {unplaced:?}"
    );
}

#[test]
fn crate_paths_point_down_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut crossings = Vec::new();
    let mut checked = 0;
    for file in &files {
        if file.starts_with(src.join("bin")) || *file == src.join("lib.rs") {
            continue;
        }
        let from = module_of(&src, file);
        let Some(from_layer) = layer_of(&from) else {
            continue; // reported by every_module_has_a_layer
        };
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            for to in crate_targets(code_of(line)) {
                checked += 1;
                if to == from {
                    continue;
                }
                // Items of lib.rs itself (REDIS_VERSION) are below every layer.
                let Some(to_layer) = layer_of(&to) else {
                    continue;
                };
                if to_layer <= from_layer {
                    crossings.push(format!(
                        "{}:{}: {from} (layer {from_layer}) uses {to} (layer {to_layer}): {}",
                        file.strip_prefix(&src).unwrap().display(),
                        n + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(
        checked > 100,
        "only {checked} crate:: paths found: is the scan broken?"
    );
    assert!(
        crossings.is_empty(),
        "imports against the declared order (server → commands → state → {{auth, registry, ops, \
         backbone, cluster}} → client → outbox → {{protocol, logging}} → {{config, stats, \
         memory}} → glob):\n{}",
        crossings.join("\n")
    );
}
