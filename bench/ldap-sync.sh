#!/usr/bin/env bash
# LDAP / Active Directory sync benchmark (issue #14): a real slapd with N AD-style entries (default 100,000),
# synced into a domain's list by doorman-directory, then re-synced after 1 % of the entries changed; each timed
# side by side with a plain paged `ldapsearch` of the same entries with the same filter (the floor: what reading
# the directory costs before Doorman does anything).
#
#   bench/ldap-sync.sh                 # N=100000, build dir build/
#   N=25000 BUILD_DIR=build-x bench/ldap-sync.sh
#
# Needs slapd, ldap-utils and redis-server (scripts/setup.sh) and built doorman-directory + doormanctl. Everything
# runs on 127.0.0.1, on free ports, in a temp dir; every process started here is stopped by PID at the end.
# Prints a Markdown section; appends it to bench/RESULTS.md unless NO_RESULTS=1.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-100000}
BUILD_DIR=${BUILD_DIR:-build}
DIRECTORY=$BUILD_DIR/directory/doorman-directory
CTL=$BUILD_DIR/directory/doormanctl
for b in "$DIRECTORY" "$CTL" /usr/sbin/slapd /usr/sbin/slapadd "$(command -v ldapsearch)" "$(command -v redis-server)"; do
  [ -x "$b" ] || { echo "ldap-sync: missing $b (scripts/setup.sh; cmake --build $BUILD_DIR)" >&2; exit 1; }
done
T=$(mktemp -d /tmp/doorman-ldap-bench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2> /dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2> /dev/null || true; done
  [ -n "${KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.2f}')"; }
wait_port() { for _ in $(seq 200); do (echo > /dev/tcp/127.0.0.1/"$1") 2> /dev/null && return 0; sleep 0.05; done; return 1; }

SUFFIX=dc=example,dc=test
BIND_DN=cn=sync,$SUFFIX
mkdir -p "$T/data"
printf 'sync-secret' > "$T/password"; chmod 600 "$T/password"
printf 'admin-secret' > "$T/admin-password"; chmod 600 "$T/admin-password"
echo "bench-token" > "$T/token"
cat > "$T/slapd.conf" <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include $PWD/tests/support/ad.schema
pidfile $T/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
sizelimit size.soft=1000 size.hard=1000 size.pr=1000 size.prtotal=unlimited
database mdb
maxsize 4294967296
suffix "$SUFFIX"
rootdn "cn=admin,$SUFFIX"
rootpw admin-secret
directory $T/data
index objectClass eq
CONF
# Each user as AD has it: mail, SMTP: primary, an X500: legacy address (ignored).
{
  printf 'dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n' "$SUFFIX"
  printf 'dn: ou=people,%s\nobjectClass: organizationalUnit\nou: people\n\n' "$SUFFIX"
  printf 'dn: %s\nobjectClass: person\nobjectClass: simpleSecurityObject\ncn: sync\nsn: sync\nuserPassword: sync-secret\n\n' "$BIND_DN"
  awk -v n="$N" -v s="$SUFFIX" 'BEGIN { for (i = 0; i < n; i++) printf "dn: uid=u%d,ou=people,%s\nobjectClass: user\nuid: u%d\ncn: User %d\nsn: %d\nmail: u%d@example.com\nproxyAddresses: SMTP:u%d@example.com\nproxyAddresses: X500:/o=Example/ou=Exchange/cn=Recipients/cn=u%d\nuserAccountControl: 512\n\n", i, s, i, i, i, i, i, i }'
} > "$T/data.ldif"
t0=$(now)
/usr/sbin/slapadd -q -f "$T/slapd.conf" -l "$T/data.ldif"
LOAD=$(secs "$t0" "$(now)")
LDAP_PORT=$(free_port)
/usr/sbin/slapd -d 0 -f "$T/slapd.conf" -h "ldap://127.0.0.1:$LDAP_PORT/" > "$T/slapd.log" 2>&1 &
PIDS+=($!)
REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$T" > "$T/redis.log" 2>&1 &
PIDS+=($!)
DIR_PORT=$(free_port)
wait_port "$LDAP_PORT" && wait_port "$REDIS_PORT" || { echo "ldap-sync: slapd or redis did not start" >&2; exit 1; }
"$DIRECTORY" --listen "127.0.0.1:$DIR_PORT" --http-listen= --redis-port "$REDIS_PORT" --admin-token-file "$T/token" \
  --sync-interval 24h --sync-poll 50ms > "$T/directory.log" 2>&1 &
PIDS+=($!)
wait_port "$DIR_PORT" || { cat "$T/directory.log"; exit 1; }
ctl() { "$CTL" --server "127.0.0.1:$DIR_PORT" --token-file "$T/token" --timeout-seconds 60 "$@"; }
FILTER='(&(|(objectClass=user)(objectClass=group)(objectClass=publicFolder))(|(mail=*)(proxyAddresses=*)))'
floor() {
  local t; t=$(now)
  ldapsearch -x -LLL -H "ldap://127.0.0.1:$LDAP_PORT" -D "$BIND_DN" -y "$T/password" -b "$SUFFIX" \
    -E pr=1000/noprompt "$FILTER" mail proxyAddresses > "$T/floor.ldif"
  secs "$t" "$(now)"
}
last_ms() { grep "event=$1 " "$T/directory.log" | tail -1 | sed 's/.* ms=\([0-9]*\).*/\1/'; }
last_run_ms() { last_ms sync_run; }

# 1. Initial sync: applying the source starts it at the next poll; timed until the list holds every address.
cat > "$T/domains.yaml" <<YAML
domains:
  - {name: example.com, mode: list, routes: ["127.0.0.1:25"]}
ldap_sources:
  - name: bench
    url: ldap://127.0.0.1:$LDAP_PORT
    tls: none
    bind_dn: $BIND_DN
    bind_password_file: $T/password
    base_dn: $SUFFIX
    page_size: 1000
    domains: [example.com]
YAML
FLOOR1=$(floor)
t0=$(now)
ctl apply -f "$T/domains.yaml" > /dev/null
until [ "$(ctl address count example.com)" = "$N" ]; do sleep 0.05; done
INITIAL=$(secs "$t0" "$(now)")
INITIAL_RUN=$(last_run_ms)
INITIAL_READ=$(last_ms sync_read)
ENTRIES=$(grep -c '^dn: uid=' "$T/floor.ldif")

# 2. 1 % changed: half of them deleted, as many new ones added (a shrink of 0.5 %, under max_shrink).
CHANGED=$((N / 100))
HALF=$((CHANGED / 2))
awk -v h="$HALF" -v n="$N" -v s="$SUFFIX" 'BEGIN {
  for (i = 0; i < h; i++) printf "dn: uid=u%d,ou=people,%s\nchangetype: delete\n\n", i, s
  for (i = 0; i < h; i++) printf "dn: uid=new%d,ou=people,%s\nchangetype: add\nobjectClass: user\nuid: new%d\ncn: New %d\nsn: %d\nmail: new%d@example.com\n\n", i, s, i, i, i, i
}' > "$T/change.ldif"
ldapmodify -x -H "ldap://127.0.0.1:$LDAP_PORT" -D "cn=admin,$SUFFIX" -y "$T/admin-password" -f "$T/change.ldif" > /dev/null
FLOOR2=$(floor)
t0=$(now)
ctl sync run example.com > "$T/resync.out"
RESYNC=$(secs "$t0" "$(now)")
RESYNC_RUN=$(last_run_ms)
RESYNC_READ=$(last_ms sync_read)
grep -q "added=$HALF removed=$HALF" "$T/resync.out" || { echo "ldap-sync: unexpected re-sync result:" >&2; cat "$T/resync.out" >&2; exit 1; }
COUNT=$(ctl address count example.com)
REDIS_MEM=$(redis-cli -p "$REDIS_PORT" INFO memory | sed -n 's/^used_memory_human:\(.*\)\r$/\1/p')

