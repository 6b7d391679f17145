#!/usr/bin/env bash
# TLS + ACL interop: redis-py (`rediss://user:pass@…`), ioredis (`tls: {…}`) and
# `redis-cli --tls` against a server started with a TLS port (mutual TLS), an aclfile written
# the way a Redis deployment writes one, and a password on the default user.
#
#   tests/interop/tls/run.sh --server redis                              # control
#   tests/interop/tls/run.sh --server pubsubd --bin target/debug/pubsubd
#
# Uses the clients the interop suite installs (tests/interop/.venv, tests/interop/node):
# run tests/interop/run.sh once first, or this script installs them the same way.
# Certificates are made with openssl in a temporary directory. Prints `PASS name` /
# `FAIL name: reason` per case and ends with `N passed, M failed`.
set -u
here=$(cd "$(dirname "$0")" && pwd)
interop=$(cd "$here/.." && pwd)
server="" bin=""
while (($#)); do
    case $1 in
        --server) server=${2:-}; shift 2 ;;
        --bin) bin=${2:-}; shift 2 ;;
        *) echo "usage: $0 --server redis|pubsubd [--bin PATH]" >&2; exit 2 ;;
    esac
done
[[ $server == redis || ($server == pubsubd && -x $bin) ]] ||
    { echo "usage: $0 --server redis|pubsubd [--bin PATH]" >&2; exit 2; }

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

dir=$(mktemp -d "${TMPDIR:-/tmp}/interop-tls.XXXXXX")
pid=""
cleanup() {
    [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT

# --- certificates: a CA, a server certificate for 127.0.0.1, a client certificate --------
# The client certificate is X.509 v3 (it has extensions, as Redis's gen-test-certs.sh
# `client_cert` profile makes): rustls/webpki refuse v1 certificates, which OpenSSL accepts.
(
    cd "$dir" &&
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=interop CA" \
            -keyout ca.key -out ca.crt &&
        openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout redis.key -out redis.csr &&
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >san.ext &&
        openssl x509 -req -in redis.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
            -extfile san.ext -out redis.crt &&
        printf 'keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n' >client.ext &&
        openssl req -newkey rsa:2048 -nodes -subj "/CN=client" -keyout client.key -out client.csr &&
        openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
            -extfile client.ext -out client.crt
) >/dev/null 2>&1 || { echo "openssl failed" >&2; exit 2; }

# --- an aclfile as ACL SAVE on Redis writes it (keys and data commands included) ---------
hash() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
cat >"$dir/users.acl" <<ACL
user app on #$(hash apppw) ~app:* resetchannels &app.* -@all +@pubsub +@connection +get +set +@read +info
user reader on #$(hash readerpw) ~* resetchannels &app.* -@all +subscribe +psubscribe +ping +@connection +info
user default on #$(hash defaultpw) ~* &* +@all
ACL

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
tls_port=$(free_port)
args=(--port "$port" --bind 127.0.0.1 --tls-port "$tls_port" --tls-cert-file "$dir/redis.crt"
    --tls-key-file "$dir/redis.key" --tls-ca-cert-file "$dir/ca.crt" --tls-auth-clients yes
    --aclfile "$dir/users.acl")
if [[ $server == redis ]]; then
    redis-server --save '' --appendonly no "${args[@]}" >"$dir/server.log" 2>&1 &
else
    "$bin" "${args[@]}" >"$dir/server.log" 2>&1 &
fi
pid=$!
for ((i = 0; i < 100; i++)); do
    redis-cli -p "$port" --user default --pass defaultpw --no-auth-warning PING 2>/dev/null | grep -q PONG && break
    sleep 0.05
done

export TLS_PORT=$tls_port PLAIN_PORT=$port TLS_DIR=$dir INTEROP_SERVER=$server
passed=0 failed=0
count() {
    local line
    while IFS= read -r line; do
        echo "$line"
        case $line in "PASS "*) ((passed++)) ;; "FAIL "*) ((failed++)) ;; esac
    done
}
count < <(timeout -k 5 120 "$interop/.venv/bin/python" "$here/tls_redis_py.py" 2>&1)
count < <(timeout -k 5 120 node "$here/tls_ioredis.mjs" 2>&1)

cli=(redis-cli -h 127.0.0.1 -p "$tls_port" --tls --cacert "$dir/ca.crt" --cert "$dir/client.crt"
    --key "$dir/client.key" --user app --pass apppw --no-auth-warning)
out=$("${cli[@]}" PUBLISH app.cli hello 2>&1)
if [[ $out == 0 ]]; then count <<<"PASS redis-cli-tls-publish"; else count <<<"FAIL redis-cli-tls-publish: $out"; fi
out=$("${cli[@]}" PUBLISH other hello 2>&1)
if [[ $out == *NOPERM* ]]; then count <<<"PASS redis-cli-tls-noperm"; else count <<<"FAIL redis-cli-tls-noperm: $out"; fi
out=$(redis-cli -h 127.0.0.1 -p "$tls_port" --tls --cacert "$dir/ca.crt" PING 2>&1)
if [[ $out != *PONG* ]]; then count <<<"PASS redis-cli-tls-no-client-cert-refused"; else count <<<"FAIL redis-cli-tls-no-client-cert-refused: $out"; fi

echo "$passed passed, $failed failed"
((failed == 0))
