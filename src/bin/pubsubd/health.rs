//! `pubsubd --health-check [[host:]port]`: the container's health probe. It sends `PING` and
//! is healthy when the server answers `+PONG`, or `-NOAUTH` (a password is set: the server is
//! up and answering), within two seconds. No redis-cli is needed in the image. When the
//! container passes the password in `REDIS_PASSWORD` or `REDIS_PASSWORD_FILE`, the probe
//! authenticates with it first and expects `+PONG`.
//!
//! Without a port, the probe finds the ports itself when the container's PID 1 is pubsubd:
//! the TCP sockets that process listens on (from `/proc/1/fd` and `/proc/1/net/tcp{,6}`), so a
//! mounted redis.conf with another `port` needs no health-check override. It is healthy when
//! any of them answers (a `tls-port` does not answer a plain PING; a plain `port` beside it
//! does). Elsewhere it probes 6379.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Time allowed for connecting and for the reply.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// `6379`, `host:6379` or `[::1]:6379` → something to connect to (host defaults to 127.0.0.1).
fn target(spec: &str) -> String {
    if spec.parse::<u16>().is_ok() {
        format!("127.0.0.1:{spec}")
    } else {
        spec.to_string()
    }
}

/// Probes the server; `Ok` carries its reply line, `Err` why it is not healthy. With a
/// password (`REDIS_PASSWORD[_FILE]`, which the container's server also reads), it sends
/// `AUTH` first, so a healthy server answers `+PONG`; a refused password is unhealthy, since
/// clients given the same password would be refused too.
pub fn probe(spec: &str, password: Option<&str>) -> Result<String, String> {
    let t = target(spec);
    let addr = t
        .to_socket_addrs()
        .map_err(|e| format!("{t}: {e}"))?
        .next()
        .ok_or_else(|| format!("{t}: no address"))?;
    let mut s =
        TcpStream::connect_timeout(&addr, PROBE_TIMEOUT).map_err(|e| format!("{t}: {e}"))?;
    s.set_read_timeout(Some(PROBE_TIMEOUT)).ok();
    s.set_write_timeout(Some(PROBE_TIMEOUT)).ok();
    let mut request = Vec::new();
    if let Some(pw) = password {
        request.extend_from_slice(format!("*2\r\n$4\r\nAUTH\r\n${}\r\n", pw.len()).as_bytes());
        request.extend_from_slice(pw.as_bytes());
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
    s.write_all(&request).map_err(|e| format!("{t}: {e}"))?;
    let mut lines = read_lines(&mut s, if password.is_some() { 2 } else { 1 })
        .map_err(|e| format!("{t}: {e}"))?;
    let line = lines.pop().unwrap_or_default();
    if let Some(auth) = lines.pop() {
        // No password configured on the server: Redis 7 says so and the PING still answers.
        let unneeded = auth.starts_with("-ERR AUTH <password> called without any password");
        if auth != "+OK" && !unneeded {
            return Err(format!("{t}: AUTH refused: {auth}"));
        }
    }
    if line == "+PONG" || line.starts_with("-NOAUTH") {
        Ok(line)
    } else {
        Err(format!("{t}: unexpected reply {line:?}"))
    }
}

/// Reads `n` reply lines (fewer if the server closes), without their `\r\n`.
fn read_lines(s: &mut TcpStream, n: usize) -> std::io::Result<Vec<String>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 256];
    while buf.windows(2).filter(|w| w == b"\r\n").count() < n && buf.len() < 4096 {
        match s.read(&mut chunk)? {
            0 => break,
            k => buf.extend_from_slice(&chunk[..k]),
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    Ok(text
        .split_terminator("\r\n")
        .take(n)
        .map(str::to_string)
        .collect())
}

/// Probes each target in turn; healthy as soon as one answers.
pub fn probe_any(specs: &[String], password: Option<&str>) -> Result<String, String> {
    let mut errors = Vec::new();
    for spec in specs {
        match probe(spec, password) {
            Ok(line) => return Ok(line),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        return Err("nothing to probe".into());
    }
    Err(errors.join("; "))
}

/// The addresses to probe for the TCP sockets process `pid` listens on: its own address, with
/// a wildcard (`0.0.0.0`, `::`) replaced by loopback. Needs read access to `/proc/<pid>/fd`
/// (the same user, or root).
pub fn listening_addrs(pid: u32) -> std::io::Result<Vec<SocketAddr>> {
    let mut inodes = HashSet::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))? {
        let Ok(link) = std::fs::read_link(entry?.path()) else {
            continue;
        };
        let link = link.to_string_lossy();
        if let Some(n) = link
            .strip_prefix("socket:[")
            .and_then(|r| r.strip_suffix(']'))
            .and_then(|n| n.parse::<u64>().ok())
        {
            inodes.insert(n);
        }
    }
    let mut out = Vec::new();
    for (file, v6) in [("tcp", false), ("tcp6", true)] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{file}")) else {
            continue;
        };
        for (addr, inode) in parse_proc_net_tcp(&text, v6) {
            if inodes.contains(&inode) && !out.contains(&addr) {
                out.push(addr);
            }
        }
    }
    Ok(out)
}

