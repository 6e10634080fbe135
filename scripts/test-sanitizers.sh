#!/usr/bin/env bash
# Runs the unit tests and end-to-end tests (process backend) against the
# AddressSanitizer + UndefinedBehaviorSanitizer build in ./build-sanitize.
# Any sanitizer report fails the run, also one from a process whose exit no
# test checks (the daemon at shutdown, a CLI call): reports go to files and
# are listed at the end.
#
#   scripts/test-sanitizers.sh                 # unit tests + the e2e subset
#   SANITIZE_E2E=all scripts/test-sanitizers.sh   # the whole e2e suite
#   SANITIZE_E2E='e2e_http$' scripts/test-sanitizers.sh   # a ctest regex
set -euo pipefail
cd "$(dirname "$0")/.."
# The e2e modules that drive the daemon's own code hardest (every protocol,
# bad input, uploads, restarts). The rest mostly wait on handler processes,
# which are not instrumented; README.md, "Sanitizers", has the timings.
default_e2e='^e2e_(http|coap|coap_async|grpc|bad_input|management|cli|lifecycle|restart)$'
e2e="${SANITIZE_E2E:-$default_e2e}"
if [ "$e2e" = all ]; then e2e='^e2e_'; fi

scripts/build-sanitizers.sh

reports="$PWD/build-sanitize/sanitizer-reports"
rm -rf "$reports"
mkdir -p "$reports"
# LeakSanitizer runs at a normal exit: unit tests and CLI calls. The daemon
# leaves with std::_Exit after an orderly shutdown, so it is never
# leak-checked (README.md, "Sanitizers").
export ASAN_OPTIONS="detect_leaks=1:log_path=$reports/asan"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$reports/ubsan"
export TINYFAAS_E2E_BACKEND=process

status=0
ctest --test-dir build-sanitize -L unit --output-on-failure -j2 --timeout 900 || status=1
ctest --test-dir build-sanitize -L e2e -LE docker -R "$e2e" --output-on-failure -j2 || status=1

if compgen -G "$reports/*" >/dev/null; then
  echo "sanitizer reports:" >&2
  for f in "$reports"/*; do echo "--- $f" >&2; head -n 80 "$f" >&2; done
  status=1
fi
exit "$status"
