#!/usr/bin/env bash
# The test command: installs what is missing (Debian packages), builds
# everything and runs the whole test suite (unit and integration) with ctest.
# Integration tests start their own redis-server, directory, edge and back-end
# processes on loopback and stop them by PID.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo > build.log 2>&1 || { cat build.log; exit 1; }
cmake --build build -j2
ctest --test-dir build --output-on-failure -j2 --timeout 300
