#!/usr/bin/env bash
# The run command: installs what is missing, builds, and starts the whole
# Doorman stack on loopback in the foreground:
#   redis-server      127.0.0.1:16379  (state in .run/redis)
#   doorman-directory 127.0.0.1:50051  (web console http://127.0.0.1:8025/)
#   doorman-edge      127.0.0.1:2525   (SMTP with STARTTLS; try it with swaks)
#   demo back-end     127.0.0.1:2526   (Postfix's smtp-sink; messages in .run/sink)
# and applies examples/demo-domains.yaml (domain example.com, list mode).
# Ctrl-C stops every process it started, by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

REDIS_PORT=${REDIS_PORT:-16379}
DIRECTORY_ADDR=${DIRECTORY_ADDR:-127.0.0.1:50051}
EDGE_ADDR=${EDGE_ADDR:-127.0.0.1:2525}
SINK_ADDR=${SINK_ADDR:-127.0.0.1:2526}
CONSOLE_ADDR=${CONSOLE_ADDR:-127.0.0.1:8025}

bash scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
cmake --build build -j2 --target doorman-edge doorman-directory doormanctl

RUN="$ROOT/.run"
mkdir -p "$RUN/redis" "$RUN/sink" "$RUN/logs"
# The admin API takes a bearer token; doormanctl reads it from DOORMAN_TOKEN_FILE.
[ -s "$RUN/admin-token" ] || head -c 32 /dev/urandom | base64 > "$RUN/admin-token"
chmod 600 "$RUN/admin-token"
export DOORMAN_TOKEN_FILE="$RUN/admin-token"
chmod 777 "$RUN/sink"
PIDS=()
STOPPING=0
cleanup() {
  trap - INT TERM EXIT
  STOPPING=1
  echo
  echo "stopping: ${PIDS[*]}"
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup INT TERM EXIT

wait_port() {  # host:port, name
  local host=${1%:*} port=${1##*:}
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "$2 did not start; see $RUN/logs/$2.log" >&2
  exit 1
}

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$RUN/redis" --save "" --appendonly yes \
  > "$RUN/logs/redis.log" 2>&1 &
PIDS+=($!)
wait_port "127.0.0.1:$REDIS_PORT" redis

SINK_USER=$(id -un); [ "$(id -u)" -eq 0 ] && SINK_USER=nobody
/usr/sbin/smtp-sink -u "$SINK_USER" -h backend.demo -d "$RUN/sink/%Y%m%d%H%M%S." "$SINK_ADDR" 100 \
  > "$RUN/logs/sink.log" 2>&1 &
PIDS+=($!)
wait_port "$SINK_ADDR" sink

build/directory/doorman-directory --listen "$DIRECTORY_ADDR" --redis-port "$REDIS_PORT" \
  --admin-token-file "$RUN/admin-token" --console-listen "$CONSOLE_ADDR" \
  > "$RUN/logs/directory.log" 2>&1 &
PIDS+=($!)
wait_port "$DIRECTORY_ADDR" directory

build/directory/doormanctl --server "$DIRECTORY_ADDR" apply -f examples/demo-domains.yaml

# STARTTLS with a self-signed certificate for the demo (made once, kept in .run/tls).
mkdir -p "$RUN/tls"
if [ ! -s "$RUN/tls/tls.crt" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 -subj "/CN=mx.example.com" \
    -addext "subjectAltName=DNS:mx.example.com" -keyout "$RUN/tls/tls.key" -out "$RUN/tls/tls.crt" 2> /dev/null
fi

build/edge/doorman-edge --listen "$EDGE_ADDR" --directory "$DIRECTORY_ADDR" --hostname mx.example.com \
  --postmaster-domain example.com --tls-cert-file "$RUN/tls/tls.crt" --tls-key-file "$RUN/tls/tls.key" \
  > "$RUN/logs/edge.log" 2>&1 &
PIDS+=($!)
wait_port "$EDGE_ADDR" edge

cat <<MSG

Doorman is running (logs in .run/logs/). Try it:

  swaks --server $EDGE_ADDR --to alice@example.com      # listed: 250 at RCPT
  swaks --server $EDGE_ADDR --to nobody@example.com     # unknown: 550 5.1.1 in-session
  swaks --server $EDGE_ADDR --to someone@elsewhere.org  # not guarded: 550 5.7.1
  swaks --server $EDGE_ADDR --to alice@example.com --tls   # STARTTLS (self-signed demo certificate)

  export DOORMAN_TOKEN_FILE=$RUN/admin-token   # the admin API's bearer token
  build/directory/doormanctl --server $DIRECTORY_ADDR address add erin@example.com
  build/directory/doormanctl --server $DIRECTORY_ADDR explain erin@example.com

  Web console: http://$CONSOLE_ADDR/  (log in with the admin token: the first line of $RUN/admin-token)

Press Ctrl-C to stop everything.
MSG

# Exit (and clean up) as soon as any component dies.
wait -n "${PIDS[@]}" || true
if [ "$STOPPING" = 0 ]; then echo "a component exited; see $RUN/logs" >&2; fi
