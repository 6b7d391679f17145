//! Whether pubsubd is a container's main process, and the start-up warning for a container
//! whose server only listens on loopback: connections through published ports (`docker run -p`,
//! a Kubernetes Service) arrive on the container's own interface, so a mounted redis.conf that
//! keeps `bind 127.0.0.1` makes the server unreachable while its health check (which connects
//! from inside) still passes.
//!
//! Detection is deliberately narrow, so a developer running pubsubd from a shell inside a dev
//! container is not warned: pubsubd is PID 1 of its PID namespace (an entrypoint that `exec`s
//! it), or its parent is outside the namespace (`docker exec`) or is the namespace's init
//! (`docker run --init`, tini) while the usual markers say "container" (`/.dockerenv`,
//! `/run/.containerenv`, `$container`, `$KUBERNETES_SERVICE_HOST`, a container runtime's name
//! in `/proc/self/cgroup`).

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

/// Words container runtimes leave in a cgroup v1 path (`/docker/<id>`, `/kubepods/…`).
const CGROUP_HINTS: &[&str] = &["docker", "kubepods", "containerd", "libpod", "lxc"];

/// True when this process is a container's main process (see the module doc).
pub fn is_main_process() -> bool {
    decide(
        std::process::id(),
        std::os::unix::process::parent_id(),
        markers,
    )
}

fn decide(pid: u32, ppid: u32, markers: impl FnOnce() -> bool) -> bool {
    pid == 1 || (ppid <= 1 && markers())
}

fn markers() -> bool {
    Path::new("/.dockerenv").exists()
        || Path::new("/run/.containerenv").exists()
        || std::env::var_os("container").is_some()
        || std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
        || std::fs::read_to_string("/proc/self/cgroup")
            .is_ok_and(|c| CGROUP_HINTS.iter().any(|h| c.contains(h)))
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// The warning to log when every TCP listener is on loopback (`None` when one is not, or there
/// is no TCP listener at all: a unix socket alone is a deliberate choice).
pub fn loopback_only_warning(
    tcp: &[SocketAddr],
    protected_mode: bool,
    has_password: bool,
) -> Option<String> {
    if tcp.is_empty() || !tcp.iter().all(|a| is_loopback(a.ip())) {
        return None;
    }
    let addrs: Vec<String> = tcp.iter().map(|a| a.to_string()).collect();
    let mut text = format!(
        "WARNING: running in a container but listening on loopback only ({}): connections \
         through published ports (docker run -p, a Kubernetes Service) cannot reach it. \
         Set `bind * -::*` (or `bind 0.0.0.0`) in redis.conf, or pass --bind 0.0.0.0",
        addrs.join(" ")
    );
    if protected_mode && !has_password {
        text.push_str(
            "; with `protected-mode yes` and no password, clients from outside are then \
             refused: also set a password (requirepass, REDIS_PASSWORD) or `protected-mode no`",
        );
    }
    text.push('.');
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_1_is_a_main_process_whatever_the_markers() {
        assert!(decide(1, 0, || false));
    }

    #[test]
    fn a_child_of_init_or_of_another_namespace_needs_a_marker() {
        assert!(decide(7, 1, || true), "docker run --init");
        assert!(decide(7, 0, || true), "docker exec");
        assert!(!decide(7, 1, || false), "a daemon on a host");
        assert!(
            !decide(7, 42, || true),
            "run from a shell in a dev container"
        );
    }

    #[test]
    fn warns_only_when_every_tcp_listener_is_loopback() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(loopback_only_warning(&[], true, false).is_none());
        assert!(loopback_only_warning(&[a("0.0.0.0:6379")], true, false).is_none());
        assert!(
            loopback_only_warning(&[a("127.0.0.1:6379"), a("[::]:6379")], true, false).is_none()
        );
        let w =
            loopback_only_warning(&[a("127.0.0.1:6379"), a("[::1]:6379")], false, false).unwrap();
        assert_eq!(
            w,
            "WARNING: running in a container but listening on loopback only (127.0.0.1:6379 \
             [::1]:6379): connections through published ports (docker run -p, a Kubernetes \
             Service) cannot reach it. Set `bind * -::*` (or `bind 0.0.0.0`) in redis.conf, or \
             pass --bind 0.0.0.0."
        );
        let w = loopback_only_warning(&[a("[::ffff:127.0.0.1]:6379")], true, false).unwrap();
        assert!(w.ends_with(
            "also set a password (requirepass, REDIS_PASSWORD) or `protected-mode no`."
        ));
        let w = loopback_only_warning(&[a("127.0.0.2:6379")], true, true).unwrap();
        assert!(w.ends_with("pass --bind 0.0.0.0."));
    }
}
