#!/usr/bin/env bash
# Installs the dependencies (Debian 12) and builds tinyFaaS into ./build.
# Extra arguments go to CMake's configure step, e.g. -DTINYFAAS_SANITIZE=ON.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPython3_EXECUTABLE=/usr/bin/python3 "$@"
cmake --build build -j"$(nproc)"
