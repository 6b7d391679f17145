#!/usr/bin/env bash
# Stops and starts one node of the cluster run.sh started, for the node-failure cases.
#
#   ctl.sh kill N     SIGKILL node N (1-based): a crash, no goodbye to the others
#   ctl.sh stop N     SIGTERM node N and wait for it to exit
#   ctl.sh start N    start node N again with its command line and nodes.conf (same node id);
#                     nothing if it is running
#
# Reads $INTEROP_CLUSTER_STATE/nodeN/{cmd,pid,port}, which run.sh writes.
set -u
state=${INTEROP_CLUSTER_STATE:?INTEROP_CLUSTER_STATE must name the state directory of run.sh}
n=${2:?usage: ctl.sh kill|stop|start N}
d=$state/node$n
[[ -f $d/cmd ]] || { echo "ctl.sh: no node $n" >&2; exit 2; }
port=$(cat "$d/port")

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

wait_closed() {
    local i
    for ((i = 0; i < 200; i++)); do
        port_open || return 0
        sleep 0.05
    done
    echo "ctl.sh: port $port still open" >&2
    return 1
}

case $1 in
    kill | stop)
        pid=$(cat "$d/pid" 2>/dev/null) || exit 0
        if [[ $1 == kill ]]; then kill -KILL "$pid" 2>/dev/null; else kill -TERM "$pid" 2>/dev/null; fi
        for ((i = 0; i < 200; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        rm -f "$d/pid"
        wait_closed
        ;;
    start)
        # Already running (a case's clean-up restarts a node it may not have stopped): keep it,
        # and its pid, rather than start a second one that cannot bind.
        if pid=$(cat "$d/pid" 2>/dev/null) && kill -0 "$pid" 2>/dev/null; then exit 0; fi
        mapfile -t cmd <"$d/cmd"
        (cd "$d" && exec setsid "${cmd[@]}") </dev/null >>"$d/log" 2>&1 &
        echo $! >"$d/pid"
        for ((i = 0; i < 200; i++)); do
            port_open && exit 0
            sleep 0.05
        done
        echo "ctl.sh: node $n did not start" >&2
        exit 1
        ;;
    *) echo "usage: ctl.sh kill|stop|start N" >&2; exit 2 ;;
esac
