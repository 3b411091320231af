#!/usr/bin/env bash
# Measures Doorman alone on loopback (the side-by-side peer harness is issue
# #8): starts redis-server, doorman-directory, doorman-edge and smtp-sink as
# the back-end, lists user0..user999@example.com, runs doorman-loadgen and
# prints the load generator's line plus the CPU seconds each server process
# used during the run and the server CPU per recipient.
#   bench/doorman-only.sh [loadgen options...]   e.g. --sessions 64 --rcpts 10 --unknown-percent 50 --seconds 10
# EDGE_ARGS adds edge options (after the defaults, so they win), e.g.
#   EDGE_ARGS="--log-level info --log-recipients clear" for the cost of the decision log.
set -euo pipefail
cd "$(dirname "$0")/.."
B=build
cmake --build $B -j2 --target doorman-edge doorman-directory doormanctl doorman-loadgen > /dev/null
T=$(mktemp -d /tmp/doorman-bench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "${KEEP:-0}" = 1 ]; then echo "logs kept in $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }

RP=$(free_port); DP=$(free_port); EP=$(free_port); SP=$(free_port)
redis-server --port "$RP" --bind 127.0.0.1 --save "" --appendonly no > "$T/redis.log" 2>&1 & PIDS+=($!); REDIS=$!
chmod 777 "$T"
/usr/sbin/smtp-sink -u nobody 127.0.0.1:"$SP" 1000 > "$T/sink.log" 2>&1 & PIDS+=($!); SINK=$!
wait_port "$RP"; wait_port "$SP"
head -c 32 /dev/urandom | base64 > "$T/admin-token"
export DOORMAN_TOKEN_FILE="$T/admin-token"
# The harvest defence is off: the load generator sends unknown recipients on purpose.
$B/directory/doorman-directory --listen 127.0.0.1:"$DP" --redis-port "$RP" --log-level warn \
  --admin-token-file "$T/admin-token" --harvest=false > "$T/directory.log" 2>&1 & PIDS+=($!); DIR=$!
wait_port "$DP"
$B/directory/doormanctl --server 127.0.0.1:"$DP" domain add example.com --mode list --route 127.0.0.1:"$SP" > /dev/null
seq 0 999 | sed 's/^/user/; s/$/@example.com/' > "$T/users.txt"
$B/directory/doormanctl --server 127.0.0.1:"$DP" import "$T/users.txt" > /dev/null
$B/edge/doorman-edge --listen 127.0.0.1:"$EP" --directory 127.0.0.1:"$DP" --log-level warn --http-listen= \
  --max-sessions-per-ip 100000 \
  --soft-error-limit 9999 --hard-error-limit 10000 ${EDGE_ARGS:-} > "$T/edge.log" 2>&1 & PIDS+=($!); EDGE=$!
wait_port "$EP"

before=$(( $(cpu_ticks $EDGE) + $(cpu_ticks $DIR) + $(cpu_ticks $REDIS) ))
e0=$(cpu_ticks $EDGE); d0=$(cpu_ticks $DIR); r0=$(cpu_ticks $REDIS)
line=$($B/bench/doorman-loadgen --server 127.0.0.1:"$EP" "$@")
e1=$(cpu_ticks $EDGE); d1=$(cpu_ticks $DIR); r1=$(cpu_ticks $REDIS)
hz=$(getconf CLK_TCK)
rcpts=$(sed -n 's/.* rcpts=\([0-9]*\) .*/\1/p' <<<"$line")
echo "$line"
python3 - "$e0" "$e1" "$d0" "$d1" "$r0" "$r1" "$hz" "$rcpts" <<'PY'
import sys
e0,e1,d0,d1,r0,r1,hz,rc=map(float,sys.argv[1:])
e=(e1-e0)/hz; d=(d1-d0)/hz; r=(r1-r0)/hz
tot=e+d+r
print(f"server_cpu_s edge={e:.2f} directory={d:.2f} redis={r:.2f} total={tot:.2f} "
      f"server_cpu_per_rcpt_us={tot/rc*1e6 if rc else 0:.1f}")
PY
