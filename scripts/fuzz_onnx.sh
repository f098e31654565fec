#!/usr/bin/env bash
# Fuzzes the ONNX importer (target `onnx_import` in fuzz/) for a bounded time.
#
#   scripts/fuzz_onnx.sh [SECONDS] [-- extra libFuzzer flags]     (default 600 s)
#
# Seeds fuzz/corpus/onnx_import (ignored by git) with the small valid models that
# scripts/ort_contrib_cases.py writes (every com.microsoft op, external-data and refusal
# models), then runs libFuzzer under AddressSanitizer with debug assertions, as
# scripts/fuzz.sh does for the parser. lowbit-compiler links LLVM, so the first build is
# long; it lands in fuzz/target. Crashes land in fuzz/artifacts/onnx_import/; add each one,
# once fixed, to FUZZ_CASES in tests/tests/onnx_contrib.rs.
set -euo pipefail

secs=${1:-600}
shift || true
[[ ${1:-} == -- ]] && shift
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

corpus=fuzz/corpus/onnx_import
mkdir -p "$corpus"
seeds=$(mktemp -d)
python3 scripts/ort_contrib_cases.py "$seeds" >/dev/null
while IFS= read -r -d '' model; do
    rel=${model#"$seeds"/}
    cp "$model" "$corpus/seed-${rel//\//-}"
done < <(find "$seeds" -name model.onnx -print0)
rm -rf "$seeds"
echo "seed corpus: $(find "$corpus" -type f | wc -l) inputs"

export RUSTC_BOOTSTRAP=1
cargo fuzz run --fuzz-dir fuzz --sanitizer "${FUZZ_SANITIZER:-address}" --debug-assertions \
    onnx_import "$corpus" -- \
    -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 "$@"
