#!/usr/bin/env bash
# Runs the whole test suite: unit, property and integration tests, the differential test against
# Debian's redis-server, and the interop suite of real client libraries (run against
# redis-server as a control, then against pubsubd). Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need_apt+=(redis-tools)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3 python3-venv)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
# tests/robustness/half_open.rs puts a client in a network namespace (ip netns, veth).
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
# The backbone tests run nats-server (Debian's package installs it in /usr/sbin).
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || need_apt+=(nats-server)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing ${need_apt[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# The Debian package starts a system redis-server on 6379; the tests use their own ports.

echo "== cargo test (unit, property, integration, differential)"
cargo build --quiet --bin pubsubd
bin="${CARGO_TARGET_DIR:-target}/debug/pubsubd"
cargo test 2>&1

echo "== interop suite against redis-server (control)"
tests/interop/run.sh --server redis

echo "== interop suite against pubsubd"
tests/interop/run.sh --server pubsubd --bin "$bin"

echo "== cross-node interop: two pubsubd nodes on a NATS backbone"
tests/interop/backbone/run.sh --bin "$bin"

echo "== TLS and ACL interop against redis-server (control)"
tests/interop/tls/run.sh --server redis

echo "== TLS and ACL interop against pubsubd"
tests/interop/tls/run.sh --server pubsubd --bin "$bin"

echo "== cluster interop against a three-node Redis Cluster (control)"
tests/interop/cluster/run.sh --server redis

echo "== cluster interop against one pubsubd node"
tests/interop/cluster/run.sh --server pubsubd --bin "$bin"

echo "== cluster interop against three pubsubd nodes on a NATS backbone (with a node killed and restarted)"
tests/interop/cluster/run.sh --server pubsubd --bin "$bin" --nodes 3
