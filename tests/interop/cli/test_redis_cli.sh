#!/usr/bin/env bash
# Interop cases for redis-cli: one-shot commands, a background SUBSCRIBE that receives,
# PUBSUB NUMSUB, binary payloads through -x, the interactive start (HELLO 3 with -3, then
# COMMAND DOCS) and -3 for RESP3.
#
# Each case runs as `test_redis_cli.sh --case NAME` under its own timeout, so a server that
# never answers fails that case in seconds. Prints `PASS name` / `FAIL name: reason`.
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
self=$here/$(basename "${BASH_SOURCE[0]}")
host=${INTEROP_HOST:-127.0.0.1}
port=${INTEROP_PORT:-6379}
CASE_TIMEOUT=10

# --- helpers used inside a case ----------------------------------------------------------

fail() {
    echo "$*"
    exit 1
}

cli() {
    redis-cli -h "$host" -p "$port" "$@"
}

# A channel name no other case or earlier run uses.
unique() {
    echo "interop:cli:$1:$RANDOM$RANDOM"
}

# Background processes of this case, stopped by PID when the case ends.
bg_pids=()
work=""
cleanup() {
    local pid
    for pid in "${bg_pids[@]}"; do
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    [[ -n $work ]] && rm -rf "$work"
}

# until_file_is FILE EXPECTED_FILE WHAT: waits up to 3 s for FILE to equal EXPECTED_FILE.
until_file_is() {
    local i
    for ((i = 0; i < 150; i++)); do
        cmp -s "$1" "$2" && return 0
        sleep 0.02
    done
    fail "$3: expected $(head -c 120 "$2" | od -An -c | tr -s ' \n' ' ' | head -c 200)," \
        "got $(head -c 120 "$1" | od -An -c | tr -s ' \n' ' ' | head -c 200)" \
        "($(stat -c %s "$1") of $(stat -c %s "$2") bytes)"
}

# start_subscriber OUT CLI-ARGS...: runs `redis-cli ARGS` in the background writing to OUT.
start_subscriber() {
    local out=$1
    shift
    # A simple command, not the cli function: $! is then redis-cli itself, not a subshell.
    redis-cli -h "$host" -p "$port" "$@" >"$out" 2>&1 &
    bg_pids+=($!)
}

# expect_output WHAT EXPECTED COMMAND...: runs a one-shot command and compares its output.
expect_output() {
    local what=$1 expected=$2 got
    shift 2
    got=$("$@" 2>&1) || fail "$what: redis-cli exited with $?: $got"
    [[ $got == "$expected" ]] || fail "$what: expected $(printf %q "$expected"), got $(printf %q "$got")"
}

# Writes the bytes redis-cli prints (raw mode, stdout not a tty) for a subscription
# confirmation: kind, name, count, one per line.
confirmation() {
    printf '%s\n%s\n%s\n' "$1" "$2" "$3"
}

# --- cases -------------------------------------------------------------------------------

case_publish_one_shot() {
    local ch
    ch=$(unique pub)
    expect_output "PUBLISH to nobody" 0 cli PUBLISH "$ch" hello
    start_subscriber "$work/sub" SUBSCRIBE "$ch"
    confirmation subscribe "$ch" 1 >"$work/want"
    until_file_is "$work/sub" "$work/want" "subscriber confirmation"
    expect_output "PUBLISH to one subscriber" 1 cli PUBLISH "$ch" hello
}

case_background_subscribe_receives() {
    local ch i
    ch=$(unique sub)
    start_subscriber "$work/sub" SUBSCRIBE "$ch" "$ch:other"
    {
        confirmation subscribe "$ch" 1
        confirmation subscribe "$ch:other" 2
    } >"$work/want"
    until_file_is "$work/sub" "$work/want" "SUBSCRIBE confirmations"
    for i in 1 2 3; do
        expect_output "PUBLISH #$i" 1 cli PUBLISH "$ch" "message $i"
        printf 'message\n%s\nmessage %s\n' "$ch" "$i" >>"$work/want"
    done
    expect_output "PUBLISH on the second channel" 1 cli PUBLISH "$ch:other" last
    printf 'message\n%s\nlast\n' "$ch:other" >>"$work/want"
    until_file_is "$work/sub" "$work/want" "messages received in order"
}

case_background_psubscribe_receives() {
    local base
    base=$(unique psub)
    start_subscriber "$work/sub" PSUBSCRIBE "$base.*"
    confirmation psubscribe "$base.*" 1 >"$work/want"
    until_file_is "$work/sub" "$work/want" "PSUBSCRIBE confirmation"
    expect_output "PUBLISH to a pattern match" 1 cli PUBLISH "$base.x" hi
    printf 'pmessage\n%s\n%s\nhi\n' "$base.*" "$base.x" >>"$work/want"
    until_file_is "$work/sub" "$work/want" "pmessage received"
}

