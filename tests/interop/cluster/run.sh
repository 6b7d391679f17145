#!/usr/bin/env bash
# Cluster interop: cluster-aware clients as their users drive them — ioredis `Redis.Cluster`,
# node-redis `createCluster`, redis-py `RedisCluster`, the Socket.IO sharded adapter over a
# node-redis cluster client, `redis-cli -c` and `redis-cli --cluster check`.
#
#   tests/interop/cluster/run.sh --server redis                   # control: a 3-node Redis Cluster
#   tests/interop/cluster/run.sh --server pubsubd --bin PATH      # one pubsubd node, cluster-enabled
#   tests/interop/cluster/run.sh --server pubsubd --bin PATH --nodes 3
#       # three pubsubd nodes on one nats-server (`backbone`); the cases also kill a node
#       # (SIGKILL) and restart it (ctl.sh), and every client must recover
#
# The control is three redis-server processes with `--cluster-enabled yes` on free loopback
# ports, joined by `redis-cli --cluster create … --cluster-replicas 0 --cluster-yes`, so the
# cases check the clients' real expectations. Uses the clients tests/interop/run.sh installs
# (and installs them the same way if missing). Every server runs in a temporary directory (its
# nodes.conf lives there) and is stopped by PID. Prints `PASS name` / `FAIL name: reason` per
# case and ends with `N passed, M failed`; exits non-zero if any case failed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
interop=$(cd "$here/.." && pwd)
server="" bin="" nodes_wanted=1
while (($#)); do
    case $1 in
        --server) server=${2:-}; shift 2 ;;
        --bin) bin=${2:-}; shift 2 ;;
        --nodes) nodes_wanted=${2:-}; shift 2 ;;
        *) echo "usage: $0 --server redis|pubsubd [--bin PATH]" >&2; exit 2 ;;
    esac
done
[[ $server == redis || ($server == pubsubd && -x $bin) ]] ||
    { echo "usage: $0 --server redis|pubsubd [--bin PATH]" >&2; exit 2; }
[[ -n $bin ]] && bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

# Clients, as run.sh installs them.
if [[ ! -x $interop/.venv/bin/python ]]; then
    python3 -m venv "$interop/.venv" &&
        "$interop/.venv/bin/pip" install --quiet --disable-pip-version-check -r "$interop/requirements.txt" ||
        { echo "installing Python clients failed" >&2; exit 2; }
fi
if [[ ! -d $interop/node/node_modules/ioredis ]]; then
    (cd "$interop/node" && npm ci --no-audit --no-fund --loglevel=error >&2) ||
        { echo "installing Node clients failed" >&2; exit 2; }
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/interop-cluster.XXXXXX")
export INTEROP_CLUSTER_STATE=$dir INTEROP_CLUSTER_CTL=$here/ctl.sh
nats_pid=""
failed=0 passed=0
cleanup() {
    local d
    for d in "$dir"/node*; do
        [[ -f $d/pid ]] && kill "$(cat "$d/pid")" 2>/dev/null
    done
    [[ -n $nats_pid ]] && kill "$nats_pid" 2>/dev/null
    wait 2>/dev/null
    if ((failed > 0)); then echo "server logs kept in $dir" >&2; else rm -rf "$dir"; fi
}
trap cleanup EXIT

# A free loopback port at most 55535: a Redis Cluster node also listens on port + 10000.
free_port() {
    python3 -c '
import socket
while True:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    if s.getsockname()[1] <= 55535:
        print(s.getsockname()[1])
        break
'
}
wait_ping() {
    local i
    for ((i = 0; i < 200; i++)); do
        redis-cli -p "$1" PING 2>/dev/null | grep -q PONG && return 0
        sleep 0.05
    done
    echo "nothing answers PING on port $1" >&2
    return 1
}

