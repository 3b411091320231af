#!/usr/bin/env bash
# bench/threads.sh: where the wake-ups go. Starts the same stack as
# bench/doorman-only.sh (redis-server, doorman-directory, doorman-edge,
# smtp-sink; user0..user999@example.com listed), warms up for 2 s, then runs
# doorman-loadgen for 5 s and prints, per thread of the edge and of the
# directory, the context switches per recipient (voluntary + involuntary,
# from /proc/PID/task/TID/status) and the CPU ticks used, then the CPU per
# recipient of each process (of the threads listed, and of the whole process,
# which includes threads that started or ended during the run).
#   bench/threads.sh [loadgen options...]   e.g. --no-pipelining --rate 230
# B=DIR takes the Doorman binaries from another build directory (a baseline:
# edge/doorman-edge, directory/doorman-directory, directory/doormanctl); the
# load generator always comes from build/. EDGE_ARGS, DIR_ARGS add options.
# Loopback only; every process is started and stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${B:-build}
cmake --build build -j2 --target doorman-edge doorman-directory doormanctl doorman-loadgen > /dev/null
T=$(mktemp -d /tmp/dm-thr.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done; rm -rf "$T"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
RP=$(free_port); DP=$(free_port); EP=$(free_port); SP=$(free_port)
redis-server --port "$RP" --bind 127.0.0.1 --save "" --appendonly no > "$T/redis.log" 2>&1 & PIDS+=($!); REDIS=$!
chmod 777 "$T"
/usr/sbin/smtp-sink -u nobody 127.0.0.1:"$SP" 1000 > "$T/sink.log" 2>&1 & PIDS+=($!)
wait_port "$RP"; wait_port "$SP"
head -c 32 /dev/urandom | base64 > "$T/admin-token"
export DOORMAN_TOKEN_FILE="$T/admin-token"
$B/directory/doorman-directory --listen 127.0.0.1:"$DP" --redis-port "$RP" --log-level warn --http-listen= \
  --admin-token-file "$T/admin-token" --harvest=false ${DIR_ARGS:-} > "$T/directory.log" 2>&1 & PIDS+=($!); DIR=$!
wait_port "$DP"
$B/directory/doormanctl --server 127.0.0.1:"$DP" domain add example.com --mode list --route 127.0.0.1:"$SP" > /dev/null
seq 0 999 | sed 's/^/user/; s/$/@example.com/' > "$T/users.txt"
$B/directory/doormanctl --server 127.0.0.1:"$DP" import "$T/users.txt" > /dev/null
$B/edge/doorman-edge --listen 127.0.0.1:"$EP" --directory 127.0.0.1:"$DP" --log-level warn --http-listen= \
  --max-sessions-per-ip 100000 --soft-error-limit 9999 --hard-error-limit 10000 ${EDGE_ARGS:-} > "$T/edge.log" 2>&1 & PIDS+=($!); EDGE=$!
wait_port "$EP"
snap() { for t in /proc/$1/task/*; do echo "$(basename $t) $(cat $t/comm | tr ' ' _) $(awk '/ctxt_switches/ {n+=$2} END{print n}' $t/status) $(awk '{print $14+$15}' $t/stat)"; done; }
build/bench/doorman-loadgen --server 127.0.0.1:"$EP" --sessions 64 --rcpts 10 --unknown-percent 50 --seconds 2 "$@" > /dev/null
snap $EDGE > $T/e0; snap $DIR > $T/d0
pcpu() { awk '{print $14+$15}' /proc/$1/stat; }
pe0=$(pcpu $EDGE); pd0=$(pcpu $DIR); pr0=$(pcpu $REDIS)
line=$(build/bench/doorman-loadgen --server 127.0.0.1:"$EP" --sessions 64 --rcpts 10 --unknown-percent 50 --seconds 5 "$@")
snap $EDGE > $T/e1; snap $DIR > $T/d1
pe1=$(pcpu $EDGE); pd1=$(pcpu $DIR); pr1=$(pcpu $REDIS)
echo "$line" | tr ' ' '\n' | grep -E "rcpt_per_s|p50|p99_" | tr '\n' ' '; echo
rc=$(sed -n 's/.* rcpts=\([0-9]*\) .*/\1/p' <<<"$line")
for w in e d; do
  [ $w = e ] && echo "== edge: thread id, name, context switches per rcpt, CPU ticks" || echo "== directory"
  join <(sort $T/${w}0) <(sort $T/${w}1) | awk -v rc=$rc '{ds=$6-$3; dc=$7-$4; if (ds>0||dc>0) printf "  %-8s %-20s %6.2f  %5d\n", $1, $2, ds/rc, dc}' | sort -k3 -nr
done
tot() { join <(sort $T/${1}0) <(sort $T/${1}1) | awk '{dc+=$7-$4} END{print dc}'; }
hz=$(getconf CLK_TCK)
us() { echo $(( $1 * 1000000 / hz / rc )); }
echo "cpu per rcpt, threads listed above: edge $(us $(tot e)) us, directory $(us $(tot d)) us"
echo "cpu per rcpt, whole processes (threads that came and went too): edge $(us $((pe1 - pe0))) us," \
  "directory $(us $((pd1 - pd0))) us, redis $(us $((pr1 - pr0))) us"
