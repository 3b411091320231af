#!/usr/bin/env bash
# bench/run.sh [scenario...]: runs Doorman and its peers side by side on
# loopback, one system after the other with the same client, and prints one
# line per system plus the ratios; the results (with date, commit and machine)
# are appended to bench/RESULTS.md. See bench/README.md.
#
# Scenarios (default: all, in this order):
#   reject   10 RCPT per transaction, 50 % unknown, 64 sessions, RSET (no DATA):
#            doorman, postfix, haraka, smtp-sink; first closed loop (each
#            session as fast as it can: the peak), then open loop at each
#            fixed offered rate in RATE (latency below saturation)
#   serial   the reject load without pipelining (doorman-loadgen --no-pipelining:
#            MAIL, then each RCPT alone, waiting for its reply): doorman,
#            postfix, haraka, smtp-sink, closed loop, then open loop at RATE
#            (auto = half of Postfix's closed-loop peak in this scenario)
#   relay    1 RCPT, 4 KB DATA relayed to a back-end smtp-sink, 64 sessions:
#            doorman, postfix (queue drained before the CPU sample), haraka, smtp-sink
#   callout  Doorman in list mode vs callout mode with a warm cache vs cold
#            (callout back-end: a private Postfix answering RCPT from its list)
#   idle     10,000 idle sessions after EHLO: doorman and haraka; postfix with
#            1,000 (a process each); memory per session
#   import   1 M addresses through doormanctl import (time, Redis memory per
#            address); postmap lmdb of the same list for comparison
#   tls      STARTTLS (issue #16), with a throwaway certificate made here:
#            10,000 idle TLS sessions (EHLO, STARTTLS, handshake, EHLO) on
#            doorman (and its plaintext figure beside it) and haraka (tls
#            plugin), postfix (smtpd_tls_security_level = may) with 1,000;
#            memory per session; then new TLS sessions/s (closed loop, full
#            handshakes) and server CPU per new session for each
#
# Environment: BUILD_DIR (default build), JOBS (ninja -j, default nproc),
# BENCH_SECONDS (per measured run, default 10), IDLE_SESSIONS (10000),
# POSTFIX_IDLE_SESSIONS (1000), IMPORT_ADDRESSES (1000000), RATE (reject
# scenario: offered transactions/s for the open-loop runs, space-separated
# for several; "auto" = half of Postfix's closed-loop peak in this run, the
# default; "" skips them), KEEP=1 keeps the
# temporary directory with every log, NO_RESULTS=1 does not touch RESULTS.md,
# BASELINE_BUILD=DIR (a configured build directory of an earlier commit, e.g.
# of a `git worktree`) also runs that Doorman in the reject, serial, relay,
# callout and tls scenarios, in the same run: the before/after of a change,
# side by side (BASELINE_FIRST=1 runs the baseline first, to see drift on a
# busy machine; BASELINE_NO_BUILD=1 takes its binaries as they are: a
# directory holding only edge/doorman-edge, directory/doorman-directory and
# directory/doormanctl will do).
# TLS_SESSIONS (tls scenario: concurrent clients making new sessions, 8).
#
# Needs root (a private Postfix instance runs as user postfix; ulimit -n).
# Sends traffic to 127.0.0.1 only. Every process is started by PID through
# bench/reaper.py and stopped by PID.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
BENCH=$ROOT/bench
B=${BUILD_DIR:-build}
DUR=${BENCH_SECONDS:-10}
IDLE_N=${IDLE_SESSIONS:-10000}
PF_IDLE_N=${POSTFIX_IDLE_SESSIONS:-1000}
IMPORT_N=${IMPORT_ADDRESSES:-1000000}
SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -eq 0 ] && SCENARIOS=(reject serial relay callout idle import tls)
T0=$(date +%s)

log() { echo "bench: $*" >&2; }

