#!/usr/bin/env bash
# redis-cli against a cluster (run by run.sh): `-c` follows the slot map (SPUBLISH and a
# background SSUBSCRIBE to channels owned by every node, sent through one seed node), and
# `--cluster check` finds every slot covered and every node agreeing.
# Prints `PASS name` / `FAIL name: reason` per case.
set -u
IFS=, read -r -a seeds <<<"${INTEROP_CLUSTER_NODES:?}"
seed=${seeds[0]}
host=${seed%:*} port=${seed#*:}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cli-cluster.XXXXXX")
bg=""
trap '[[ -n $bg ]] && kill "$bg" 2>/dev/null; rm -rf "$tmp"' EXIT

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

name=redis-cli/cluster_check
out=$(timeout 20 redis-cli --cluster check "$seed" 2>&1)
rc=$?
if ((rc == 0)) && [[ $out == *"[OK] All nodes agree about slots configuration."* &&
    $out == *"[OK] All 16384 slots covered."* ]]; then
    pass "$name"
else
    fail "$name" "exit $rc: $(tr '\n' '|' <<<"$out")"
fi
