#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) in build-fuzz/ and
# runs each for SECONDS (default 60) from its corpus in tests/fuzz/<target>/.
# A crash fails the run; the crashing input is copied into the target's
# corpus folder as crash-<hash>, where the ordinary test suite replays it
# from then on (commit it together with the fix).
#   scripts/fuzz.sh [SECONDS] [TARGET...]     e.g. scripts/fuzz.sh 3600 fuzz_session
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-60}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(fuzz_address fuzz_command fuzz_data_reader fuzz_session fuzz_reply_parser fuzz_proxy fuzz_batch_limit fuzz_smtp_client)
bash scripts/setup.sh
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DDOORMAN_FUZZ=ON -DDOORMAN_BUILD_TESTS=OFF > build-fuzz.log 2>&1 || { cat build-fuzz.log; exit 1; }
cmake --build build-fuzz -j2 --target "${TARGETS[@]}"
status=0
for t in "${TARGETS[@]}"; do
  work=$(mktemp -d /tmp/doorman-fuzz-$t.XXXXXX)
  cp -r "tests/fuzz/$t/." "$work/"
  echo "== $t: ${SECONDS_PER_TARGET}s"
  if ! build-fuzz/fuzz/$t -max_total_time="$SECONDS_PER_TARGET" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="$work/" -print_final_stats=1 "$work" > "$work.log" 2>&1; then
    status=1
    tail -40 "$work.log"
    for c in "$work"/crash-* "$work"/timeout-* "$work"/oom-*; do
      [ -e "$c" ] && cp "$c" "tests/fuzz/$t/" && echo "saved $(basename "$c") to tests/fuzz/$t/"
    done
  else
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$work.log" | tr '\n' ' '; echo
  fi
  rm -rf "$work" "$work.log"
done
exit $status
