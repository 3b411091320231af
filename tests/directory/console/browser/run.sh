#!/usr/bin/env bash
# The console's browser test (ctest: directory.console.Browser).
#   run.sh WORKDIR DIRECTORY_BIN EDGE_BIN
# Installs puppeteer-core with npm ci into WORKDIR (install.sh; pinned by
# package-lock.json) and runs console.test.mjs with Debian's Chromium.
# Screenshots go to WORKDIR/screenshots, and also to docs/console/ when
# DOORMAN_UPDATE_SCREENSHOTS=1 (how the README's pictures are made).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$1"
WORK="$(cd "$1" && pwd)"
bash "$HERE/install.sh" "$WORK"
SHOTS="$WORK/screenshots"
if [ "${DOORMAN_UPDATE_SCREENSHOTS:-0}" = 1 ]; then SHOTS="$HERE/../../../../docs/console"; fi
mkdir -p "$SHOTS"
export CONSOLE_NODE_MODULES="$WORK/node_modules"
exec node "$HERE/console.test.mjs" --directory "$2" --edge "$3" --screenshots "$SHOTS" --work "$WORK"
