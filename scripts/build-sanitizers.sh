#!/usr/bin/env bash
# Builds tinyFaaS with clang, AddressSanitizer, UndefinedBehaviorSanitizer
# (no recovery: the first finding aborts) and libFuzzer coverage into
# ./build-sanitize, apart from the normal ./build. Arguments are the targets
# to build (default: all, which includes the fuzz_* targets).
# Used by scripts/test-sanitizers.sh and scripts/fuzz.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --sanitizers
launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
CC=clang CXX=clang++ cmake -S . -B build-sanitize -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DPython3_EXECUTABLE=/usr/bin/python3 -DTINYFAAS_FUZZ=ON "${launcher[@]}" >/dev/null
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build build-sanitize -j"$(nproc)" "${targets[@]}"
