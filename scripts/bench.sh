#!/usr/bin/env bash
# Issue 7's benchmark in one command: installs the peer stores from Debian's
# packages (scripts/bench-peers.sh), builds Panorama and the bench in release
# mode, and runs crates/panorama-bench over the full dataset (5,000 sensors ×
# 1,440 minutes = 7.2 M observations). The Markdown table is printed and
# written to build/bench.md. Extra arguments go to panorama-bench, e.g.
#   scripts/bench.sh --sensors 200 --stores panorama,victoriametrics
# PANORAMA_BENCH_DIR picks where the temporary data dirs go (a real disk).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build

if [ "${PANORAMA_BENCH_SKIP_PEERS:-0}" != "1" ]; then
  bash scripts/bench-peers.sh >&2
fi
cargo build --release -p panorama -p panorama-bench

args=(--markdown build/bench.md)
if [ -n "${PANORAMA_BENCH_DIR:-}" ]; then
  args+=(--work-dir "$PANORAMA_BENCH_DIR")
fi
exec target/release/panorama-bench "${args[@]}" "$@"
