#!/usr/bin/env bash
# Installs the dependencies, builds with warnings as errors, and runs every
# test: unit tests, handler runtime tests and end-to-end tests against the
# real daemon (with the process backend and, where the Docker engine runs,
# the docker backend).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh -DTINYFAAS_WERROR=ON
scripts/start-dockerd.sh
ctest --test-dir build --output-on-failure -j2 "$@"
