#!/usr/bin/env bash
# Interop suite: drives a server with real client libraries, as their users' code does.
#
#   tests/interop/run.sh --server redis                      # control: Debian's redis-server
#   tests/interop/run.sh --server pubsubd --bin PATH/TO/pubsubd
#   ... [--only py,ioredis,node-redis,socketio,cli]          # run some programs only
#   ... [--trace FILE]    # relay through trace_proxy.py, logging every command and reply
#
# Installs the pinned clients if missing (Python venv in .venv, `npm ci` in node/), starts
# the server on a free port of 127.0.0.1, runs every client program against it, prints one
# line per case (`PASS name` / `FAIL name: reason`) and ends with `N passed, M failed`.
# Exits non-zero if any case failed.
#
# Each client program gets:
#   INTEROP_HOST, INTEROP_PORT   where the server listens
#   INTEROP_SERVER               "redis" or "pubsubd"
#   INTEROP_SERVER_CTL           server.sh; `$INTEROP_SERVER_CTL restart` restarts the server
#                                on the same port (also: stop, start)
#   INTEROP_STATE                state directory that server.sh reads (port, pid, log)
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
server=""
bin=""
only="py,ioredis,node-redis,socketio,cli"
trace=""
# Upper bound for one client program; each case inside has its own, much shorter, timeout.
program_timeout=${INTEROP_PROGRAM_TIMEOUT:-300}

usage() {
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

while (($#)); do
    case $1 in
        --server) server=${2:-}; shift 2 || usage ;;
        --bin) bin=${2:-}; shift 2 || usage ;;
        --only) only=${2:-}; shift 2 || usage ;;
        --trace) trace=${2:-}; shift 2 || usage ;;
        -h | --help) usage ;;
        *) echo "unknown argument: $1" >&2; usage ;;
    esac
done

case $server in
    redis)
        command -v redis-server >/dev/null || { echo "redis-server is not installed" >&2; exit 2; }
        ;;
    pubsubd)
        [[ -n $bin ]] || { echo "--server pubsubd needs --bin PATH" >&2; exit 2; }
        [[ -x $bin ]] || { echo "not an executable: $bin" >&2; exit 2; }
        bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
        ;;
    *) usage ;;
esac
command -v redis-cli >/dev/null || { echo "redis-cli is not installed" >&2; exit 2; }

# --- clients -----------------------------------------------------------------------------

sha() { sha256sum "$1" | cut -d' ' -f1; }

install_python() {
    local venv=$here/.venv stamp=$here/.venv/.interop-stamp want
    want=$(sha "$here/requirements.txt")
    if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then return 0; fi
    echo "installing Python clients into $venv" >&2
    rm -rf "$venv"
    python3 -m venv "$venv" &&
        "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt" &&
        echo "$want" >"$stamp"
}

install_node() {
    local dir=$here/node stamp=$here/node/node_modules/.interop-stamp want
    want=$(sha "$dir/package-lock.json")
    if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then return 0; fi
    echo "installing Node clients (npm ci) in $dir" >&2
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2) &&
        echo "$want" >"$stamp"
}

wants() { [[ ,$only, == *,$1,* ]]; }

if wants py; then install_python || { echo "installing Python clients failed" >&2; exit 2; }; fi
if wants ioredis || wants node-redis || wants socketio; then
    install_node || { echo "installing Node clients failed" >&2; exit 2; }
fi

# --- server ------------------------------------------------------------------------------

state=$(mktemp -d "${TMPDIR:-/tmp}/interop.XXXXXX")
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo "$server" >"$state/kind"
echo "$port" >"$state/port"
echo "$bin" >"$state/bin"
export INTEROP_STATE=$state INTEROP_HOST=127.0.0.1 INTEROP_PORT=$port INTEROP_SERVER=$server
export INTEROP_SERVER_CTL=$here/server.sh

proxy_pid=""
cleanup() {
    [[ -n $proxy_pid ]] && kill "$proxy_pid" 2>/dev/null
    "$here/server.sh" stop >/dev/null 2>&1
    if ((failed > 0)); then
        echo "server log kept at $state/server.log" >&2
    else
        rm -rf "$state"
    fi
}
passed=0
failed=0
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! "$here/server.sh" start; then
    echo "could not start $server on port $port" >&2
    failed=1
    echo "0 passed, 1 failed"
    exit 1
fi
echo "server: $server on 127.0.0.1:$port ($(redis-cli -p "$port" INFO server 2>/dev/null |
    tr -d '\r' | sed -n 's/^redis_version:/version /p'))" >&2

if [[ -n $trace ]]; then
    : >"$trace"
    python3 "$here/trace_proxy.py" "$port" "$trace" >"$state/proxy_port" &
    proxy_pid=$!
    for ((i = 0; i < 100; i++)); do
        [[ -s $state/proxy_port ]] && break
        sleep 0.05
    done
    [[ -s $state/proxy_port ]] || { echo "trace proxy did not start" >&2; exit 2; }
    # Clients talk to the proxy; server.sh keeps (re)starting the server on the real port.
    INTEROP_PORT=$(cat "$state/proxy_port")
    echo "tracing every connection through 127.0.0.1:$INTEROP_PORT into $trace" >&2
fi

# --- programs ----------------------------------------------------------------------------

# run_program LABEL COMMAND...: runs one client program, echoes and counts its case lines.
run_program() {
    local label=$1 out err rc started=$SECONDS
    shift
    out=$(mktemp "$state/out.XXXXXX")
    err=$(mktemp "$state/err.XXXXXX")
    # Case lines go to stdout and are counted; anything else the program prints goes to
    # stderr so a failing run shows what the library complained about.
    timeout -k 5 "$program_timeout" "$@" >"$out" 2>"$err"
    rc=$?
    sed "s/^/[$label] /" "$err" >&2
    local line n_pass=0 n_fail=0
    while IFS= read -r line; do
        case $line in
            "PASS "*) echo "$line"; ((n_pass++)) ;;
            "FAIL "*) echo "$line"; ((n_fail++)) ;;
            *) echo "[$label] $line" >&2 ;;
        esac
    done <"$out"
    if ((rc == 124 || rc == 137)); then
        echo "FAIL $label: program timed out after ${program_timeout}s"
        ((n_fail++))
    elif ((rc != 0 && n_fail == 0)); then
        echo "FAIL $label: program exited with status $rc without reporting a failed case"
        ((n_fail++))
    elif ((n_pass + n_fail == 0)); then
        echo "FAIL $label: program reported no cases"
        ((n_fail++))
    fi
    passed=$((passed + n_pass))
    failed=$((failed + n_fail))
    echo "[$label] $n_pass passed, $n_fail failed in $((SECONDS - started))s" >&2
    # A case may have left the server stopped (a failed restart); the next program needs it.
    if ! "$here/server.sh" status; then
        echo "[$label] server is down after the program; starting it again" >&2
        "$here/server.sh" stop >/dev/null 2>&1
        "$here/server.sh" start || echo "[$label] could not start the server again" >&2
    fi
}

node_bin=$(command -v node)
if wants py; then run_program redis-py "$here/.venv/bin/python" "$here/py/test_redis_py.py"; fi
if wants ioredis; then run_program ioredis "$node_bin" "$here/node/ioredis.mjs"; fi
if wants node-redis; then run_program node-redis "$node_bin" "$here/node/node_redis.mjs"; fi
if wants socketio; then run_program socketio "$node_bin" "$here/node/socketio.mjs"; fi
if wants cli; then run_program redis-cli bash "$here/cli/test_redis_cli.sh"; fi

echo "$passed passed, $failed failed"
((failed == 0))