case_background_ssubscribe_receives() {
    local ch
    ch=$(unique ssub)
    start_subscriber "$work/sub" SSUBSCRIBE "$ch"
    confirmation ssubscribe "$ch" 1 >"$work/want"
    until_file_is "$work/sub" "$work/want" "SSUBSCRIBE confirmation"
    expect_output "SPUBLISH" 1 cli SPUBLISH "$ch" sharded
    printf 'smessage\n%s\nsharded\n' "$ch" >>"$work/want"
    until_file_is "$work/sub" "$work/want" "smessage received"
}

case_pubsub_numsub() {
    local ch
    ch=$(unique numsub)
    start_subscriber "$work/s1" SUBSCRIBE "$ch"
    start_subscriber "$work/s2" SUBSCRIBE "$ch"
    confirmation subscribe "$ch" 1 >"$work/want"
    until_file_is "$work/s1" "$work/want" "first subscriber"
    until_file_is "$work/s2" "$work/want" "second subscriber"
    expect_output "PUBSUB NUMSUB" "$(printf '%s\n2\n%s\n0' "$ch" "$ch:none")" \
        cli PUBSUB NUMSUB "$ch" "$ch:none"
    expect_output "PUBSUB NUMSUB (RESP3)" "$(printf '%s\n2\n%s\n0' "$ch" "$ch:none")" \
        cli -3 PUBSUB NUMSUB "$ch" "$ch:none"
    expect_output "PUBSUB CHANNELS" "$ch" cli PUBSUB CHANNELS "$ch"
    expect_output "PUBLISH to two" 2 cli PUBLISH "$ch" x
}

case_resp3_subscribe_receives() {
    local ch
    ch=$(unique resp3)
    # -3: HELLO 3 first; confirmations and messages then arrive as push frames.
    start_subscriber "$work/sub" -3 SUBSCRIBE "$ch"
    confirmation subscribe "$ch" 1 >"$work/want"
    until_file_is "$work/sub" "$work/want" "SUBSCRIBE confirmation (RESP3)"
    expect_output "PUBLISH (RESP3 publisher)" 1 cli -3 PUBLISH "$ch" pushed
    printf 'message\n%s\npushed\n' "$ch" >>"$work/want"
    until_file_is "$work/sub" "$work/want" "push message received"
}

case_resp3_hello() {
    local out
    # Raw output prints each map entry as "key value" on a line.
    out=$(cli -3 HELLO 3) || fail "HELLO 3 failed: $out"
    grep -qx 'proto 3' <<<"$out" || fail "HELLO 3 reply has no proto 3: $(tr '\n' ' ' <<<"$out")"
    grep -q '^server .' <<<"$out" || fail "HELLO 3 reply has no server: $(tr '\n' ' ' <<<"$out")"
    grep -q '^version [0-9]' <<<"$out" || fail "HELLO 3 reply has no version: $(tr '\n' ' ' <<<"$out")"
}

# payload_case NAME: a byte string through `redis-cli -x PUBLISH` (stdin as the last
# argument, binary-safe) to a background subscriber, compared byte for byte.
payload_case() {
    local ch
    ch=$(unique "payload-$1")
    case $1 in
        empty) : >"$work/payload" ;;
        nul) printf 'a\0b\0' >"$work/payload" ;;
        crlf) printf 'line1\r\nline2\r\n*1\r\n$3\r\nfoo\r\n' >"$work/payload" ;;
        invalid_utf8) printf '\xff\xfe\x80 \xc3\x28 \xed\xa0\x80' >"$work/payload" ;;
        1mib) python3 -c 'import sys; sys.stdout.buffer.write(bytes((i * 31 + 7) & 255 for i in range(1 << 20)))' >"$work/payload" ;;
    esac
    start_subscriber "$work/sub" SUBSCRIBE "$ch"
    confirmation subscribe "$ch" 1 >"$work/want"
    until_file_is "$work/sub" "$work/want" "SUBSCRIBE confirmation"
    expect_output "PUBLISH -x" 1 cli -x PUBLISH "$ch" <"$work/payload"
    {
        printf 'message\n%s\n' "$ch"
        cat "$work/payload"
        printf '\n'
    } >>"$work/want"
    until_file_is "$work/sub" "$work/want" "payload received byte for byte"
}

case_payload_empty() { payload_case empty; }
case_payload_nul() { payload_case nul; }
case_payload_crlf() { payload_case crlf; }
case_payload_invalid_utf8() { payload_case invalid_utf8; }
case_payload_1mib() { payload_case 1mib; }

