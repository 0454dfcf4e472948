#!/bin/sh
# The default recipe's seed-to-seed spread (issue 9), run by `make seeds`: trains the default config
# once per seed under a compute budget (so the result does not depend on machine load), prints each
# val_bpb, their mean and sample sd, and fails when the sd exceeds MAX_SD: a default change that
# makes seeds part again (a chaotic recipe) fails it.
#
#   BIN=bin/anelab DATA=data/out/default SEEDS=5 BUDGET=1m MAX_SD=… PAR=2 anert/bench/seeds.sh [extra train flags]
#
# PAR runs train side by side, each with --threads 1 (the result does not change: it is a compute
# budget). Extra flags go to every run, e.g. --lr 1e-3 to see a chaotic recipe fail.
set -eu
BIN=${BIN:-bin/anelab}
DATA=${DATA:-data/out/default}
SEEDS=${SEEDS:-5}
BUDGET=${BUDGET:-1m}
MAX_SD=${MAX_SD:?set MAX_SD, the largest acceptable sd of val_bpb at BUDGET}
PAR=${PAR:-2}
OUT=${OUT:-runs/seeds}
mkdir -p "$OUT"
seq 1 "$SEEDS" | xargs -P "$PAR" -I{} sh -c \
  'bin=$0 data=$1 budget=$2 out=$3; shift 3
   "$bin" train --data "$data" --budget "$budget" --budget-kind compute --threads 1 --log-every 0 --seed {} --out "$out/seed{}" "$@" > "$out/seed{}.log" 2>&1 ||
     { echo "seed {} failed: see $out/seed{}.log"; exit 255; }' \
  "$BIN" "$DATA" "$BUDGET" "$OUT" "$@"
for s in $(seq 1 "$SEEDS"); do
  printf '%s %s\n' "$s" "$(sed -n 's/^val_bpb: *//p' "$OUT/seed$s.log")"
done | awk -v max="$MAX_SD" -v budget="$BUDGET" '
  { printf "seed %s  val_bpb %s\n", $1, $2; x[NR] = $2; sum += $2 }
  END {
    n = NR; mean = sum / n
    for (i = 1; i <= n; i++) ss += (x[i] - mean) ^ 2
    sd = sqrt(ss / (n - 1))
    printf "%d seeds, compute budget %s: mean val_bpb %.4f, sd %.4f (bound %s)\n", n, budget, mean, sd, max
    if (sd > max) { print "FAIL: the seeds part: the recipe is chaotic at this budget"; exit 1 }
    print "ok"
  }'
