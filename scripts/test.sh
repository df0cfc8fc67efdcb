#!/usr/bin/env bash
# Runs every test of Panorama: the Rust workspace (unit tests, the shared
# store suite, integration tests against a real server, durability with
# kill -9, the demo), then the web console's unit tests and its end-to-end
# tests in headless Chromium against the real binary.
# Needs: cargo, Node.js 20 + npm, and Debian's chromium for the e2e tests.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build

count() { # word log → the sum of every "N word" in the log (0 when none)
  # Tests only: vitest's "Test Files N passed" counts files. grep finds
  # nothing in a clean log; under pipefail that must not end the script.
  grep -v 'Test Files' "$2" | grep -Eo "[0-9]+ $1" | awk '{s+=$1} END {print s+0}' || true
}

summary() { # name log → "name: N passed, N failed"
  echo "$1: $(count passed "$2") passed, $(count failed "$2") failed"
}

echo "== web: install"
(cd web && { [ -d node_modules ] || npm ci --no-audit --no-fund; })

echo "== rust tests"
set +e
cargo test --workspace --all-targets --no-fail-fast 2>&1 | tee build/cargo-test.log | grep -E '^(test result|     Running|error|failures:|---- )|panicked'
rust=${PIPESTATUS[0]}
set -e
summary rust build/cargo-test.log

echo "== web unit tests"
set +e
(cd web && npm test 2>&1) | tee build/web-test.log | tail -15
web=${PIPESTATUS[0]}
summary web build/web-test.log

echo "== web end-to-end tests (headless Chromium)"
if [ -x /usr/bin/chromium ]; then
  (cd web && PANORAMA_BIN="${CARGO_TARGET_DIR:-$PWD/../target}/debug/panorama" npm run e2e 2>&1) | tee build/web-e2e.log | tail -25
  e2e=${PIPESTATUS[0]}
  summary e2e build/web-e2e.log
elif [ "${CI:-}" = "true" ]; then
  echo "chromium is missing: install Debian's chromium (apt-get install chromium)"
  e2e=1
else
  echo "SKIPPED: /usr/bin/chromium is missing (apt-get install chromium); screenshots not taken"
  e2e=0
fi
set -e

total_p=0; total_f=0
for log in build/cargo-test.log build/web-test.log build/web-e2e.log; do
  [ -f "$log" ] || continue
  total_p=$((total_p + $(count passed "$log")))
  total_f=$((total_f + $(count failed "$log")))
done
if [ "$rust" -ne 0 ] || [ "$web" -ne 0 ] || [ "$e2e" -ne 0 ]; then
  echo "FAILED (rust=$rust web=$web e2e=$e2e); logs in build/"
  grep -E -A30 '^failures:' build/cargo-test.log | head -150 || true
  for log in build/web-test.log build/web-e2e.log; do
    [ -f "$log" ] && { grep -E -B2 -A40 ' FAIL ' "$log" | head -200 || true; }
  done
  echo "all: $total_p passed, $((total_f > 0 ? total_f : 1)) failed"
  exit 1
fi
echo "all: $total_p passed, $total_f failed"