case_non_ascii_channel() {
    local tag="$RANDOM$RANDOM"
    local ch="интероп:$tag:频道:🚀" pat="интероп:$tag:*"
    start_subscriber "$work/sub" SUBSCRIBE "$ch"
    start_subscriber "$work/psub" PSUBSCRIBE "$pat"
    confirmation subscribe "$ch" 1 >"$work/want"
    confirmation psubscribe "$pat" 1 >"$work/pwant"
    until_file_is "$work/sub" "$work/want" "SUBSCRIBE confirmation"
    until_file_is "$work/psub" "$work/pwant" "PSUBSCRIBE confirmation"
    expect_output "PUBLISH" 2 cli PUBLISH "$ch" "ünïcødé ✓"
    printf 'message\n%s\nünïcødé ✓\n' "$ch" >>"$work/want"
    printf 'pmessage\n%s\n%s\nünïcødé ✓\n' "$pat" "$ch" >>"$work/pwant"
    until_file_is "$work/sub" "$work/want" "message on the non-ASCII channel"
    until_file_is "$work/psub" "$work/pwant" "pmessage on the non-ASCII pattern"
    expect_output "PUBSUB NUMSUB" "$(printf '%s\n1' "$ch")" cli PUBSUB NUMSUB "$ch"
}

# interactive_case RESP: redis-cli with no command runs its interactive loop, which starts
# with COMMAND DOCS (after HELLO 3 with -3) for its hints. The session goes through a
# wiretap so the case can check what the server answered to that request.
interactive_case() {
    local resp=$1 tap_port ch out i
    ch=$(unique interactive)
    python3 "$here/wiretap.py" serve "$port" "$work" >"$work/tap_port" 2>"$work/tap_err" &
    bg_pids+=($!)
    for ((i = 0; i < 100; i++)); do
        [[ -s $work/tap_port ]] && break
        sleep 0.02
    done
    tap_port=$(cat "$work/tap_port")
    [[ -n $tap_port ]] || fail "wiretap did not start: $(cat "$work/tap_err")"
    local -a args=(-h "$host" -p "$tap_port")
    [[ $resp == 3 ]] && args+=(-3)
    # stdin is not a tty: commands are read line by line, replies printed raw.
    local rc=0
    out=$(printf 'PUBLISH %s hello\nPUBSUB NUMSUB %s\nPING\n' "$ch" "$ch" |
        redis-cli "${args[@]}" 2>&1) || rc=$?
    wait "${bg_pids[-1]}" 2>/dev/null
    local exchanges
    exchanges=$(python3 "$here/wiretap.py" exchanges "$work" 2>&1) ||
        exchanges="(could not read the recorded session: $exchanges)"
    if ((rc != 0)); then
        local signal=""
        ((rc > 128)) && signal=" (signal $(kill -l $((rc - 128))))"
        fail "redis-cli exited with $rc$signal; output: $(printf %q "$out");" \
            "session so far: $(tr '\n' '|' <<<"$exchanges")"
    fi
    [[ $out == "$(printf '0\n%s\n0\nPONG' "$ch")" ]] ||
        fail "session output: expected 0 / $ch / 0 / PONG, got $(printf %q "$out")"
    local -a lines
    mapfile -t lines <<<"$exchanges"
    local docs=${lines[0]}
    if [[ $resp == 3 ]]; then
        [[ ${lines[0]} == "HELLO 3 => map of "*" proto=3"* ]] ||
            fail "first exchange: expected HELLO 3 answered with a map with proto=3, got: ${lines[0]}"
        docs=${lines[1]}
        [[ $docs == "COMMAND DOCS => map of "*" has:publish has:subscribe" ]] ||
            fail "expected COMMAND DOCS answered with a map documenting publish and subscribe, got: $docs"
    else
        [[ $docs == "COMMAND DOCS => array of "*" has:publish has:subscribe" ]] ||
            fail "expected COMMAND DOCS answered with an array documenting publish and subscribe, got: $docs"
    fi
}

case_interactive_start() { interactive_case 2; }
case_interactive_start_resp3() { interactive_case 3; }

cases=(
    publish_one_shot background_subscribe_receives background_psubscribe_receives
    background_ssubscribe_receives pubsub_numsub resp3_hello resp3_subscribe_receives
    interactive_start interactive_start_resp3 non_ascii_channel
    payload_empty payload_nul payload_crlf payload_invalid_utf8 payload_1mib
)

# --- driver ------------------------------------------------------------------------------

if [[ ${1:-} == --case ]]; then
    work=$(mktemp -d "${TMPDIR:-/tmp}/interop-cli.XXXXXX")
    trap cleanup EXIT
    trap 'exit 124' TERM
    "case_$2"
    exit 0
fi

echo "$(redis-cli --version)" >&2
failed=0
for name in "${cases[@]}"; do
    out=$(timeout -k 2 "$CASE_TIMEOUT" bash "$self" --case "$name" 2>&1)
    rc=$?
    if ((rc == 0)); then
        echo "PASS redis-cli/$name"
    else
        ((rc == 124)) && out="timed out after ${CASE_TIMEOUT}s ${out}"
        echo "FAIL redis-cli/$name: $(tr '\n' ' ' <<<"$out" | sed 's/ *$//' | cut -c1-1000)"
        failed=1
    fi
done
exit $failed
