#!/usr/bin/env bash
# Builds Doorman's container images with a real Docker engine and runs them for real:
#   1. installs docker.io, debootstrap, swaks and postfix (for smtp-sink) from Debian if missing;
#   2. starts its own dockerd (--iptables=false --bridge=none, own socket, nice'd) in the background, PID kept;
#   3. makes the debian:bookworm-slim base locally (debootstrap --variant=minbase + docker import), since no
#      registry is reachable; the Dockerfiles stay standard (skipped when the image already exists);
#   4. builds doorman/redis, doorman/directory and doorman/edge with --network host (the build stage compiles and
#      runs the unit tests; the directory image reuses the edge image's cached build stage);
#   5. on the host network: a Redis container, a directory container (domains file applied by --apply at start),
#      a domain applied with doormanctl inside the directory container, an edge container, smtp-sink on the host
#      as the back-end, and real SMTP conversations through the edge container with swaks:
#      250 for a listed address (message relayed to the sink and found there), 550 5.1.1 for an unknown one;
#      and STARTTLS with a certificate mounted read-only (swaks --tls --tls-verify; ESMTPS in Received:);
#   6. docker stop (SIGTERM to PID 1) of edge and directory must end with exit code 0 (the graceful drain);
#   7. removes the containers, stops smtp-sink and dockerd by PID, waits for them.
# Idempotent; leaves nothing running. Image and build cache live in $DOORMAN_DOCKER_ROOT (kept between runs).
#
# Environment: JOBS (compile jobs in the image build, default 2), DOORMAN_DOCKER_ROOT (engine data root,
# default /var/lib/doorman-ci-docker), DOORMAN_CI_NICE (niceness of the engine and its builds, default 10),
# DOORMAN_CI_PORT_BASE (first of the loopback ports used, default 36300).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

