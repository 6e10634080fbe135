#!/usr/bin/env bash
# Installs the dependencies (Debian 12) and builds tinyFaaS into ./build.
# Extra arguments go to CMake's configure step, e.g. -DTINYFAAS_SANITIZE=ON.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# ccache, when installed, makes rebuilds of other checkouts cheap; optional.
launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPython3_EXECUTABLE=/usr/bin/python3 "${launcher[@]}" "$@"
cmake --build build -j"$(nproc)"
