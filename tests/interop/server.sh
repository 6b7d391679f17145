#!/usr/bin/env bash
# Starts, stops and restarts the server under test on a fixed port.
#
#   server.sh start | stop | restart | wait-up | status
#
# Everything it needs is read from the state directory named by $INTEROP_STATE:
#   kind  "redis" or "pubsubd"      bin   path of the pubsubd binary (pubsubd only)
#   port  TCP port on 127.0.0.1     pid   written here: PID of the running server
#   server.log                      stdout and stderr of every server started
#
# run.sh creates that directory and exports INTEROP_STATE and INTEROP_SERVER_CTL (this
# script's path) to every client program, so a case can restart the server on the same
# port, e.g. to check that a client resubscribes after a server restart.
set -u

state=${INTEROP_STATE:?INTEROP_STATE must name the state directory}
kind=$(cat "$state/kind")
port=$(cat "$state/port")

# Succeeds once something accepts TCP connections on the port.
port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

wait_up() {
    local i
    for ((i = 0; i < 200; i++)); do
        if port_open; then return 0; fi
        if [[ -f $state/pid ]] && ! kill -0 "$(cat "$state/pid")" 2>/dev/null; then
            echo "server.sh: server exited during start-up; last log lines:" >&2
            tail -n 20 "$state/server.log" >&2
            return 1
        fi
        sleep 0.05
    done
    echo "server.sh: nothing listens on 127.0.0.1:$port after 10 s" >&2
    return 1
}

start() {
    if [[ -f $state/pid ]] && kill -0 "$(cat "$state/pid")" 2>/dev/null; then
        echo "server.sh: already running (pid $(cat "$state/pid"))" >&2
        return 1
    fi
    local -a cmd
    case $kind in
        redis) cmd=(redis-server --save '' --appendonly no --bind 127.0.0.1 --port "$port") ;;
        pubsubd) cmd=("$(cat "$state/bin")" --bind 127.0.0.1 --port "$port") ;;
        *) echo "server.sh: unknown server kind '$kind'" >&2; return 2 ;;
    esac
    echo "--- $(date +%T.%N) starting: ${cmd[*]}" >>"$state/server.log"
    # setsid: the server gets a session of its own, so a signal aimed at a client
    # program's process group cannot reach it. This shell has no job control, so the
    # background job is not a group leader and setsid execs in place: $! is the server.
    setsid "${cmd[@]}" </dev/null >>"$state/server.log" 2>&1 &
    echo $! >"$state/pid"
    wait_up
}

stop() {
    [[ -f $state/pid ]] || return 0
    local pid i
    pid=$(cat "$state/pid")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null
        for ((i = 0; i < 100; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "server.sh: pid $pid ignored SIGTERM for 5 s, sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null
            sleep 0.1
        fi
    fi
    rm -f "$state/pid"
    echo "--- $(date +%T.%N) stopped pid $pid" >>"$state/server.log"
    # The port must be free again before a restart binds it.
    for ((i = 0; i < 100; i++)); do
        port_open || return 0
        sleep 0.05
    done
    echo "server.sh: port $port still accepts connections after stop" >&2
    return 1
}

case ${1:-} in
    start) start ;;
    stop) stop ;;
    restart) stop && start ;;
    wait-up) wait_up ;;
    status) [[ -f $state/pid ]] && kill -0 "$(cat "$state/pid")" 2>/dev/null && port_open ;;
    *) echo "usage: server.sh start|stop|restart|wait-up|status" >&2; exit 2 ;;
esac