JOBS=${JOBS:-2}
NICE=${DOORMAN_CI_NICE:-10}
DATA_ROOT=${DOORMAN_DOCKER_ROOT:-/var/lib/doorman-ci-docker}
BASE=${DOORMAN_CI_PORT_BASE:-36300}
REDIS_PORT=$((BASE + 79))      # 36379
DIR_PORT=$((BASE + 51))        # 36351 gRPC
DIR_HTTP_PORT=$((BASE + 26))   # 36326
EDGE_PORT=$((BASE + 25))       # 36325 SMTP
EDGE_HTTP_PORT=$((BASE + 27))  # 36327
EDGE_PROXY_PORT=$((BASE + 28)) # 36328 SMTP behind a (pretend) load balancer: PROXY protocol v2
EDGE_TLS_PORT=$((BASE + 29))   # 36329 SMTP with STARTTLS (certificate mounted read-only)
SINK_PORT=$((BASE + 24))       # 36324
REDIS_VERSION=7.0  # Debian 12's redis-server; the chart's redis.image.tag
VERSION=$(sed -n 's/^project(doorman VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
REVISION=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
PREFIX=doorman-ci

T0=$SECONDS
STEP_T=$SECONDS
step() {  # prints the time the previous step took and names the next one
  local now=$SECONDS
  [ -n "${STEP_NAME:-}" ] && printf 'ci-images: %-44s %4ds\n' "$STEP_NAME" $((now - STEP_T))
  STEP_NAME=$1
  STEP_T=$now
  echo "ci-images: == $1"
}
fail() { echo "ci-images: FAIL: $*" >&2; exit 1; }

if [ "$(id -u)" -ne 0 ]; then
  echo "ci-images: run as root (it starts dockerd)" >&2
  exit 2
fi

WORK=$(mktemp -d /tmp/doorman-ci-images.XXXXXX)
chmod 755 "$WORK"
SOCK="$WORK/docker.sock"
DOCKERD_PID=""
SINK_PID=""
# The Debian CLI (20.10) on purpose: a newer docker CLI elsewhere on PATH may want buildx, which we do not have.
DOCKER_BIN=/usr/bin/docker
docker() { "$DOCKER_BIN" -H "unix://$SOCK" "$@"; }

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  if [ -n "$DOCKERD_PID" ] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
    if [ $rc -ne 0 ]; then
      for c in edge edge-proxy edge-tls directory redis; do
        echo "---- logs of $PREFIX-$c (last 40 lines)"; docker logs --tail 40 "$PREFIX-$c" 2>&1 || true
      done
    fi
    docker rm -f "$PREFIX-edge" "$PREFIX-edge-proxy" "$PREFIX-edge-tls" "$PREFIX-directory" "$PREFIX-redis" >/dev/null 2>&1 || true
  fi
  if [ -n "$SINK_PID" ]; then kill "$SINK_PID" 2>/dev/null || true; wait "$SINK_PID" 2>/dev/null || true; fi
  if [ -n "$DOCKERD_PID" ]; then
    kill -TERM "$DOCKERD_PID" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$DOCKERD_PID" 2>/dev/null; then
      echo "ci-images: dockerd did not stop in 30 s; SIGKILL" >&2
      kill -KILL "$DOCKERD_PID" 2>/dev/null || true
    fi
    wait "$DOCKERD_PID" 2>/dev/null || true
  fi
  [ $rc -ne 0 ] && [ -f "$WORK/dockerd.log" ] && { echo "---- dockerd log (last 30 lines)"; tail -30 "$WORK/dockerd.log"; }
  # dockerd leaves its network namespace mount (exec-root/netns/default) behind; unmount what is under $WORK.
  awk -v p="$WORK/" 'index($2, p) == 1 { print $2 }' /proc/self/mounts | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
  done
  rm -rf "$WORK" 2>/dev/null || echo "ci-images: could not remove $WORK" >&2
  echo "ci-images: total $((SECONDS - T0))s, $([ $rc -eq 0 ] && echo PASS || echo "FAIL (exit $rc)")"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_port() {  # port name
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  fail "$2 is not listening on 127.0.0.1:$1"
}
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# --- 1. packages ---------------------------------------------------------------------------------------------------
step "packages"
missing=()
for p in docker.io debootstrap swaks postfix ca-certificates openssl libnet-ssleay-perl libio-socket-ssl-perl; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "ci-images: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  echo "postfix postfix/mailname string doorman.invalid" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" > "$WORK/apt.log" 2>&1 ||
    { cat "$WORK/apt.log"; fail "apt-get install"; }
fi
for p in $REDIS_PORT $DIR_PORT $DIR_HTTP_PORT $EDGE_PORT $EDGE_HTTP_PORT $EDGE_PROXY_PORT $EDGE_TLS_PORT $SINK_PORT; do
  port_free "$p" || fail "port 127.0.0.1:$p is in use (set DOORMAN_CI_PORT_BASE)"
done

# --- 2. the engine -------------------------------------------------------------------------------------------------
step "dockerd"
mkdir -p "$DATA_ROOT"
# Our own socket, pidfile and exec root: this never touches a system dockerd. containerd is started by dockerd
# itself (a child, under the exec root) and stops with it. nice: builds run as children of the engine.
nice -n "$NICE" /usr/sbin/dockerd --iptables=false --ip-masq=false --bridge=none \
  --data-root "$DATA_ROOT" --exec-root "$WORK/exec" --pidfile "$WORK/dockerd.pid" \
  --host "unix://$SOCK" > "$WORK/dockerd.log" 2>&1 &
DOCKERD_PID=$!
for _ in $(seq 1 600); do
  docker version > /dev/null 2>&1 && break
  kill -0 "$DOCKERD_PID" 2>/dev/null || { cat "$WORK/dockerd.log"; fail "dockerd exited"; }
  sleep 0.1
done
docker version > /dev/null 2>&1 || fail "dockerd did not answer in 60 s"
echo "ci-images: dockerd pid $DOCKERD_PID, storage driver $(docker info -f '{{.Driver}}'), data root $DATA_ROOT"
# Leftovers of an interrupted run.
docker rm -f "$PREFIX-edge" "$PREFIX-edge-proxy" "$PREFIX-edge-tls" "$PREFIX-directory" "$PREFIX-redis" > /dev/null 2>&1 || true

# --- 3. the base image ---------------------------------------------------------------------------------------------
step "base image debian:bookworm-slim"
if docker image inspect debian:bookworm-slim > /dev/null 2>&1; then
  echo "ci-images: debian:bookworm-slim already present"
else
  # The mirror apt uses on this machine (deb822 or one-line sources), else deb.debian.org.
  MIRROR=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
    grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v security | head -1 | tr -d ' ' || true)
  MIRROR=${MIRROR:-http://deb.debian.org/debian}
  SECURITY=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
    grep -oE 'https?://[^ ]+/debian-security/?( |$)' | head -1 | tr -d ' ' || true)
  SECURITY=${SECURITY:-http://deb.debian.org/debian-security}
  echo "ci-images: debootstrap --variant=minbase bookworm from $MIRROR"
  nice -n "$NICE" debootstrap --variant=minbase bookworm "$WORK/rootfs" "$MIRROR" > "$WORK/debootstrap.log" 2>&1 ||
    { tail -30 "$WORK/debootstrap.log"; fail "debootstrap"; }
  rm -f "$WORK/rootfs/etc/apt/sources.list"
  cat > "$WORK/rootfs/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb
URIs: ${MIRROR%/}
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${SECURITY%/}
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  # Like the official slim image: no package cache, no lists, no docs.
  printf 'path-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\npath-exclude /usr/share/locale/*\n' \
    > "$WORK/rootfs/etc/dpkg/dpkg.cfg.d/docker-slim"
  rm -rf "$WORK/rootfs/var/cache/apt/archives/"*.deb "$WORK/rootfs/var/lib/apt/lists/"* \
    "$WORK/rootfs/usr/share/doc/"* "$WORK/rootfs/usr/share/man/"* "$WORK/rootfs/var/log/"*.log
  tar --numeric-owner -C "$WORK/rootfs" -c . |
    docker import --change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      - debian:bookworm-slim > /dev/null
  rm -rf "$WORK/rootfs"
fi
docker image ls debian:bookworm-slim

# --- 4. the images -------------------------------------------------------------------------------------------------
# The edge and directory images must share their build stage, or the sources are compiled twice.
extract_build_stage() { sed -n '/^ARG BASE_IMAGE/,/^FROM .* AS runtime/p' "$1"; }
cmp -s <(extract_build_stage docker/edge.Dockerfile) <(extract_build_stage docker/directory.Dockerfile) ||
  fail "docker/edge.Dockerfile and docker/directory.Dockerfile build stages differ"
export DOCKER_BUILDKIT=1
build_image() {  # name dockerfile [version]
  local version=${3:-$VERSION}
  docker build --network host --progress plain \
    --build-arg JOBS="$JOBS" --build-arg VERSION="$version" --build-arg REVISION="$REVISION" \
    --build-arg CREATED="$(date -u +%Y-%m-%d)" \
    -f "$2" -t "$1:$version" -t "$1:latest" . > "$WORK/build-${1##*/}.log" 2>&1 ||
    { tail -60 "$WORK/build-${1##*/}.log"; fail "docker build $1"; }
  grep -E '^#[0-9]+ \[.*(ctest|Test #|tests passed)' "$WORK/build-${1##*/}.log" | tail -3 || true
}
step "build doorman/redis"
build_image doorman/redis docker/redis.Dockerfile "$REDIS_VERSION"
step "build doorman/edge (compile + unit tests)"
build_image doorman/edge docker/edge.Dockerfile
grep -E 'tests passed|Total Test time' "$WORK/build-edge.log" || echo "ci-images: (unit tests: cached from an earlier run)"
step "build doorman/directory"
build_image doorman/directory docker/directory.Dockerfile
docker image ls 'doorman/*'
for i in "doorman/edge:$VERSION" "doorman/directory:$VERSION" "doorman/redis:$REDIS_VERSION"; do
  user=$(docker image inspect -f '{{.Config.User}}' "$i")
  [ "$user" = "65532:65532" ] || fail "$i runs as '$user', not 65532"
  [ "$(docker image inspect -f '{{.Config.StopSignal}}' "$i")" = "SIGTERM" ] || fail "$i: STOPSIGNAL"
done
# The chart's sentinel architecture runs redis-sentinel, redis-cli, timeout, seq and hostname from the Redis image.
for tool in "redis-sentinel --version" "redis-cli --version" "timeout --version" "seq 1" "hostname"; do
  docker run --rm --entrypoint /bin/sh "doorman/redis:$REDIS_VERSION" -c "$tool" > /dev/null 2>&1 ||
    fail "doorman/redis lacks '${tool%% *}' (redis.architecture: sentinel needs it)"
done

# --- 5. run them for real ------------------------------------------------------------------------------------------
step "run redis, directory, edge, sink"
SINK_DIR="$WORK/sink"
mkdir -p "$SINK_DIR" "$WORK/conf"
chmod 777 "$SINK_DIR"
SINK_USER=$(id -un); [ "$(id -u)" -eq 0 ] && SINK_USER=nobody
/usr/sbin/smtp-sink -u "$SINK_USER" -h backend.ci.invalid -d "$SINK_DIR/%Y%m%d%H%M%S." "127.0.0.1:$SINK_PORT" 100 \
  > "$WORK/sink.log" 2>&1 &
SINK_PID=$!
wait_port "$SINK_PORT" smtp-sink

# Read-only root filesystems and no capabilities, as in the chart.
HARDEN=(--read-only --cap-drop ALL --security-opt no-new-privileges --network host)

docker run -d --name "$PREFIX-redis" "${HARDEN[@]}" --tmpfs /data:uid=65532,gid=65532,mode=0770 \
  "doorman/redis:$REDIS_VERSION" --bind 127.0.0.1 --port "$REDIS_PORT" --dir /data --save "" --appendonly no > /dev/null
wait_port "$REDIS_PORT" redis

# The domains file, applied by the directory at start (what the chart does with its ConfigMap).
cat > "$WORK/conf/domains.yaml" <<YAML
domains:
  - name: applied.ci.invalid
    mode: list
    routes: ["127.0.0.1:$SINK_PORT"]
    addresses: [carol]
YAML
chmod 644 "$WORK/conf/domains.yaml"; chmod 755 "$WORK/conf"
# --http-listen (metrics and probes) is passed only to binaries that have it (older revisions do not).
HAS_HTTP=0 DIR_HAS_HTTP=0
help=$(docker run --rm --network none "doorman/edge:$VERSION" --help 2>&1 || true)
grep -q -- '--http-listen' <<< "$help" && HAS_HTTP=1
HAS_PROXY=0
grep -q -- '--proxy-protocol' <<< "$help" && HAS_PROXY=1
HAS_TLS=0
grep -q -- '--tls-cert-file' <<< "$help" && HAS_TLS=1
help=$(docker run --rm --network none "doorman/directory:$VERSION" --help 2>&1 || true)
grep -q -- '--http-listen' <<< "$help" && DIR_HAS_HTTP=1
head -c 30 /dev/urandom | base64 > "$WORK/conf/admin-token"; chmod 644 "$WORK/conf/admin-token"
DIR_ARGS=(--listen "127.0.0.1:$DIR_PORT" --redis-host 127.0.0.1 --redis-port "$REDIS_PORT"
  --apply /etc/doorman/domains.yaml --log-level debug --admin-token-file /etc/doorman/admin-token)
EDGE_ARGS=(--listen "127.0.0.1:$EDGE_PORT" --directory "127.0.0.1:$DIR_PORT" --hostname mx.ci.invalid
  --shutdown-grace-seconds 20)
[ $DIR_HAS_HTTP -eq 1 ] && DIR_ARGS+=(--http-listen "127.0.0.1:$DIR_HTTP_PORT")
[ $HAS_HTTP -eq 1 ] && EDGE_ARGS+=(--http-listen "127.0.0.1:$EDGE_HTTP_PORT")
docker run -d --name "$PREFIX-directory" "${HARDEN[@]}" -v "$WORK/conf:/etc/doorman:ro" \
  "doorman/directory:$VERSION" "${DIR_ARGS[@]}" > /dev/null
wait_port "$DIR_PORT" directory

step "doormanctl inside the directory container"
ctl() { docker exec -e DOORMAN_TOKEN_FILE=/etc/doorman/admin-token "$PREFIX-directory" doormanctl --server "127.0.0.1:$DIR_PORT" "$@"; }
ctl domain add ci.invalid --mode list --route "127.0.0.1:$SINK_PORT"
ctl address add alice@ci.invalid bob@ci.invalid
ctl domain list
ctl explain alice@ci.invalid
ctl domain get applied.ci.invalid > /dev/null || fail "the domains file given to --apply was not applied"

docker run -d --name "$PREFIX-edge" "${HARDEN[@]}" "doorman/edge:$VERSION" "${EDGE_ARGS[@]}" > /dev/null
wait_port "$EDGE_PORT" edge
if [ $HAS_HTTP -eq 1 ]; then
  wait_port "$EDGE_HTTP_PORT" "edge http"
  for path in healthz readyz metrics; do
    code=$(python3 -c "import urllib.request,sys
try: print(urllib.request.urlopen('http://127.0.0.1:$EDGE_HTTP_PORT/$path', timeout=5).status)
except Exception as e: print(getattr(e, 'code', e))")
    [ "$code" = 200 ] || fail "edge /$path answered $code"
  done
  echo "ci-images: edge /healthz /readyz /metrics: 200"
  if [ $DIR_HAS_HTTP -eq 1 ]; then
    code=$(python3 -c "import urllib.request
try: print(urllib.request.urlopen('http://127.0.0.1:$DIR_HTTP_PORT/metrics', timeout=5).status)
except Exception as e: print(getattr(e, 'code', e))")
    [ "$code" = 200 ] || fail "directory /metrics answered $code"
    echo "ci-images: directory /metrics: 200"
  fi
else
  echo "ci-images: (this build has no --http-listen; HTTP probes not checked)"
fi

# --- SMTP through the edge container -------------------------------------------------------------------------------
step "SMTP conversations through the edge container"
TOKEN="ci-$$-$RANDOM"
SWAKS=(swaks --server "127.0.0.1:$EDGE_PORT" --from sender@example.org --helo client.ci.invalid --timeout 30)
"${SWAKS[@]}" --to alice@ci.invalid --header "X-Doorman-CI: $TOKEN" --body "hello through the container" \
  > "$WORK/swaks-ok.log" 2>&1 || { cat "$WORK/swaks-ok.log"; fail "listed address: swaks failed"; }
grep -E '^<- +250 ' "$WORK/swaks-ok.log" | sed 's/^/  /'
grep -qE '^<- +220 .*mx\.ci\.invalid' "$WORK/swaks-ok.log" || { cat "$WORK/swaks-ok.log"; fail "no 220 greeting"; }
grep -qE '^<- +250 2\.0\.0 ' "$WORK/swaks-ok.log" || { cat "$WORK/swaks-ok.log"; fail "message not accepted"; }
echo "ci-images: alice@ci.invalid: 250 at RCPT and after DATA"

rc=0
"${SWAKS[@]}" --to nobody@ci.invalid > "$WORK/swaks-unknown.log" 2>&1 || rc=$?
grep -qE '^<\*\* +550 5\.1\.1 ' "$WORK/swaks-unknown.log" ||
  { cat "$WORK/swaks-unknown.log"; fail "unknown address: no 550 5.1.1 (swaks exit $rc)"; }
grep -E '^<\*\* +550' "$WORK/swaks-unknown.log" | sed 's/^/  /'
echo "ci-images: nobody@ci.invalid: 550 5.1.1"

"${SWAKS[@]}" --to carol@applied.ci.invalid > "$WORK/swaks-applied.log" 2>&1 ||
  { cat "$WORK/swaks-applied.log"; fail "address of the --apply file: swaks failed"; }
echo "ci-images: carol@applied.ci.invalid (domains file): 250"

for _ in $(seq 1 50); do grep -qs "X-Doorman-CI: $TOKEN" "$SINK_DIR"/* && break; sleep 0.1; done
grep -qs "X-Doorman-CI: $TOKEN" "$SINK_DIR"/* || { ls -la "$SINK_DIR"; fail "the message did not reach the sink"; }
echo "ci-images: the sink received the message ($(grep -ls "X-Doorman-CI: $TOKEN" "$SINK_DIR"/* | head -1))"

if [ $HAS_PROXY -eq 1 ]; then
  step "PROXY protocol v2 (edge behind a load balancer)"
  docker run -d --name "$PREFIX-edge-proxy" "${HARDEN[@]}" "doorman/edge:$VERSION" \
    --listen "127.0.0.1:$EDGE_PROXY_PORT" --directory "127.0.0.1:$DIR_PORT" --hostname mx-lb.ci.invalid \
    --proxy-protocol v2 --proxy-trusted-networks 127.0.0.0/8 --http-listen "" > /dev/null
  wait_port "$EDGE_PROXY_PORT" "edge (PROXY)"
  PTOKEN="ci-proxy-$$-$RANDOM"
  "${SWAKS[@]/$EDGE_PORT/$EDGE_PROXY_PORT}" --to bob@ci.invalid --header "X-Doorman-CI: $PTOKEN" \
    --proxy-version 2 --proxy-family AF_INET --proxy-source 192.0.2.10 --proxy-source-port 40000 \
    --proxy-dest 192.0.2.25 --proxy-dest-port 25 > "$WORK/swaks-proxy.log" 2>&1 ||
    { cat "$WORK/swaks-proxy.log"; fail "PROXY v2: swaks failed"; }
  for _ in $(seq 1 50); do grep -qs "X-Doorman-CI: $PTOKEN" "$SINK_DIR"/* && break; sleep 0.1; done
  f=$(grep -ls "X-Doorman-CI: $PTOKEN" "$SINK_DIR"/* | head -1)
  [ -n "$f" ] || fail "PROXY v2: the message did not reach the sink"
  grep -q '192\.0\.2\.10' "$f" || { cat "$f"; fail "PROXY v2: Received: does not name the real client 192.0.2.10"; }
  echo "ci-images: PROXY v2: 250, relayed, Received: names the client address from the header (192.0.2.10)"
  rc=0
  "${SWAKS[@]/$EDGE_PORT/$EDGE_PROXY_PORT}" --to bob@ci.invalid > "$WORK/swaks-noproxy.log" 2>&1 || rc=$?
  [ $rc -ne 0 ] && ! grep -qE '^<- +220' "$WORK/swaks-noproxy.log" ||
    { cat "$WORK/swaks-noproxy.log"; fail "PROXY v2: a connection without a header was served"; }
  echo "ci-images: PROXY v2: a connection without a header is refused (no greeting)"
  docker stop --time 40 "$PREFIX-edge-proxy" > /dev/null
fi

if [ $HAS_TLS -eq 1 ]; then
  step "STARTTLS (certificate from a mounted Secret-like directory)"
  TLS_DIR="$WORK/tls"
  mkdir -p "$TLS_DIR"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=mx-tls.ci.invalid" \
    -addext "subjectAltName=DNS:mx-tls.ci.invalid" -keyout "$TLS_DIR/tls.key" -out "$TLS_DIR/tls.crt" 2> /dev/null ||
    fail "openssl could not make a test certificate"
  chmod 0644 "$TLS_DIR/tls.key"  # the container runs as 65532; in Kubernetes fsGroup does this
  docker run -d --name "$PREFIX-edge-tls" "${HARDEN[@]}" -v "$TLS_DIR:/etc/doorman/tls:ro" "doorman/edge:$VERSION" \
    --listen "127.0.0.1:$EDGE_TLS_PORT" --directory "127.0.0.1:$DIR_PORT" --hostname mx-tls.ci.invalid \
    --tls-cert-file /etc/doorman/tls/tls.crt --tls-key-file /etc/doorman/tls/tls.key --http-listen= > /dev/null
  wait_port "$EDGE_TLS_PORT" "edge (STARTTLS)"
  TTOKEN="ci-tls-$$-$RANDOM"
  "${SWAKS[@]/$EDGE_PORT/$EDGE_TLS_PORT}" --to alice@ci.invalid --header "X-Doorman-CI: $TTOKEN" --tls \
    --tls-verify --tls-ca-path "$TLS_DIR/tls.crt" --tls-sni mx-tls.ci.invalid > "$WORK/swaks-tls.log" 2>&1 ||
    { cat "$WORK/swaks-tls.log"; fail "STARTTLS: swaks --tls failed"; }
  grep -q 'TLS started' "$WORK/swaks-tls.log" || { cat "$WORK/swaks-tls.log"; fail "STARTTLS: no TLS session"; }
  for _ in $(seq 1 50); do grep -qs "X-Doorman-CI: $TTOKEN" "$SINK_DIR"/* && break; sleep 0.1; done
  f=$(grep -ls "X-Doorman-CI: $TTOKEN" "$SINK_DIR"/* | head -1)
  [ -n "$f" ] || fail "STARTTLS: the message did not reach the sink"
  grep -q 'with ESMTPS' "$f" && grep -q 'using TLSv1' "$f" ||
    { head -5 "$f"; fail "STARTTLS: Received: does not record ESMTPS and the cipher"; }
  echo "ci-images: STARTTLS: verified certificate, 250, relayed; Received: $(grep -o 'using TLSv[0-9.]* with cipher [A-Z0-9_-]*' "$f")"
  docker stop --time 40 "$PREFIX-edge-tls" > /dev/null
fi

# --- 6. graceful stop ----------------------------------------------------------------------------------------------
step "docker stop (SIGTERM to PID 1)"
for c in edge directory redis; do
  docker stop --time 40 "$PREFIX-$c" > /dev/null
  code=$(docker inspect -f '{{.State.ExitCode}}' "$PREFIX-$c")
  echo "ci-images: $PREFIX-$c exited with $code"
  [ "$code" = 0 ] || { docker logs --tail 20 "$PREFIX-$c"; fail "$PREFIX-$c did not exit 0 on SIGTERM"; }
done
docker logs "$PREFIX-edge" 2>&1 | grep -iE 'shut|drain|stop' | tail -3 | sed 's/^/  edge: /' || true
step "stop"
