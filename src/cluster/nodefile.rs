//! `cluster-config-file`: where a node keeps its identity across restarts, as Redis's
//! nodes.conf does. The node id and shard id are generated at random on first start and written
//! in nodes.conf's format (one `myself` line and a `vars` line), so the file reads like Redis's;
//! the slot ranges are never stored, since they follow from the live member set.
//!
//! Each node needs a file of its own, as in Redis. Redis also refuses a file another running node
//! holds (`flock`); pubsubd does not lock it (the standard library's file locks need a newer Rust
//! than the crate's minimum, and the crate forbids `unsafe`), so two nodes started on one file
//! share an id, and the membership log reports a message from a node with our own id.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};

use super::membership::valid_id;

/// Why the node file cannot be used: Redis's words where Redis has them.
#[derive(Debug, thiserror::Error)]
pub enum NodeFileError {
    #[error("Can't open the cluster configuration file {path}: {err}")]
    Open { path: String, err: std::io::Error },
    #[error("Unrecoverable error: corrupted cluster config file \"{path}\": {line}")]
    Corrupt { path: String, line: String },
    #[error("Writing the cluster configuration file {path}: {err}")]
    Write { path: String, err: std::io::Error },
}

/// The identity read from (or written to) the file.
#[derive(Debug)]
pub struct NodeFile {
    pub id: String,
    pub shard_id: String,
    /// Kept open while the node runs.
    _file: File,
}

/// A new node id: 160 random bits in hex, as Redis's `getRandomHexChars`.
pub(crate) fn random_id() -> String {
    let mut b = [0u8; 20];
    // getrandom fails only on systems without an entropy source; fall back to the clock.
    if getrandom::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        b[..16].copy_from_slice(&t.to_le_bytes());
        b[16..].copy_from_slice(&std::process::id().to_le_bytes());
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Reads the `myself` line: `<id> <addr>[,hostname][,shard-id=<id>] myself,master …`.
fn parse(text: &str) -> Result<Option<(String, Option<String>)>, String> {
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.is_empty() || f[0] == "vars" {
            continue;
        }
        if f.len() < 3 || !valid_id(f[0]) {
            return Err(line.to_string());
        }
        if !f[2].split(',').any(|flag| flag == "myself") {
            continue;
        }
        let shard = f[1]
            .split(',')
            .find_map(|aux| aux.strip_prefix("shard-id="))
            .filter(|s| valid_id(s))
            .map(str::to_string);
        return Ok(Some((f[0].to_string(), shard)));
    }
    Ok(None)
}

impl NodeFile {
    /// Opens (creating if needed) `path`, reading the identity in it or writing a new
    /// one. `addr` is the `ip:port` written for readers of the file.
    pub fn open(path: &str, addr: &str) -> Result<NodeFile, NodeFileError> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|err| NodeFileError::Open {
                path: path.to_string(),
                err,
            })?;
        let mut text = String::new();
        let _ = file.read_to_string(&mut text);
        let found = parse(&text).map_err(|line| NodeFileError::Corrupt {
            path: path.to_string(),
            line,
        })?;
        let (id, shard_id) = match found {
            Some((id, Some(shard))) => (id, shard),
            Some((id, None)) => (id, random_id()),
            None => (random_id(), random_id()),
        };
        let body = format!(
            "{id} {addr}@0,,shard-id={shard_id} myself,master - 0 0 0 connected\nvars currentEpoch 0 lastVoteEpoch 0\n"
        );
        if text != body {
            let write = |f: &mut File| -> std::io::Result<()> {
                f.set_len(0)?;
                f.seek(SeekFrom::Start(0))?;
                f.write_all(body.as_bytes())?;
                f.sync_all()
            };
            write(&mut file).map_err(|err| NodeFileError::Write {
                path: path.to_string(),
                err,
            })?;
        }
        Ok(NodeFile {
            id,
            shard_id,
            _file: file,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> String {
        let dir =
            std::env::temp_dir().join(format!("pubsubd-nodefile-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        dir.display().to_string()
    }

    #[test]
    fn identity_survives_a_restart() {
        let path = temp("restart");
        let first = NodeFile::open(&path, "127.0.0.1:7000").unwrap();
        let (id, shard) = (first.id.clone(), first.shard_id.clone());
        assert!(valid_id(&id) && valid_id(&shard) && id != shard);
        drop(first);
        let again = NodeFile::open(&path, "127.0.0.1:7000").unwrap();
        assert_eq!((again.id.clone(), again.shard_id.clone()), (id, shard));
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn reads_a_redis_nodes_conf() {
        let text = "e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@40001,,tls-port=0,shard-id=a1e4f5a22b131e9c5fbfc1ce66ee9f26f168a742 myself,master - 0 0 1 connected 0-5460\nvars currentEpoch 3 lastVoteEpoch 0\n";
        assert_eq!(
            parse(text).unwrap(),
            Some((
                "e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca".into(),
                Some("a1e4f5a22b131e9c5fbfc1ce66ee9f26f168a742".into())
            ))
        );
        assert!(parse("garbage line here\n").is_err());
    }
}