# node N PORT COMMAND...: records node N's command line for ctl.sh and starts it.
node() {
    local n=$1 port=$2
    shift 2
    mkdir -p "$dir/node$n"
    echo "$port" >"$dir/node$n/port"
    printf '%s\n' "$@" >"$dir/node$n/cmd"
    "$here/ctl.sh" start "$n" || { tail -n 20 "$dir/node$n/log" >&2; exit 2; }
}

ports=()
if [[ $server == redis ]]; then
    for n in 1 2 3; do
        port=$(free_port)
        ports+=("$port")
        node "$n" "$port" redis-server --port "$port" --bind 127.0.0.1 --save '' \
            --appendonly no --cluster-enabled yes --cluster-config-file nodes.conf \
            --cluster-node-timeout 5000
    done
    for port in "${ports[@]}"; do wait_ping "$port" || exit 2; done
    redis-cli --cluster create "${ports[@]/#/127.0.0.1:}" --cluster-replicas 0 --cluster-yes \
        >"$dir/create.log" 2>&1 || { cat "$dir/create.log" >&2; exit 2; }
    # Ready when every node reports the whole map and the cluster as ok.
    for port in "${ports[@]}"; do
        for ((i = 0; i < 200; i++)); do
            redis-cli -p "$port" CLUSTER INFO | grep -q '^cluster_state:ok' &&
                [[ $(redis-cli -p "$port" CLUSTER NODES | grep -c master) == 3 ]] && break
            sleep 0.05
        done
    done
else
    backbone=()
    if ((nodes_wanted > 1)); then
        command -v nats-server >/dev/null || { echo "nats-server is not installed" >&2; exit 2; }
        nats_port=$(free_port)
        nats-server -a 127.0.0.1 -p "$nats_port" >"$dir/nats.log" 2>&1 &
        nats_pid=$!
        for ((i = 0; i < 200; i++)); do
            (exec 3<>"/dev/tcp/127.0.0.1/$nats_port") 2>/dev/null && break
            sleep 0.05
        done
        backbone=(--backbone "nats://127.0.0.1:$nats_port")
    fi
    for ((n = 1; n <= nodes_wanted; n++)); do
        port=$(free_port)
        ports+=("$port")
        node "$n" "$port" "$bin" --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
            --cluster-config-file nodes.conf --cluster-node-timeout 2000 "${backbone[@]}"
        wait_ping "$port" || exit 2
    done
    # Ready when every node sees all the others.
    for port in "${ports[@]}"; do
        for ((i = 0; i < 200; i++)); do
            redis-cli -p "$port" CLUSTER INFO | grep -q "^cluster_known_nodes:$nodes_wanted" && break
            sleep 0.05
        done
    done
    # With several pubsubd nodes, the cases also kill one and restart it.
    ((nodes_wanted > 1)) && export INTEROP_CLUSTER_FAILOVER=1
fi
echo "cluster: $server on 127.0.0.1:${ports[*]}" >&2

nodes=$(printf '127.0.0.1:%s,' "${ports[@]}")
export INTEROP_CLUSTER_NODES=${nodes%,} INTEROP_SERVER=$server

count() {
    local line
    while IFS= read -r line; do
        case $line in
            "PASS "*) echo "$line"; ((passed++)) ;;
            "FAIL "*) echo "$line"; ((failed++)) ;;
            *) echo "[$1] $line" >&2 ;;
        esac
    done
}
# run LABEL COMMAND...: one client program; a non-zero exit without a FAIL line is a failure.
run() {
    local label=$1 out="$dir/$1.out" rc before=$failed
    shift
    timeout -k 5 240 "$@" >"$out" 2>&1
    rc=$?
    count "$label" <"$out"
    if ((rc != 0 && failed == before)); then
        echo "FAIL $label: exited with status $rc"
        ((failed++))
    fi
}
run redis-py "$interop/.venv/bin/python" "$interop/py/test_cluster.py"
run node node "$interop/node/cluster.mjs"
run redis-cli bash "$here/test_redis_cli_cluster.sh"

echo "$passed passed, $failed failed"
((failed == 0))
