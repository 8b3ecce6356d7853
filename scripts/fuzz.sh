#!/usr/bin/env bash
# Builds the libFuzzer targets (test/fuzz, clang, -fsanitize=fuzzer,address,undefined)
# and runs each for a bounded time. Fails on any finding: a crash, a sanitizer
# report, a leak, a timeout or an out-of-memory; the input is saved under
# build/fuzz/findings/<target>/ (add it to test/fuzz/regressions/<target>/ once fixed).
#
#   bash scripts/fuzz.sh                     every target, 45 s each
#   bash scripts/fuzz.sh json_patch          some targets
#   DELTACAST_FUZZ_SECONDS=300 bash scripts/fuzz.sh
#
# Env: DELTACAST_FUZZ_SECONDS (per target, default 45), DELTACAST_FUZZ_JOBS (build jobs),
#      DELTACAST_FUZZ_ARGS (extra libFuzzer flags, e.g. -seed=1).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

targets=(client_message request_decoder json_diff json_patch)
if (($# > 0)); then
  for name in "$@"; do
    [[ " ${targets[*]} " == *" $name "* ]] || { echo "fuzz: unknown target '$name' (${targets[*]})" >&2; exit 2; }
  done
  targets=("$@")
fi
seconds="${DELTACAST_FUZZ_SECONDS:-45}"
[[ "$seconds" =~ ^[0-9]+$ ]] && ((seconds > 0)) || { echo "fuzz: DELTACAST_FUZZ_SECONDS must be a positive integer" >&2; exit 2; }
jobs="${DELTACAST_FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}"

for tool in clang clang++ cmake; do
  command -v "$tool" >/dev/null 2>&1 || { echo "fuzz: $tool not found (run: bash scripts/setup-system.sh)" >&2; exit 1; }
done

build=build/fuzz
CC=clang CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDELTACAST_FUZZ=ON \
  -DDELTACAST_BUILD_TESTS=OFF -DDELTACAST_SANITIZE=OFF >/dev/null
cmake --build "$build" --parallel "$jobs" --target "${targets[@]/%/_fuzz}"

export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
failed=()
for name in "${targets[@]}"; do
  binary="$build/test/fuzz/${name}_fuzz"
  work="$build/corpus/$name"          # grows here; the seed corpus in the repo is only read
  findings="$build/findings/$name"
  mkdir -p "$work" "$findings"
  printf '\n---- %s: saved reproducers, then %s s of fuzzing\n' "$name" "$seconds"
  regressions=()
  if compgen -G "test/fuzz/regressions/$name/*" >/dev/null; then
    regressions=(test/fuzz/regressions/"$name"/*)
  fi
  if ((${#regressions[@]} > 0)) && ! "$binary" "${regressions[@]}" >"$findings/replay.log" 2>&1; then
    echo "fuzz: $name fails on a saved reproducer:" >&2
    tail -n 30 "$findings/replay.log" >&2
    failed+=("$name")
    continue
  fi
  # shellcheck disable=SC2086
  if "$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 \
    -artifact_prefix="$findings/" ${DELTACAST_FUZZ_ARGS:-} "$work" "test/fuzz/corpus/$name" >"$findings/fuzz.log" 2>&1; then
    grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "$findings/fuzz.log" | tr '\n' ' '
    echo
  else
    echo "fuzz: $name found a fault; the input is in $findings/:" >&2
    grep -E 'ERROR|SUMMARY|runtime error|deltacast fuzz finding|Test unit written' "$findings/fuzz.log" | head -n 20 >&2
    failed+=("$name")
  fi
done

if ((${#failed[@]} > 0)); then
  echo "fuzz: findings in ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: no findings (${targets[*]}, $seconds s each)"
