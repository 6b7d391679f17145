#!/usr/bin/env bash
# Cross-node interop: real client libraries on two pubsubd nodes joined by a NATS backbone.
#
#   tests/interop/backbone/run.sh --bin PATH/TO/pubsubd
#
# Starts nats-server (with its monitoring port) and two pubsubd nodes on free loopback ports,
# runs py/cross_node.py (redis-py subscriber on node A, ioredis publisher on node B) and
# node/socketio_cross.mjs (Socket.IO servers on A and B broadcasting to each other's sockets),
# prints `PASS name` / `FAIL name: reason` per case and `N passed, M failed`, and stops every
# process by PID. The clients are the ones tests/interop/run.sh installs (run it first).
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
interop=$(dirname "$here")
bin=""
while (($#)); do
    case $1 in
        --bin) bin=${2:-}; shift 2 ;;
        *) sed -n '2,10p' "$0" >&2; exit 2 ;;
    esac
done
[[ -x $bin ]] || { echo "--bin must name the pubsubd binary" >&2; exit 2; }
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
[[ -x $interop/.venv/bin/python && -d $interop/node/node_modules ]] ||
    { echo "clients not installed: run tests/interop/run.sh first" >&2; exit 2; }
nats=$(command -v nats-server || echo /usr/sbin/nats-server)
[[ -x $nats ]] || { echo "nats-server is not installed" >&2; exit 2; }

state=$(mktemp -d "${TMPDIR:-/tmp}/interop-backbone.XXXXXX")
pids=()
failed=0
passed=0
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    if ((failed > 0)); then echo "logs kept in $state" >&2; else rm -rf "$state"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_port() {
    local i
    for ((i = 0; i < 200; i++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "nothing listens on 127.0.0.1:$1" >&2
    return 1
}
wait_connected() {
    local i
    for ((i = 0; i < 200; i++)); do
        redis-cli -p "$1" INFO backbone 2>/dev/null | grep -q '^backbone_status:connected' && return 0
        sleep 0.05
    done
    echo "node on port $1 did not connect to the backbone" >&2
    return 1
}

np=$(free_port)
nm=$(free_port)
"$nats" -a 127.0.0.1 -p "$np" -m "$nm" >"$state/nats.log" 2>&1 &
pids+=($!)
wait_port "$np" || exit 1
pa=$(free_port)
pb=$(free_port)
for p in "$pa" "$pb"; do
    "$bin" --bind 127.0.0.1 --port "$p" --backbone "nats://127.0.0.1:$np" >"$state/node-$p.log" 2>&1 &
    pids+=($!)
done
for p in "$pa" "$pb"; do
    wait_port "$p" && wait_connected "$p" || { failed=1; echo "0 passed, 1 failed"; exit 1; }
done
echo "nats-server on $np (monitor $nm), pubsubd nodes on $pa (A) and $pb (B)" >&2
export INTEROP_HOST=127.0.0.1 INTEROP_PORT_A=$pa INTEROP_PORT_B=$pb INTEROP_NATS_MONITOR=$nm
export NODE_BIN
NODE_BIN=$(command -v node)

run_program() {
    local label=$1 out rc line
    shift
    out=$(mktemp "$state/out.XXXXXX")
    timeout -k 5 120 "$@" >"$out" 2>"$state/$label.err"
    rc=$?
    sed "s/^/[$label] /" "$state/$label.err" >&2
    local n_pass=0 n_fail=0
    while IFS= read -r line; do
        case $line in
            "PASS "*) echo "$line"; ((n_pass++)) ;;
            "FAIL "*) echo "$line"; ((n_fail++)) ;;
            *) echo "[$label] $line" >&2 ;;
        esac
    done <"$out"
    if ((rc != 0 && n_fail == 0)); then
        echo "FAIL $label: exited with status $rc"
        ((n_fail++))
    elif ((n_pass + n_fail == 0)); then
        echo "FAIL $label: reported no cases"
        ((n_fail++))
    fi
    passed=$((passed + n_pass))
    failed=$((failed + n_fail))
}

run_program redis-py "$interop/.venv/bin/python" "$interop/py/cross_node.py"
run_program socketio "$NODE_BIN" "$interop/node/socketio_cross.mjs"

echo "$passed passed, $failed failed"
((failed == 0))
