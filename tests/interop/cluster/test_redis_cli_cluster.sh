#!/usr/bin/env bash
# redis-cli against a cluster (run by run.sh): `-c` follows the slot map (SPUBLISH and a
# background SSUBSCRIBE to channels owned by every node, sent through one seed node), and
# `--cluster check` finds every slot covered and every node agreeing. With
# INTEROP_CLUSTER_FAILOVER (several pubsubd nodes), node 2 is also killed and restarted, and both
# work through a survivor, then through the whole cluster again.
# Prints `PASS name` / `FAIL name: reason` per case.
set -u
IFS=, read -r -a seeds <<<"${INTEROP_CLUSTER_NODES:?}"
seed=${seeds[0]}
host=${seed%:*} port=${seed#*:}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cli-cluster.XXXXXX")
bg="" why=""
subs=()
trap '[[ -n $bg ]] && kill "$bg" 2>/dev/null; ((${#subs[@]})) && kill "${subs[@]}" 2>/dev/null; rm -rf "$tmp"' EXIT

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }

# One channel per eighth of the slot space: whatever the split, several nodes own some.
channels=()
for part in 0 1 2 3 4 5 6 7; do
    for ((i = 0; ; i++)); do
        ch="interop:cli:$RANDOM:$part:$i"
        slot=$(redis-cli -h "$host" -p "$port" CLUSTER KEYSLOT "$ch")
        if ((slot / 2048 == part)); then channels+=("$ch"); break; fi
    done
done

name=redis-cli/c_spublish_follows_the_map
bad=""
for ch in "${channels[@]}"; do
    out=$(timeout 10 redis-cli -c -h "$host" -p "$port" SPUBLISH "$ch" hello 2>&1)
    [[ $out == 0 ]] || bad+=" $ch=>$out"
done
if [[ -z $bad ]]; then pass "$name"; else fail "$name" "$bad"; fi

name=redis-cli/c_ssubscribe_follows_the_map
# The last channel's owner is, for a three-node split, not the seed's first range.
ch=${channels[7]}
timeout 20 redis-cli -c -h "$host" -p "$port" SSUBSCRIBE "$ch" >"$tmp/sub.out" 2>&1 &
bg=$!
for ((i = 0; i < 100; i++)); do
    grep -q '^ssubscribe$' "$tmp/sub.out" && break
    sleep 0.05
done
out=$(timeout 10 redis-cli -c -h "$host" -p "$port" SPUBLISH "$ch" "from the cli" 2>&1)
for ((i = 0; i < 100; i++)); do
    grep -q '^from the cli$' "$tmp/sub.out" && break
    sleep 0.05
done
if [[ $out == 1 ]] && grep -q '^from the cli$' "$tmp/sub.out"; then
    pass "$name"
else
    fail "$name" "SPUBLISH said '$out'; subscriber saw: $(tr '\n' '|' <"$tmp/sub.out")"
fi
kill "$bg" 2>/dev/null
wait "$bg" 2>/dev/null
bg=""

# cluster_check SEED: `--cluster check` through SEED finds every slot covered and every node
# agreeing; otherwise fails with what it said in $why.
cluster_check() {
    local out rc
    out=$(timeout 20 redis-cli --cluster check "$1" 2>&1)
    rc=$?
    ((rc == 0)) && [[ $out == *"[OK] All nodes agree about slots configuration."* &&
        $out == *"[OK] All 16384 slots covered."* ]] && return 0
    why="--cluster check through $1: exit $rc: $(tr '\n' '|' <<<"$out")"
    return 1
}

name=redis-cli/cluster_check
if cluster_check "$seed"; then pass "$name"; else fail "$name" "$why"; fi

[[ -n ${INTEROP_CLUSTER_FAILOVER:-} ]] || exit 0

ctl=${INTEROP_CLUSTER_CTL:?}

# known N SEED...: every SEED reports N known nodes within 20 s (else $why says which not).
known() {
    local i n=$1 s
    shift
    for s in "$@"; do
        for ((i = 0; ; i++)); do
            timeout 5 redis-cli -h "${s%:*}" -p "${s#*:}" CLUSTER INFO 2>/dev/null | tr -d '\r' |
                grep -qx "cluster_known_nodes:$n" && break
            ((i < 400)) || { why="$s never saw $n nodes"; return 1; }
            sleep 0.05
        done
    done
}

# delivered SEED: one background `redis-cli -c SSUBSCRIBE` through SEED per channel (redis-cli
# subscribes to one slot at a time), then `redis-cli -c SPUBLISH` through SEED to each channel:
# each is counted once and its subscriber prints it once (else $why says what went wrong).
delivered() {
    local h=${1%:*} p=${1#*:} i k out msg="delivered $RANDOM" bad=""
    subs=()
    for k in "${!channels[@]}"; do
        timeout 20 redis-cli -c -h "$h" -p "$p" SSUBSCRIBE "${channels[k]}" >"$tmp/fsub$k.out" 2>&1 &
        subs+=($!)
    done
    for k in "${!channels[@]}"; do
        for ((i = 0; i < 100; i++)); do
            grep -q '^ssubscribe$' "$tmp/fsub$k.out" && break
            sleep 0.05
        done
    done
    for k in "${!channels[@]}"; do
        out=$(timeout 10 redis-cli -c -h "$h" -p "$p" SPUBLISH "${channels[k]}" "$msg" 2>&1)
        [[ $out == 1 ]] || bad+=" SPUBLISH ${channels[k]} said '$out';"
    done
    for k in "${!channels[@]}"; do
        for ((i = 0; i < 100; i++)); do
            grep -qx "$msg" "$tmp/fsub$k.out" && break
            sleep 0.05
        done
    done
    # A second copy would follow the first at once; give it a moment to show.
    sleep 0.3
    kill "${subs[@]}" 2>/dev/null
    wait "${subs[@]}" 2>/dev/null
    subs=()
    for k in "${!channels[@]}"; do
        out=$(grep -cx "$msg" "$tmp/fsub$k.out")
        ((out == 1)) ||
            bad+=" ${channels[k]} received $out times: $(tr '\n' '|' <"$tmp/fsub$k.out");"
    done
    [[ -z $bad ]] && return 0
    why="through $1:$bad"
    return 1
}

# Node 2 is killed (no goodbye): once the survivors have dropped it, both work through a
# survivor; restarted, it rejoins and both work through it. Node 2 runs again at the end,
# whatever happened, so later cases see the whole cluster.
name=redis-cli/node_killed_and_restarted
survivor=${seeds[0]} restarted=${seeds[1]}
if ! "$ctl" kill 2 >/dev/null 2>&1; then
    fail "$name" "ctl.sh kill 2 failed"
elif ! known 2 "${seeds[0]}" "${seeds[2]}" || ! cluster_check "$survivor" ||
    ! delivered "$survivor"; then
    fail "$name" "after node 2 was killed: $why"
elif ! "$ctl" start 2 >/dev/null 2>&1; then
    fail "$name" "ctl.sh start 2 failed"
elif ! known 3 "${seeds[@]}" || ! cluster_check "$restarted" || ! delivered "$restarted"; then
    fail "$name" "after node 2 restarted: $why"
else
    pass "$name"
fi
"$ctl" start 2 >/dev/null 2>&1 || echo "ctl.sh start 2 failed" >&2
