#!/usr/bin/env bash
# Runs scripts/leak-check.js under valgrind and fails on any leak or invalid
# access whose stack goes through deltacast's code (node and V8 keep some
# allocations until exit by design; those are not ours).
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
valgrind --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite \
  --num-callers=40 --log-file="$log" node scripts/leak-check.js
ours=$(grep -E 'Invalid (read|write)|definitely lost in|indirectly lost in' -A40 "$log" | grep -cE 'deltacast\.node|deltacast::' || true)
errors=$(grep -E 'ERROR SUMMARY' "$log" | tail -n1)
echo "valgrind: $errors"
grep -E 'definitely lost|indirectly lost' "$log" | tail -n 2 || true
if [ "$ours" -gt 0 ]; then
  echo "valgrind reports problems in deltacast's code:"
  grep -B5 -A40 -E 'Invalid (read|write)|definitely lost' "$log" | grep -B20 -A20 deltacast | head -n 120
  exit 1
fi
echo "no leak or invalid access in deltacast's code"