# --- installation (idempotent) -----------------------------------------------
install_deps() {
  [ "$(id -u)" -eq 0 ] || { log "run as root (private Postfix, ulimit -n)"; exit 2; }
  "$ROOT/scripts/setup.sh" >&2
  local need=()
  for p in postfix-lmdb nodejs npm; do
    # nodejs from another source (e.g. NodeSource) ships npm itself.
    if [ "$p" = npm ] && command -v npm > /dev/null; then continue; fi
    if [ "$p" = nodejs ] && command -v node > /dev/null; then continue; fi
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
  done
  if [ ${#need[@]} -gt 0 ]; then
    log "apt-get install ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
  fi
  # The npm package "haraka" (3.3.x) wants Node >= 20; Debian 12's nodejs is 18: then Haraka is skipped.
  local node_major haraka_version=${HARAKA_VERSION:-3.3.4}
  node_major=$(node -p 'process.versions.node.split(".")[0]')
  HARAKA_BIN=""
  HARAKA_VERSION_USED="skipped (Node $node_major < 20)"
  if [ "$node_major" -lt 20 ]; then log "Node $node_major < 20: the Haraka peer is skipped"; return; fi
  HARAKA_DIR=$BENCH/.cache/haraka-$haraka_version
  if [ ! -x "$HARAKA_DIR/node_modules/.bin/haraka" ]; then
    log "npm install haraka@$haraka_version into $HARAKA_DIR"
    mkdir -p "$HARAKA_DIR"
    (cd "$HARAKA_DIR" && npm install --no-audit --no-fund --loglevel=error "haraka@$haraka_version" >&2)
  fi
  HARAKA_BIN=$HARAKA_DIR/node_modules/haraka/bin/haraka
  HARAKA_VERSION_USED=$haraka_version
}

build() {
  [ -f "$B/build.ninja" ] || cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
  nice -n 10 ninja -C "$B" -j"${JOBS:-$(nproc)}" doorman-edge doorman-directory doormanctl doorman-loadgen \
    doorman-tls-memory >&2
  EDGE_BIN=$ROOT/$B/edge/doorman-edge
  DIR_BIN=$ROOT/$B/directory/doorman-directory
  CTL_BIN=$ROOT/$B/directory/doormanctl
  LOADGEN=$ROOT/$B/bench/doorman-loadgen
  TLS_MEMORY=$ROOT/$B/bench/doorman-tls-memory
  if [ -n "${BASELINE_BUILD:-}" ]; then
    [ "${BASELINE_NO_BUILD:-0}" = 1 ] ||
      nice -n 10 ninja -C "$BASELINE_BUILD" -j"${JOBS:-$(nproc)}" doorman-edge doorman-directory doormanctl >&2
    BASE_BINS=("$BASELINE_BUILD/edge/doorman-edge" "$BASELINE_BUILD/directory/doorman-directory"
      "$BASELINE_BUILD/directory/doormanctl")
  fi
}

# as_baseline CMD...: runs CMD with the baseline's Doorman binaries.
as_baseline() {
  local saved=("$EDGE_BIN" "$DIR_BIN" "$CTL_BIN")
  EDGE_BIN=${BASE_BINS[0]}; DIR_BIN=${BASE_BINS[1]}; CTL_BIN=${BASE_BINS[2]}
  "$@"
  EDGE_BIN=${saved[0]}; DIR_BIN=${saved[1]}; CTL_BIN=${saved[2]}
}
DOORMANS=(doorman)
[ -n "${BASELINE_BUILD:-}" ] && DOORMANS+=(doorman-baseline)
[ -n "${BASELINE_BUILD:-}" ] && [ "${BASELINE_FIRST:-0}" = 1 ] && DOORMANS=(doorman-baseline doorman)

# --- processes ---------------------------------------------------------------
T=$(mktemp -d /tmp/doorman-bench.XXXXXX)
chmod 755 "$T"
RESULTS=$T/results.jsonl
: > "$RESULTS"
PIDS=()
EDGE_EXTRA=()  # more doorman-edge flags (a scenario's)
stop() {
  local p
  for p in "$@"; do kill "$p" 2>/dev/null || true; done
  for p in "$@"; do wait "$p" 2>/dev/null || true; done
  local keep=()
  for p in "${PIDS[@]}"; do [[ " $* " == *" $p "* ]] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}
cleanup() {
  [ ${#PIDS[@]} -gt 0 ] && stop "${PIDS[@]}"
  if [ "${KEEP:-0}" = 1 ]; then log "logs kept in $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
# spawn LOG CMD...: runs CMD in its own session under reaper.py; LAST = its PID (= the session id).
spawn() {
  local out=$1; shift
  python3 "$BENCH/reaper.py" "$@" > "$out" 2>&1 &
  LAST=$!
  PIDS+=("$LAST")
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  log "nothing listens on 127.0.0.1:$1"; return 1
}
users_file() {  # users_file N FILE: user0..userN-1@example.com
  python3 -c "import sys; sys.stdout.write(''.join(f'user{i}@example.com\n' for i in range($1)))" > "$2"
}

# Back-end smtp-sink: accepts everything. Sets SINK_PID SINK_PORT.
start_sink() {
  SINK_PORT=$(free_port)
  spawn "$T/sink-$SINK_PORT.log" /usr/sbin/smtp-sink -u nobody 127.0.0.1:"$SINK_PORT" 4096
  SINK_PID=$LAST
  wait_port "$SINK_PORT"
}

# Doorman: redis + directory + edge. start_doorman MODE ROUTE USERS_FILE [directory flags...]
# Sets SYS_SIDS SYS_PIDS SYS_PORT DOORMAN_RP EDGE_PID.
start_doorman() {
  local mode=$1 route=$2 users=$3; shift 3
  local rp dp ep d=$T/doorman-$RANDOM
  mkdir -p "$d"
  rp=$(free_port); dp=$(free_port); ep=$(free_port)
  spawn "$d/redis.log" redis-server --port "$rp" --bind 127.0.0.1 --save "" --appendonly no; local redis=$LAST
  wait_port "$rp"
  # Admin token for doormanctl; the harvest defence is off: the load
  # generator sends thousands of unknown recipients from 127.0.0.1 on purpose.
  [ -s "$d/admin-token" ] || head -c 32 /dev/urandom | base64 > "$d/admin-token"
  export DOORMAN_TOKEN_FILE="$d/admin-token"
  spawn "$d/directory.log" "$DIR_BIN" --listen 127.0.0.1:"$dp" --http-listen= --redis-port "$rp" --log-level warn \
    --admin-token-file "$d/admin-token" --harvest=false "$@"
  local dir=$LAST
  wait_port "$dp"
  "$CTL_BIN" --server 127.0.0.1:"$dp" domain add example.com --mode "$mode" --route "$route" > /dev/null
  [ -n "$users" ] && "$CTL_BIN" --server 127.0.0.1:"$dp" import "$users" > /dev/null
  # All load comes from 127.0.0.1: lift the per-client session cap (default 50) where the edge has one.
  local per_ip=()
  [[ "$("$EDGE_BIN" --help 2>&1)" == *--max-sessions-per-ip* ]] && per_ip=(--max-sessions-per-ip $((IDLE_N + 1000)))
  local tls=()
  [ -n "${TLS_CERT:-}" ] && tls=(--tls-cert-file "$TLS_CERT" --tls-key-file "$TLS_KEY")
  spawn "$d/edge.log" "$EDGE_BIN" --listen 127.0.0.1:"$ep" --http-listen= --directory 127.0.0.1:"$dp" \
    --log-level warn --soft-error-limit 9999 --hard-error-limit 10000 --max-sessions $((IDLE_N + 1000)) "${per_ip[@]}" \
    "${tls[@]}" "${EDGE_EXTRA[@]}"
  EDGE_PID=$LAST
  wait_port "$ep"
  SYS_SIDS="$redis,$dir,$EDGE_PID"; SYS_PIDS=("$EDGE_PID" "$dir" "$redis"); SYS_PORT=$ep
  DOORMAN_RP=$rp; DOORMAN_DP=$dp
}

# Postfix 3.7, private instance (own config and queue in $T), master run
# non-daemonised. start_postfix SINK_PORT USERS_FILE PROCESS_LIMIT
# Sets SYS_SIDS SYS_PIDS SYS_PORT PF_SPOOL.
backdate() { touch -d '-1 min' "$@"; }  # Postfix waits until main.cf is older than "now"
start_postfix() {
  local sink=$1 users=$2 limit=$3 d port uid gid
  d=$T/postfix-$RANDOM; port=$(free_port)
  uid=$(id -u postfix); gid=$(id -g postfix)
  mkdir -p "$d"/{etc,spool,data}
  chmod 755 "$d" "$d/spool"; chown postfix:postfix "$d/data"
  cat > "$d/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $d/spool
data_directory = $d/data
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.bench.test
mydomain = bench.test
myorigin = bench.test
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
local_recipient_maps =
relay_domains = example.com
relay_recipient_maps = lmdb:$d/etc/relay_recipients
smtpd_reject_unlisted_recipient = yes
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions =
relay_transport = relay
transport_maps = inline:{ example.com=relay:[127.0.0.1]:$sink }
default_process_limit = $limit
smtpd_client_connection_count_limit = 0
smtpd_soft_error_limit = 100000
smtpd_hard_error_limit = 100000
smtpd_error_sleep_time = 0
smtpd_junk_command_limit = 100000
in_flow_delay = 0
smtpd_peername_lookup = no
smtp_host_lookup = native
disable_dns_lookups = yes
maillog_file = $d/maillog
maillog_file_prefixes = $d
biff = no
smtputf8_enable = no
delay_warning_time = 0
smtpd_banner = \$myhostname ESMTP
EOF
  if [ -n "${TLS_CERT:-}" ]; then
    # STARTTLS offered, not required (an MX's setting); tickets, no session cache database (the defaults).
    printf 'smtpd_tls_security_level = may\nsmtpd_tls_cert_file = %s\nsmtpd_tls_key_file = %s\nsmtpd_tls_loglevel = 0\n' \
      "$TLS_CERT" "$TLS_KEY" >> "$d/etc/main.cf"
  fi
  cat > "$d/etc/master.cf" <<EOF
127.0.0.1:$port inet n - n - - smtpd
pickup    unix  n - n 60    1 pickup
cleanup   unix  n - n -     0 cleanup
qmgr      unix  n - n 300   1 qmgr
rewrite   unix  - - n -     - trivial-rewrite
bounce    unix  - - n -     0 bounce
defer     unix  - - n -     0 bounce
trace     unix  - - n -     0 bounce
verify    unix  - - n -     1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -     - proxymap
proxywrite unix - - n -     1 proxymap
smtp      unix  - - n -     - smtp
relay     unix  - - n -     - smtp
showq     unix  n - n -     - showq
error     unix  - - n -     - error
retry     unix  - - n -     - error
discard   unix  - - n -     - discard
anvil     unix  - - n -     1 anvil
scache    unix  - - n -     1 scache
postlog   unix-dgram n - n - 1 postlogd
tlsmgr    unix  - - n 1000? 1 tlsmgr
EOF
  sed 's/$/ OK/' "$users" > "$d/etc/relay_recipients"
  postmap -c "$d/etc" lmdb:"$d/etc/relay_recipients"
  backdate "$d/etc/main.cf" "$d/etc/master.cf"
  local q
  for q in active bounce corrupt defer deferred flush hold incoming private saved trace; do
    mkdir -p "$d/spool/$q"; chown postfix:root "$d/spool/$q"; chmod 700 "$d/spool/$q"
  done
  mkdir -p "$d/spool/maildrop" "$d/spool/public" "$d/spool/pid"
  chown postfix:postdrop "$d/spool/maildrop" "$d/spool/public"; chmod 730 "$d/spool/maildrop"; chmod 710 "$d/spool/public"
  chmod 755 "$d/spool/pid"
  spawn "$d/master.out" /usr/lib/postfix/sbin/master -c "$d/etc" -d
  wait_port "$port"
  SYS_SIDS="$LAST"; SYS_PIDS=("$LAST"); SYS_PORT=$port; PF_SPOOL=$d/spool
}

# Haraka with the rcpt_list plugin (bench/haraka/plugins) and queue/smtp_forward
# to the sink; one worker per core (nodes=cpus). start_haraka SINK_PORT USERS_FILE
start_haraka() {
  local sink=$1 users=$2 d port
  d=$T/haraka-$RANDOM; port=$(free_port)
  node "$HARAKA_BIN" -i "$d" > /dev/null  # the skeleton (connection.ini etc.); overwritten below
  cp "$BENCH/haraka/plugins/rcpt_list.js" "$d/plugins/"
  cp "$users" "$d/config/rcpt_list"
  printf 'listen=127.0.0.1:%s\nnodes=cpus\ninactivity_timeout=600\nforce_shutdown_timeout=5\n' "$port" > "$d/config/smtp.ini"
  printf '[main]\nlevel=warn\n' > "$d/config/log.ini"
  printf 'rcpt_list\nqueue/smtp_forward\n' > "$d/config/plugins"
  if [ -n "${TLS_CERT:-}" ]; then  # the tls plugin, with its default tls.ini (config/tls_cert.pem, tls_key.pem)
    cp "$TLS_CERT" "$d/config/tls_cert.pem"; cp "$TLS_KEY" "$d/config/tls_key.pem"
    printf 'tls\nrcpt_list\nqueue/smtp_forward\n' > "$d/config/plugins"
  fi
  printf 'host=127.0.0.1\nport=%s\nenable_outbound=false\n' "$sink" > "$d/config/smtp_forward.ini"
  echo haraka.bench.test > "$d/config/me"
  spawn "$d/haraka.log" node "$HARAKA_BIN" -c "$d"
  wait_port "$port"
  SYS_SIDS="$LAST"; SYS_PIDS=("$LAST"); SYS_PORT=$port
}

# The no-lookup ceiling: smtp-sink itself as the server.
start_sink_system() {
  local port; port=$(free_port)
  spawn "$T/sink-system-$port.log" /usr/sbin/smtp-sink -u nobody 127.0.0.1:"$port" 4096
  wait_port "$port"
  SYS_SIDS="$LAST"; SYS_PIDS=("$LAST"); SYS_PORT=$port
}

# measure SCENARIO SYSTEM [measure.py flags] -- loadgen flags...
measure() {
  local scenario=$1 system=$2; shift 2
  local extra=()
  while [ "$1" != -- ]; do extra+=("$1"); shift; done
  shift
  log "$scenario: $system"
  python3 "$BENCH/measure.py" --sids "$SYS_SIDS" --scenario "$scenario" --system "$system" "${extra[@]}" -- \
    "$LOADGEN" --server 127.0.0.1:"$SYS_PORT" "$@" | tee -a "$RESULTS" | python3 "$BENCH/report.py" --line
}

start_system() {  # start_system NAME SINK_PORT USERS
  case $1 in
    doorman) start_doorman list 127.0.0.1:"$2" "$3" ;;
    doorman-baseline) as_baseline start_doorman list 127.0.0.1:"$2" "$3" ;;
    postfix) start_postfix "$2" "$3" 200 ;;
    haraka) start_haraka "$2" "$3" ;;
    smtp-sink) start_sink_system ;;
  esac
}

