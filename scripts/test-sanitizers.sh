#!/usr/bin/env bash
# Runs the unit tests and end-to-end tests (process backend) against the
# AddressSanitizer + UndefinedBehaviorSanitizer build in ./build-sanitize.
# Any sanitizer report fails the run, also one from a process whose exit no
# test checks (the daemon at shutdown, a CLI call): reports go to files and
# are listed at the end.
#
#   scripts/test-sanitizers.sh                        # unit tests + every e2e module
#   SANITIZE_E2E='^e2e_(http|coap)$' scripts/test-sanitizers.sh   # a ctest regex
set -euo pipefail
cd "$(dirname "$0")/.."
# Every e2e module on the process backend (e2e_docker and the e2e_docker_*
# reruns need the docker backend). Under ASan it takes about 1.5 min (-j2):
# its time goes mostly to handler processes, which are not instrumented.
e2e="${SANITIZE_E2E:-^e2e_}"

scripts/build-sanitizers.sh

reports="$PWD/build-sanitize/sanitizer-reports"
rm -rf "$reports"
mkdir -p "$reports"
# LeakSanitizer runs at a normal exit: unit tests, CLI calls and the daemon
# (which returns from main after SIGTERM; README.md, "Sanitizers").
export ASAN_OPTIONS="detect_leaks=1:log_path=$reports/asan"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$reports/ubsan"
export TINYFAAS_E2E_BACKEND=process

status=0
ctest --test-dir build-sanitize -L unit --output-on-failure -j2 --timeout 900 || status=1
# The e2e run's leak-checked processes are the daemon and CLI calls; one
# libcoap bug is suppressed there (the file says which).
LSAN_OPTIONS="suppressions=$PWD/tests/sanitizers/lsan-e2e.supp:print_suppressions=0" \
  ctest --test-dir build-sanitize -L e2e -LE docker -R "$e2e" -E '^e2e_docker$' --output-on-failure -j2 || status=1

if compgen -G "$reports/*" >/dev/null; then
  echo "sanitizer reports:" >&2
  for f in "$reports"/*; do echo "--- $f" >&2; head -n 80 "$f" >&2; done
  status=1
fi
exit "$status"
