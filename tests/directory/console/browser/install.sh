#!/usr/bin/env bash
# Installs the browser test's npm tooling (puppeteer-core, pinned in
# package-lock.json) with `npm ci` into DIR (default build/console-test),
# and checks that Debian's Chromium is there. No browser is downloaded:
# puppeteer-core has none, and PUPPETEER_SKIP_DOWNLOAD is set besides.
# Re-running is cheap: nothing is done while DIR's copy of the lock file is
# the same. Called by scripts/test.sh (after scripts/setup.sh) and by run.sh.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
DIR="${1:-$HERE/../../../../build/console-test}"
mkdir -p "$DIR"
command -v chromium > /dev/null || { echo "console-test: chromium missing (scripts/setup.sh installs it)" >&2; exit 1; }
command -v npm > /dev/null || { echo "console-test: npm missing (scripts/setup.sh installs it)" >&2; exit 1; }
if cmp -s "$HERE/package-lock.json" "$DIR/package-lock.json" && [ -d "$DIR/node_modules/puppeteer-core" ]; then
  exit 0
fi
cp "$HERE/package.json" "$HERE/package-lock.json" "$DIR/"
echo "console-test: npm ci in $DIR"
(cd "$DIR" && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error > npm.log 2>&1) ||
  { cat "$DIR/npm.log"; rm -f "$DIR/package-lock.json"; echo "console-test: npm ci failed" >&2; exit 1; }
