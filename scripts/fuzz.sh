#!/usr/bin/env bash
# Runs every libFuzzer target (fuzz/*_fuzzer.cpp) for a bounded time and
# fails if any of them finds a crash, a sanitizer report, a leak or a hang.
#
#   scripts/fuzz.sh                      # each target for FUZZ_SECONDS (60), one per core at a time
#   FUZZ_SECONDS=600 scripts/fuzz.sh archive http_request
#
# Seeds come from fuzz/corpus/<target>/ (read only); what a run discovers
# goes to build-sanitize/fuzz/<target>/corpus, and a crashing input to
# build-sanitize/fuzz/<target>/crash-*: fix the bug, then add the input to
# fuzz/corpus/<target>/ so every later run replays it.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-60}"
all=()
for f in fuzz/*_fuzzer.cpp; do n="${f##*/}"; all+=("${n%_fuzzer.cpp}"); done
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then targets=("${all[@]}"); fi

scripts/build-sanitizers.sh "${targets[@]/#/fuzz_}"

# Leaks count as findings; UBSan stops at the first report (it is built with
# -fno-sanitize-recover, this also prints where).
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
# One fuzzer per core at a time: each is single-threaded.
jobs="$(nproc)"
fuzz_one() {
  local t="$1" work="build-sanitize/fuzz/$1"
  mkdir -p "$work/corpus"
  echo "== fuzz_$t for ${seconds}s"
  # -timeout: one input taking this long is a hang. -rss_limit_mb: runaway
  # memory is a finding too. Discovered inputs go to the first directory.
  if build-sanitize/fuzz/fuzz_"$t" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$work/" "$work/corpus" "fuzz/corpus/$t" >"$work/last-run.log" 2>&1; then
    echo ok >"$work/status"
  else
    echo FAILED >"$work/status"
  fi
}
for t in "${targets[@]}"; do
  while [ "$(jobs -pr | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  fuzz_one "$t" &
done
wait

failed=()
summary=()
for t in "${targets[@]}"; do
  work="build-sanitize/fuzz/$t"
  log="$work/last-run.log"
  status="$(cat "$work/status")"
  if [ "$status" != ok ]; then
    failed+=("$t")
    echo "== fuzz_$t FAILED, the end of its log:"
    tail -n 60 "$log"
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  secs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | grep -o 'in [0-9]*' | grep -o '[0-9]*' || echo "$seconds")
  summary+=("$(printf '%-16s %-6s %10s executions in %4ss' "$t" "$status" "$runs" "$secs")")
done
echo "== fuzzing summary"
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzzing found problems in: ${failed[*]} (inputs and logs under build-sanitize/fuzz/)" >&2
  exit 1
fi
