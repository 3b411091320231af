#!/usr/bin/env bash
# The test command (CI runs exactly this through .ci/run). Installs what is
# missing (Debian packages only), then runs every stage and stops at the
# first failure:
#   1. build + the whole GoogleTest suite with ctest: unit, integration (real
#      redis-server, directory, edge, Postfix, smtp-sink, fake back-ends on
#      loopback, stopped by PID) and observability (a real Prometheus);
#   2. the same suite built with AddressSanitizer + UndefinedBehaviorSanitizer;
#   3. a short libFuzzer run of every fuzz target (FUZZ_SECONDS each, default 30);
#   4. the Helm chart checks and the container images, when their scripts exist.
# `scripts/test.sh --quick` runs stage 1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1

stage() { echo; echo "=== $* ($(date -u +%H:%M:%S))"; }

bash scripts/setup.sh
# The console's browser test needs puppeteer-core from npm (pinned; no browser download).
bash tests/directory/console/browser/install.sh build/console-test

stage "1/4 build and test"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo > build.log 2>&1 || { cat build.log; exit 1; }
cmake --build build -j2
ctest --test-dir build --output-on-failure -j2 --timeout 300 | tee build-ctest.log
# A skipped test fails the run (CI is root: the real Postfix tests must run).
bash scripts/ctest-summary.sh build-ctest.log
total=$(sed -n 's/.*tests passed, 0 tests failed out of \([0-9]*\).*/\1/p' build-ctest.log | tail -1)
skipped=$(grep -c '(Skipped)' build-ctest.log || true)

if [ "$QUICK" = 0 ]; then
  stage "2/4 sanitizers (ASan + UBSan)"
  bash scripts/test-sanitizers.sh

  stage "3/4 fuzzing"
  bash scripts/fuzz.sh "${FUZZ_SECONDS:-30}"

  stage "4/4 chart and images"
  if [ -x scripts/ci-chart.sh ]; then bash scripts/ci-chart.sh; fi
  if [ -x scripts/ci-images.sh ]; then bash scripts/ci-images.sh; fi
fi

echo
echo "tests: $((total - skipped)) passed, 0 failed, $skipped skipped"