# --- scenarios ---------------------------------------------------------------
# Half of Postfix's closed-loop transactions/s in scenario $1 of this run (so every system can sustain it),
# rounded down to 10.
auto_rate() {
  python3 - "$RESULTS" "$1" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
pf = next((r for r in rows if r["scenario"] == sys.argv[2] and r["system"] == "postfix" and r.get("tx_per_s")), None)
print(max(10, int(pf["tx_per_s"] / 2 // 10 * 10)) if pf else 100)
PY
}

# reject_like SCENARIO [loadgen flags...]: the reject load (10 RCPT, 50 % unknown, 64 sessions, RSET) against
# every system (and the baseline Doorman), closed loop, then open loop at each rate in RATE (SCENARIO-rate).
reject_like() {
  local scenario=$1 sys rate rates=(); shift
  local load=(--sessions 64 --rcpts 10 --unknown-percent 50 --seconds "$DUR" "$@")
  start_sink
  for sys in "${DOORMANS[@]}" postfix haraka smtp-sink; do
    [ "$sys" = haraka ] && [ -z "$HARAKA_BIN" ] && continue
    start_system "$sys" "$SINK_PORT" "$T/users1k.txt"
    measure "$scenario" "$sys" -- "${load[@]}" || true
    stop "${SYS_PIDS[@]}"
  done
  # Open loop: the same load offered at a fixed rate; latency from each group's scheduled start.
  for rate in ${RATE-auto}; do
    [ "$rate" = auto ] && rate=$(auto_rate "$scenario")
    rates+=("$rate")
  done
  for rate in "${rates[@]}"; do
    log "$scenario-rate: $rate transactions/s offered ($((rate * 10)) rcpt/s)"
    for sys in "${DOORMANS[@]}" postfix haraka smtp-sink; do
      [ "$sys" = haraka ] && [ -z "$HARAKA_BIN" ] && continue
      start_system "$sys" "$SINK_PORT" "$T/users1k.txt"
      measure "$scenario-rate" "$sys" -- "${load[@]}" --rate "$rate" || true
      stop "${SYS_PIDS[@]}"
    done
  done
  stop "$SINK_PID"
}

scenario_reject() { reject_like reject; }
# One RCPT per round trip (as many senders do): every recipient is its own directory check.
scenario_serial() { reject_like serial --no-pipelining; }

scenario_relay() {
  local sys drain
  start_sink
  for sys in "${DOORMANS[@]}" postfix haraka smtp-sink; do
    [ "$sys" = haraka ] && [ -z "$HARAKA_BIN" ] && continue
    start_system "$sys" "$SINK_PORT" "$T/users1k.txt"
    drain=(); [ "$sys" = postfix ] && drain=(--drain "$PF_SPOOL")
    measure relay "$sys" "${drain[@]}" -- --sessions 64 --rcpts 1 --unknown-percent 0 --body-bytes 4096 \
      --seconds "$DUR" || true
    stop "${SYS_PIDS[@]}"
  done
  stop "$SINK_PID"
}

scenario_callout() {
  # The callout back-end: a private Postfix that answers RCPT from its list of
  # user0..user99999 (unknown -> 550). Probing limits are raised for the
  # benchmark (defaults: 10 probes/s, 4 sessions per back-end).
  local be_pid be_port probe=(--callout-rate 10000 --callout-burst 10000 --callout-concurrency 32
    --callout-session-probes 100)
  users_file 100000 "$T/users100k.txt"
  start_postfix 9 "$T/users100k.txt" 200
  be_pid=${SYS_PIDS[0]}; be_port=$SYS_PORT
  local load=(--sessions 64 --rcpts 10 --unknown-percent 50 --known-count 1000 --unknown-count 1000 --seconds "$DUR")

  start_doorman list 127.0.0.1:"$be_port" "$T/users1k.txt" "${probe[@]}"
  measure callout list -- "${load[@]}" || true
  stop "${SYS_PIDS[@]}"

  local which name starter
  for which in "${DOORMANS[@]}"; do
    name=callout; starter=(start_doorman)
    # The baseline may predate the event-loop prober: give it the probe threads it needs.
    [ "$which" = doorman-baseline ] && name=baseline && starter=(as_baseline start_doorman) && probe+=(--callout-threads 32)
    "${starter[@]}" callout 127.0.0.1:"$be_port" "" "${probe[@]}"
    log "callout: warming the cache (every address once, twice)"
    "$LOADGEN" --server 127.0.0.1:"$SYS_PORT" --sweep 1 --sessions 16 --rcpts 10 --known-count 1000 \
      --unknown-count 1000 >&2 || true
    "$LOADGEN" --server 127.0.0.1:"$SYS_PORT" --sweep 1 --sessions 16 --rcpts 10 --known-count 1000 \
      --unknown-count 1000 >&2 || true
    measure callout "$name-warm" -- "${load[@]}" || true
    stop "${SYS_PIDS[@]}"

    # Cold: almost every recipient is new (100k known, 1M unknown names): a probe each.
    "${starter[@]}" callout 127.0.0.1:"$be_port" "" "${probe[@]}"
    measure callout "$name-cold" -- --sessions 64 --rcpts 10 --unknown-percent 50 --known-count 100000 \
      --unknown-count 1000000 --seconds "$DUR" || true
    stop "${SYS_PIDS[@]}"
  done
  stop "$be_pid"
}

scenario_idle() {
  # Every server and the client are separate processes: each needs N + some descriptors.
  ulimit -n "$(ulimit -Hn)"
  [ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge $((IDLE_N + 500)) ] ||
    log "ulimit -n is $(ulimit -n): fewer than $IDLE_N idle sessions will open"
  start_sink
  start_doorman list 127.0.0.1:"$SINK_PORT" "$T/users1k.txt"
  measure idle doorman --primary "$EDGE_PID" -- --idle "$IDLE_N" --hold 3 || true
  stop "${SYS_PIDS[@]}"
  if [ -n "$HARAKA_BIN" ]; then
    start_haraka "$SINK_PORT" "$T/users1k.txt"
    measure idle haraka -- --idle "$IDLE_N" --hold 3 || true
    stop "${SYS_PIDS[@]}"
  fi
  start_postfix "$SINK_PORT" "$T/users1k.txt" $((PF_IDLE_N + 100))
  measure idle postfix -- --idle "$PF_IDLE_N" --hold 3 || true
  stop "${SYS_PIDS[@]}"
  stop "$SINK_PID"
}

scenario_import() {
  log "import: $IMPORT_N addresses"
  users_file "$IMPORT_N" "$T/import.txt"
  start_doorman list 127.0.0.1:25 ""
  local m0 m1 t0 t1 keys pm0 pm1 lmdb_bytes
  m0=$(redis-cli -p "$DOORMAN_RP" info memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p')
  t0=$(date +%s.%N)
  "$CTL_BIN" --server 127.0.0.1:"$DOORMAN_DP" import "$T/import.txt" > "$T/import.out" 2>&1 || log "import failed: $(tail -3 "$T/import.out")"
  t1=$(date +%s.%N)
  m1=$(redis-cli -p "$DOORMAN_RP" info memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p')
  keys=$(redis-cli -p "$DOORMAN_RP" scard doorman:v1:addresses:example.com)
  stop "${SYS_PIDS[@]}"
  # Peer: Postfix builds its relay_recipient_maps with postmap (lmdb).
  sed 's/$/ OK/' "$T/import.txt" > "$T/postmap-import"
  mkdir -p "$T/postmap-conf"; echo "compatibility_level = 3.6" > "$T/postmap-conf/main.cf"
  pm0=$(date +%s.%N)
  postmap -c "$T/postmap-conf" lmdb:"$T/postmap-import"
  pm1=$(date +%s.%N)
  lmdb_bytes=$(stat -c %s "$T/postmap-import.lmdb")
  python3 - "$IMPORT_N" "$t0" "$t1" "$m0" "$m1" "$keys" "$pm0" "$pm1" "$lmdb_bytes" >> "$RESULTS" <<'PY'
import json, sys
n, t0, t1, m0, m1, keys, p0, p1, lb = sys.argv[1:]
n = int(n)
print(json.dumps({"scenario": "import", "system": "doorman", "addresses": n, "listed": int(keys or 0),
                  "seconds": round(float(t1) - float(t0), 2),
                  "addresses_per_s": round(n / (float(t1) - float(t0))),
                  "redis_used_memory_mib": round((int(m1) - int(m0)) / 2**20, 1),
                  "redis_bytes_per_address": round((int(m1) - int(m0)) / n, 1),
                  "postmap_lmdb_seconds": round(float(p1) - float(p0), 2),
                  "postmap_lmdb_bytes_per_address": round(int(lb) / n, 1)}))
PY
  tail -n 1 "$RESULTS" | python3 "$BENCH/report.py" --line
}

# A few TLS sessions opened and closed before an idle measurement: what the
# first handshake initialises once (OpenSSL's provider and cipher caches, a
# thread's read buffer) is not memory per session.
tls_warm_up() {
  "$LOADGEN" --server 127.0.0.1:"$SYS_PORT" --idle 50 --hold 0.2 --starttls 1 > /dev/null || true
  sleep 0.5
}

scenario_tls() {
  ulimit -n "$(ulimit -Hn)"
  log "tls: a throwaway certificate (RSA 2048, CN=localhost)"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost -keyout "$T/tls.key" -out "$T/tls.crt" \
    2> /dev/null
  chmod 644 "$T/tls.key"  # Postfix's smtpd reads it as user postfix
  start_sink
  local sys
  # The plaintext figure of the same build, for the TLS overhead.
  start_doorman list 127.0.0.1:"$SINK_PORT" "$T/users1k.txt"
  measure tls-idle doorman-plaintext --primary "$EDGE_PID" -- --idle "$IDLE_N" --hold 3 || true
  stop "${SYS_PIDS[@]}"
  TLS_CERT=$T/tls.crt TLS_KEY=$T/tls.key
  for sys in "${DOORMANS[@]}"; do
    start_system "$sys" "$SINK_PORT" "$T/users1k.txt"
    tls_warm_up
    measure tls-idle "$sys" --primary "$EDGE_PID" -- --idle "$IDLE_N" --hold 3 --starttls 1 || true
    stop "${SYS_PIDS[@]}"
  done
  if [ -n "$HARAKA_BIN" ]; then
    start_haraka "$SINK_PORT" "$T/users1k.txt"
    tls_warm_up
    measure tls-idle haraka -- --idle "$IDLE_N" --hold 3 --starttls 1 || true
    stop "${SYS_PIDS[@]}"
  fi
  # (No warm-up: its smtpd processes would linger, idle, and be counted in the base.)
  start_postfix "$SINK_PORT" "$T/users1k.txt" $((PF_IDLE_N + 100))
  measure tls-idle postfix -- --idle "$PF_IDLE_N" --hold 3 --starttls 1 || true
  stop "${SYS_PIDS[@]}"
  # OpenSSL's own share of an idle session, by allocation site (the edge's TLS context, in-process).
  "$TLS_MEMORY" "$T/tls.crt" "$T/tls.key" 1000 > "$T/tls-memory.txt" || true
  python3 - "$T/tls-memory.txt" >> "$RESULTS" <<'PY'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
r = dict(kv.split("=", 1) for kv in lines[0].split()) if lines else {}
print(json.dumps({"scenario": "tls-memory", "system": "doorman", **r, "sites": [l.strip() for l in lines[1:6]]}))
PY
  tail -n 1 "$RESULTS" | python3 "$BENCH/report.py" --line
  # New sessions: connect, EHLO, STARTTLS, full handshake, EHLO, QUIT, again. Doorman's greet pause (300 ms
  # by default, postscreen's test; Postfix's smtpd here runs without postscreen) is off: it is a wait, not work.
  EDGE_EXTRA=(--greet-pause-ms 0)
  for sys in "${DOORMANS[@]}" postfix haraka; do
    [ "$sys" = haraka ] && [ -z "$HARAKA_BIN" ] && continue
    start_system "$sys" "$SINK_PORT" "$T/users1k.txt"
    # Unmeasured warm-up (first handshakes, page faults; the previous system's exit): without it the first
    # system measured was up to 30 % slower than in the same run in the other order.
    "$LOADGEN" --server 127.0.0.1:"$SYS_PORT" --handshakes 1 --sessions "${TLS_SESSIONS:-8}" --seconds 3 > /dev/null || true
    measure tls-handshakes "$sys" -- --handshakes 1 --sessions "${TLS_SESSIONS:-8}" --seconds "$DUR" || true
    stop "${SYS_PIDS[@]}"
  done
  TLS_CERT="" TLS_KEY="" EDGE_EXTRA=()
  stop "$SINK_PID"
}

# --- main --------------------------------------------------------------------
[ "${BENCH_SOURCE_ONLY:-0}" = 1 ] && return 0  # for debugging: `BENCH_SOURCE_ONLY=1 source bench/run.sh`
install_deps
build
users_file 1000 "$T/users1k.txt"
for s in "${SCENARIOS[@]}"; do
  case $s in
    reject|serial|relay|callout|idle|import|tls) "scenario_$s" ;;
    *) log "unknown scenario $s (reject serial relay callout idle import tls)"; exit 2 ;;
  esac
done
ELAPSED=$(( $(date +%s) - T0 ))
REPORT_ARGS=(--haraka "$HARAKA_VERSION_USED" --elapsed "$ELAPSED" --command "${RATE+RATE=\"$RATE\" }bench/run.sh ${*:-}")
python3 "$BENCH/report.py" "${REPORT_ARGS[@]}" < "$RESULTS" > "$T/report.md"
cat "$T/report.md"
if [ "${NO_RESULTS:-0}" != 1 ]; then
  { echo; cat "$T/report.md"; } >> "$BENCH/RESULTS.md"
  log "appended to bench/RESULTS.md"
fi
log "done in ${ELAPSED}s"
