#!/usr/bin/env bash
# Fuzzes the text parser, verifier and printer (target `parse` in fuzz/) for a bounded time.
#
#   scripts/fuzz.sh [SECONDS] [-- extra libFuzzer flags]     (default 300 s)
#
# Idempotent: installs cargo-fuzz if missing, refreshes the seed corpus (fuzz/corpus/parse,
# ignored by git) from the chunks of tests/cases/**/*.mlir, and with FUZZ_GEN_SEEDS=1 also
# from modules made by the property-test generator. The machine has stable Rust only, so
# RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its nightly flags. FUZZ_SANITIZER=none (or
# address, the default) picks the sanitizer; FUZZ_JOBS runs that many fuzzers in parallel.
# Crashes land in fuzz/artifacts/parse/; reproduce one with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz parse fuzz/artifacts/parse/crash-...
# and add it to FUZZ_CASES in tests/tests/properties.rs once fixed.
set -euo pipefail

secs=${1:-300}
shift || true
[[ ${1:-} == -- ]] && shift
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

corpus=fuzz/corpus/parse
mkdir -p "$corpus"
# Seeds: each `// -----` chunk of each case file, named by file and index (reruns overwrite).
while IFS= read -r -d '' file; do
    awk -v n=0 -v dir="$corpus" -v base="$(echo "${file#tests/cases/}" | tr / -)" '
        function flush() { if (buf != "") { print buf > (dir "/case-" base "-" n); close(dir "/case-" base "-" n) } buf = ""; n++ }
        $0 == "// -----" { flush(); next }
        { buf = buf $0 "\n" }
        END { flush() }' "$file"
done < <(find tests/cases -name '*.mlir' -print0 2>/dev/null)
if [[ ${FUZZ_GEN_SEEDS:-0} == 1 ]]; then
    LOWBIT_FUZZ_SEEDS="$root/$corpus" cargo test -p lowbit-tests --test properties \
        -- --ignored --exact dump_fuzz_seeds
fi
echo "seed corpus: $(find "$corpus" -type f | wc -l) inputs"

export RUSTC_BOOTSTRAP=1
parallel=()
if [[ ${FUZZ_JOBS:-1} -gt 1 ]]; then
    # libFuzzer then writes each job's log to fuzz-N.log in the current directory.
    parallel=(-jobs="$FUZZ_JOBS" -workers="$FUZZ_JOBS")
fi
# Debug assertions on: integer overflow is a crash too.
cargo fuzz run --fuzz-dir fuzz --sanitizer "${FUZZ_SANITIZER:-address}" --debug-assertions \
    parse "$corpus" -- \
    -max_total_time="$secs" -dict=fuzz/parse.dict -max_len=4096 -rss_limit_mb=2048 \
    -timeout=10 -print_final_stats=1 "${parallel[@]}" "$@"
