#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) and runs each one.
#   run.sh smoke             every target for a few seconds (make test); a finding fails
#   run.sh fuzz [SECONDS]    every target for SECONDS (default 60) (make fuzz)
# The corpora in tests/fuzz/corpus/<target>/ are the seeds (kept in the repository); what a run
# finds new goes to the build tree, not into the repository. A crash leaves its input in
# build-fuzz/findings/.
set -euo pipefail
mode=${1:-smoke}
seconds=${2:-60}
[ "$mode" = smoke ] && seconds=${FUZZ_SMOKE_SECONDS:-5}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}

if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$here" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++-14 >/dev/null
fi
cmake --build "$build" -j "$(nproc)" >/dev/null

mkdir -p "$build/findings"
status=0
printf '%-12s %10s %12s %10s %s\n' target execs execs/s coverage result
for target in lookup submission armor keys mr_index http_head config record spends modern; do
  work="$build/corpus/$target"
  mkdir -p "$work"
  log="$build/$target.log"
  set +e
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    "$build/fuzz_$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -max_len=65536 -print_final_stats=1 -artifact_prefix="$build/findings/$target-" \
    "$work" "$here/corpus/$target" >"$log" 2>&1
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  if [ $rc -eq 0 ]; then
    result=ok
  else
    result="FINDING (exit $rc): $build/$target.log"
    status=1
  fi
  printf '%-12s %10s %12s %10s %s\n' "$target" "${execs:-?}" "${rate:-?}" "${cov:-?}" "$result"
  [ $rc -eq 0 ] || tail -40 "$log" >&2
done
exit $status
