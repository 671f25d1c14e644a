#!/usr/bin/env bash
# A/B: the benchmarks of a baseline revision against this checkout, interleaved round by round
# on the same machine in the same load window (the machine is shared: compare medians).
#   bench/ab_compare.sh BASE_REV [ROUNDS] [SCENARIO ...]      e.g. bench/ab_compare.sh e568349 2 table cpu
# Needs `make bootstrap`. The baseline runs from a temporary git worktree with this checkout's
# .venv and node_modules; raw results go to bench/out/ab-{base,head}-ROUND.{log,json}.
set -euo pipefail
cd "$(dirname "$0")/.."
base_rev=${1:?usage: bench/ab_compare.sh BASE_REV [ROUNDS] [SCENARIO ...]}
shift
rounds=${1:-2}
[ $# -gt 0 ] && shift
scenarios=("$@")
[ ${#scenarios[@]} -eq 0 ] && scenarios=(table cpu)
here=$(pwd)
base_dir=$(mktemp -d)/base
git worktree add -q --detach "$base_dir" "$base_rev"
trap 'git worktree remove --force "$base_dir"' EXIT
ln -s "$here/.venv" "$base_dir/.venv"
ln -s "$here/node_modules" "$base_dir/node_modules"
mkdir -p bench/out
for round in $(seq 1 "$rounds"); do
  for side in base head; do
    dir=$here; [ "$side" = base ] && dir=$base_dir
    echo "[ab $(date -u +%H:%M:%S)] round $round $side load $(cut -d' ' -f1-3 /proc/loadavg)"
    (cd "$dir" && .venv/bin/python -m bench "${scenarios[@]}" --no-write \
      --json "$here/bench/out/ab-$side-$round.json") > "bench/out/ab-$side-$round.log" 2>&1
  done
done
grep -h -E "\(a\) #|\(c\) #" bench/out/ab-*-*.log | sed 's/^\[bench [0-9:]*\] //' || true
