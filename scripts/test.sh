#!/usr/bin/env bash
# The whole lowbit test suite: set-up (idempotent), then every test of the workspace.
# CI runs exactly this (through .ci/run) on a fresh clone with CI=true, where insta
# writes no snapshot and fails on any mismatch.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
echo "test: cargo test --workspace (the first build compiles melior/inkwell: several minutes)"
start=$(date +%s)
cargo test --workspace --no-fail-fast
echo "test: done in $(( $(date +%s) - start )) s"
