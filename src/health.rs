//! `pubsubd --health-check [[host:]port]`: the container's health probe. It sends `PING` and
//! is healthy when the server answers `+PONG`, or `-NOAUTH` (a password is set: the server is
//! up and answering), within two seconds. No redis-cli is needed in the image.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
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

/// Probes the server; `Ok` carries its reply line, `Err` why it is not healthy.
pub fn probe(spec: &str) -> Result<String, String> {
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
    s.write_all(b"PING\r\n").map_err(|e| format!("{t}: {e}"))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 256];
    while !buf.ends_with(b"\r\n") && buf.len() < 4096 {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("{t}: {e}")),
        }
    }
    let line = String::from_utf8_lossy(&buf).trim_end().to_string();
    if line == "+PONG" || line.starts_with("-NOAUTH") {
        Ok(line)
    } else {
        Err(format!("{t}: unexpected reply {line:?}"))
    }
}