/// The listening sockets of a `/proc/net/tcp` (or `tcp6`) table, each with its inode, their
/// wildcard addresses turned into loopback so that they can be connected to.
pub fn parse_proc_net_tcp(text: &str, v6: bool) -> Vec<(SocketAddr, u64)> {
    const LISTEN: &str = "0A";
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || f[3] != LISTEN {
                return None;
            }
            let (host, port) = f[1].split_once(':')?;
            let port = u16::from_str_radix(port, 16).ok()?;
            let ip = if v6 {
                IpAddr::V6(proc_ipv6(host)?)
            } else {
                IpAddr::V4(proc_ipv4(host)?)
            };
            let ip = match ip {
                IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
                ip => ip,
            };
            Some((SocketAddr::new(ip, port), f[9].parse().ok()?))
        })
        .collect()
}

/// The kernel prints each 32-bit word of the address in network byte order as a native integer.
fn proc_word(hex: &str) -> Option<[u8; 4]> {
    Some(u32::from_str_radix(hex, 16).ok()?.to_ne_bytes())
}

fn proc_ipv4(hex: &str) -> Option<Ipv4Addr> {
    (hex.len() == 8).then_some(())?;
    Some(Ipv4Addr::from(proc_word(hex)?))
}

fn proc_ipv6(hex: &str) -> Option<Ipv6Addr> {
    (hex.len() == 32).then_some(())?;
    let mut b = [0u8; 16];
    for i in 0..4 {
        b[i * 4..i * 4 + 4].copy_from_slice(&proc_word(hex.get(i * 8..i * 8 + 8)?)?);
    }
    Some(Ipv6Addr::from(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Lines as Linux prints them on x86-64 (little-endian).
    #[cfg(target_endian = "little")]
    #[test]
    fn proc_net_tcp_listeners_with_wildcards_as_loopback() {
        let v4 = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:18EB 00000000:0000 0A 00000000:00000000 00:00000000 00000000   999        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1A0A 00000000:0000 0A 00000000:00000000 00:00000000 00000000   999        0 4243 1 0000000000000000 100 0 0 10 0
   2: 0100007F:18EB 0100007F:C350 01 00000000:00000000 00:00000000 00000000   999        0 4244 1 0000000000000000 20 4 30 10 -1
   3: 0500000A:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000   999        0 4245 1 0000000000000000 100 0 0 10 0
";
        assert_eq!(
            parse_proc_net_tcp(v4, false),
            vec![
                ("127.0.0.1:6379".parse().unwrap(), 4242),
                ("127.0.0.1:6666".parse().unwrap(), 4243),
                ("10.0.0.5:8080".parse().unwrap(), 4245),
            ],
            "wildcard → loopback, established sockets skipped"
        );
        let v6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:18EB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000   999        0 5000 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:18EC 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000   999        0 5001 1 0000000000000000 100 0 0 10 0
";
        assert_eq!(
            parse_proc_net_tcp(v6, true),
            vec![
                ("[::1]:6379".parse().unwrap(), 5000),
                ("[::1]:6380".parse().unwrap(), 5001),
            ]
        );
        assert!(parse_proc_net_tcp("header\n   0: garbage\n", false).is_empty());
    }
}