REV=$(git rev-parse --short HEAD 2> /dev/null || echo unknown)
[ -z "$(git status --porcelain -- directory 2> /dev/null)" ] || REV="$REV (+ uncommitted changes)"
CPU=$(lscpu 2> /dev/null | sed -n 's/^Model name: *//p' | head -1)
SECTION=$(cat <<MD

## LDAP sync run of $(date -u +%Y-%m-%d\ %H:%M) — commit $REV

\`N=$N bench/ldap-sync.sh\` on $(nproc) × ${CPU:-?}: slapd (mdb, $N AD-style users: mail, SMTP: and X500:
proxyAddresses; server size limit 1,000 per page, as AD), redis-server and doorman-directory on loopback;
page size 1,000; the AD default filter. slapadd of the entries: ${LOAD} s (not part of any timing).

| step | Doorman (wall, from the command) | Doorman (the run itself, log \`sync_run ms\`) | of which the LDAP read and parse (\`sync_read ms\`) | plain \`ldapsearch -E pr=1000\` of the same entries (floor) | ratio wall / floor |
|---|---|---|---|---|---|
| initial sync, $N entries → $N addresses | ${INITIAL} s | $(python3 -c "print(f'{$INITIAL_RUN/1000:.2f}')") s | $(python3 -c "print(f'{$INITIAL_READ/1000:.2f}')") s | ${FLOOR1} s | $(python3 -c "print(f'{$INITIAL/$FLOOR1:.2f}')")× |
| re-sync, 1 % changed (+$HALF −$HALF) | ${RESYNC} s | $(python3 -c "print(f'{$RESYNC_RUN/1000:.2f}')") s | $(python3 -c "print(f'{$RESYNC_READ/1000:.2f}')") s | ${FLOOR2} s | $(python3 -c "print(f'{$RESYNC/$FLOOR2:.2f}')")× |

The list holds $COUNT addresses after the re-sync; the floor read $ENTRIES entries; Redis used_memory
$REDIS_MEM. The wall times include the apply (or RunSync) call, up to one 50 ms poll until the lease holder takes
the request, and the client's polling of the result.
MD
)
echo "$SECTION"
[ -n "${NO_RESULTS:-}" ] || echo "$SECTION" >> bench/RESULTS.md
