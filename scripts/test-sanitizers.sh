#!/usr/bin/env bash
# Builds everything with AddressSanitizer + UndefinedBehaviorSanitizer in
# build-asan/ and runs the whole unit and integration suite against it. Every
# sanitizer report of any process (tests and the services they start) goes to
# a log file; any such file fails the run. LeakSanitizer is on (every service
# exits normally on SIGTERM, so its leak check runs); DOORMAN_DETECT_LEAKS=0
# turns it off.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DDOORMAN_SANITIZE=ON > build-asan.log 2>&1 || { cat build-asan.log; exit 1; }
cmake --build build-asan -j2
REPORTS=$(mktemp -d /tmp/doorman-sanitizers.XXXXXX)
export ASAN_OPTIONS="log_path=$REPORTS/asan:detect_leaks=${DOORMAN_DETECT_LEAKS:-1}:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="log_path=$REPORTS/ubsan:print_stacktrace=1:halt_on_error=1"
status=0
ctest --test-dir build-asan --output-on-failure -j2 --timeout 600 2>&1 | tee build-asan-ctest.log || status=$?
bash scripts/ctest-summary.sh build-asan-ctest.log || status=1
sleep 2  # a process still writing its report (symbolising is slow under ASan)
if compgen -G "$REPORTS/*" > /dev/null; then
  echo "sanitizer reports:"
  for f in "$REPORTS"/*; do echo "== $f"; head -120 "$f"; done
  status=1
fi
rm -rf "$REPORTS"
exit $status
