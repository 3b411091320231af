#!/usr/bin/env bash
# bench/profile.sh: where Doorman spends its CPU on the reject-heavy path.
#
# Starts the same Doorman stack as bench/run.sh (redis-server, doorman-directory,
# doorman-edge, smtp-sink as the back-end; user0..user999@example.com listed),
# offers the reject-heavy load at a fixed rate (open loop: 64 sessions,
# 10 RCPT per transaction, 50 % unknown) and samples edge, directory and Redis
# with `perf record -e cpu-clock` (a software clock: hardware counters do not
# exist in this VM) and DWARF call graphs (the binaries keep frame pointers
# off). Writes into OUT (default bench/.cache/profile, ignored by git):
#   perf.data          the samples (perf report -i OUT/perf.data)
#   summary.txt        CPU per process (from /proc) per recipient, and per
#                      process (bench/perf_summary.py): CPU by category
#                      (kernel TCP, scheduler, gRPC, malloc, ...), top
#                      functions by self time, top Doorman functions by
#                      inclusive time
#
# Environment: BUILD_DIR (default build), JOBS (ninja -j, default 1),
# PROFILE_SERIAL=1 (no pipelining: doorman-loadgen --no-pipelining, one RCPT
# per round trip), PROFILE_DOORMAN=DIR (profile the Doorman binaries of
# another build directory, taken as they are, e.g. a baseline; the load
# generator still comes from BUILD_DIR),
# PROFILE_RATE (transactions/s offered, default 800), PROFILE_SECONDS (10),
# PROFILE_FREQ (samples/s per CPU, default 999), OUT.
# Needs perf (Debian: linux-perf) and permission to attach to the processes
# (root, or kernel.perf_event_paranoid <= 1). Loopback only; every process is
# started and stopped by PID (bench/run.sh's functions).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
JOBS=${JOBS:-1}
RATE=${PROFILE_RATE:-800}
SECS=${PROFILE_SECONDS:-10}
FREQ=${PROFILE_FREQ:-999}
OUT=${OUT:-$HERE/.cache/profile}
command -v perf > /dev/null || { echo "profile: perf not found (apt-get install linux-perf)" >&2; exit 2; }

BENCH_SOURCE_ONLY=1 source "$HERE/run.sh"
mkdir -p "$OUT"
build
if [ -n "${PROFILE_DOORMAN:-}" ]; then
  EDGE_BIN=$PROFILE_DOORMAN/edge/doorman-edge; DIR_BIN=$PROFILE_DOORMAN/directory/doorman-directory
  CTL_BIN=$PROFILE_DOORMAN/directory/doormanctl
fi
SERIAL=(); [ "${PROFILE_SERIAL:-0}" = 1 ] && SERIAL=(--no-pipelining)
users_file 1000 "$T/users1k.txt"
start_sink
start_doorman list 127.0.0.1:"$SINK_PORT" "$T/users1k.txt"
# SYS_PIDS are the reaper.py wrappers (edge, directory, redis); perf wants the servers.
server_of() { pgrep -P "$1" | head -n 1; }
EDGE=$(server_of "${SYS_PIDS[0]}"); DIR=$(server_of "${SYS_PIDS[1]}"); REDIS=$(server_of "${SYS_PIDS[2]}")
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
# Context switches of every thread of a process (voluntary + involuntary):
# the wake-ups a recipient costs.
switches() { cat /proc/"$1"/task/*/status 2> /dev/null | awk '/ctxt_switches/ {n += $2} END {print n + 0}'; }
threads() { ls /proc/"$1"/task | wc -l; }

log "profile: warm-up, 2 s"
"$LOADGEN" --server 127.0.0.1:"$SYS_PORT" --sessions 64 --rcpts 10 --unknown-percent 50 --seconds 2 \
  --rate "$RATE" "${SERIAL[@]}" > /dev/null
log "profile: $RATE tx/s offered for $SECS s; perf on edge $EDGE, directory $DIR, redis $REDIS"
e0=$(ticks "$EDGE"); d0=$(ticks "$DIR"); r0=$(ticks "$REDIS")
es0=$(switches "$EDGE"); ds0=$(switches "$DIR"); rs0=$(switches "$REDIS")
perf record -q -e cpu-clock -F "$FREQ" --call-graph dwarf,16384 -p "$EDGE,$DIR,$REDIS" -o "$OUT/perf.data" \
  -- sleep "$((SECS + 1))" 2> "$OUT/perf-record.log" &
PERF=$!
sleep 0.5
line=$("$LOADGEN" --server 127.0.0.1:"$SYS_PORT" --sessions 64 --rcpts 10 --unknown-percent 50 --seconds "$SECS" \
  --rate "$RATE" "${SERIAL[@]}")
e1=$(ticks "$EDGE"); d1=$(ticks "$DIR"); r1=$(ticks "$REDIS")
es1=$(switches "$EDGE"); ds1=$(switches "$DIR"); rs1=$(switches "$REDIS")
et=$(threads "$EDGE"); dt=$(threads "$DIR")
wait "$PERF" || true
stop "${SYS_PIDS[@]}"
stop "$SINK_PID"

{
  echo "# bench/profile.sh $(date '+%Y-%m-%d %H:%M'), commit $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (+ uncommitted changes)')"
  echo "# perf record -e cpu-clock -F $FREQ --call-graph dwarf,16384 -p EDGE,DIRECTORY,REDIS; $RATE tx/s offered for $SECS s${SERIAL:+, no pipelining}${PROFILE_DOORMAN:+, Doorman from $PROFILE_DOORMAN}"
  echo "loadgen: $line"
  python3 - "$e0" "$e1" "$d0" "$d1" "$r0" "$r1" "$(getconf CLK_TCK)" "$line" <<'PY'
import sys
e0, e1, d0, d1, r0, r1, hz = (int(x) for x in sys.argv[1:8])
kv = dict(p.split("=", 1) for p in sys.argv[8].split() if "=" in p)
rcpts = int(kv.get("rcpts", 0)) or 1
for name, a, b in (("edge", e0, e1), ("directory", d0, d1), ("redis", r0, r1)):
    print(f"cpu {name:<9} {(b - a) / hz:6.2f} s  {(b - a) / hz / rcpts * 1e6:6.1f} us/rcpt")
print(f"cpu total     {(e1 - e0 + d1 - d0 + r1 - r0) / hz:6.2f} s  "
      f"{(e1 - e0 + d1 - d0 + r1 - r0) / hz / rcpts * 1e6:6.1f} us/rcpt")
PY
  python3 - "$es0" "$es1" "$ds0" "$ds1" "$rs0" "$rs1" "$et" "$dt" "$line" <<'PY'
import sys
es0, es1, ds0, ds1, rs0, rs1, et, dt = (int(x) for x in sys.argv[1:9])
kv = dict(p.split("=", 1) for p in sys.argv[9].split() if "=" in p)
rcpts = int(kv.get("rcpts", 0)) or 1
print(f"context switches per rcpt (all threads): edge {(es1 - es0) / rcpts:.2f} ({et} threads), "
      f"directory {(ds1 - ds0) / rcpts:.2f} ({dt} threads), redis {(rs1 - rs0) / rcpts:.2f}")
PY
  perf script -i "$OUT/perf.data" -F comm,pid,tid,ip,sym,dso 2> /dev/null |
    python3 "$HERE/perf_summary.py" edge="$EDGE" directory="$DIR" redis="$REDIS"
} > "$OUT/summary.txt"
cat "$OUT/summary.txt"
log "profile: $OUT/summary.txt, $OUT/perf.data"
