#!/usr/bin/env bash
# Installs the dependencies, builds with warnings as errors, checks the C++
# formatting (scripts/check-format.sh), and runs every test: unit tests, handler runtime tests and end-to-end tests against the
# real daemon (with the process backend and, where the Docker engine runs,
# the docker backend). Then the unit and e2e tests again under ASan/UBSan,
# and every fuzzer for a minute (scripts/test-sanitizers.sh, scripts/fuzz.sh;
# own build dir). Arguments go to the first ctest run only.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh -DTINYFAAS_WERROR=ON
# Without an engine the docker-backend tests skip, each saying why; the rest
# still has to pass.
if ! scripts/start-dockerd.sh; then
  echo "WARNING: no Docker engine could be started: the docker-backend tests will be skipped" >&2
fi
status=0
# A format slip fails the run, but after the tests have run too.
scripts/check-format.sh || status=1
ctest --test-dir build --output-on-failure -j2 "$@" || status=1
scripts/test-sanitizers.sh || status=1
scripts/fuzz.sh || status=1
exit "$status"
