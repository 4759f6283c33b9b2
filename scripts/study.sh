#!/bin/sh
# scripts/study.sh: the whole weight-decay study of docs/which-weight-decay/ (README.md there says what it
# shows), from a built clone (npm ci, or npm run build). One compare at a time, each on all cores; the summary
# files and plots go to docs/which-weight-decay/<grid>/, the tables across them to
# docs/which-weight-decay/study.md (scripts/study-report.ts). 1,026 runs: 31.6 minutes on the project's
# 2-core machine (shared with other work at the time).
#
# Why several compares: a compare has one λ list, and a λ is a different decay per step in each convention:
# lr_t·λ for pytorch, pytorch+cautious, adamc (at the peak) and bert; η_t·λ for paper and λ for tf-sgd-decay
# (scaled by no lr); l2's λ goes through Adam's division by √v. So each family gets the λ list of its own scale
# (set by single-seed pilots; the same config and seeds, so runs pair by seed across compares), and the τ grid
# puts every decoupled convention on one axis (λ = 1/(r_peak·τ_iter): l2 has no timescale). Every grid runs
# at two run lengths, 1,000 steps (14.4 epochs) and 500.
set -eu
cd "$(dirname "$0")/.."
D=docs/which-weight-decay
C=$D/config.json
LRS=0.003,0.01,0.03
LONG=1000
SHORT=500
run() { npx shardtrain compare --config "$C" --lr "$LRS" --seeds 3 --eval-points 2 --no-exclusion-example --no-progress --force "$@"; }

start=$(date +%s)
for STEPS in "$LONG" "$SHORT"; do
  run --steps "$STEPS" --conventions pytorch,pytorch+cautious,adamc,bert --weight-decay 0,0.3,1,3,10 --out "$D/lambda-lr-$STEPS"
  run --steps "$STEPS" --conventions paper --weight-decay 0,0.003,0.01,0.03 --out "$D/lambda-paper-$STEPS"
  run --steps "$STEPS" --conventions tf-sgd-decay --weight-decay 0,1e-4,3e-4,1e-3 --out "$D/lambda-tf-$STEPS"
  run --steps "$STEPS" --conventions l2 --weight-decay 0,3e-4,1e-3,3e-3,1e-2 --out "$D/lambda-l2-$STEPS"
  run --steps "$STEPS" --conventions pytorch,pytorch+cautious,adamc,bert,paper,tf-sgd-decay --timescale 0.5,2,8,32 --out "$D/tau-$STEPS"
done
node dist/scripts/study-report.js \
  "$D/lambda-lr-$LONG" "$D/lambda-paper-$LONG" "$D/lambda-tf-$LONG" "$D/lambda-l2-$LONG" "$D/tau-$LONG" \
  "$D/lambda-lr-$SHORT" "$D/lambda-paper-$SHORT" "$D/lambda-tf-$SHORT" "$D/lambda-l2-$SHORT" "$D/tau-$SHORT" \
  --out "$D/study.md"
echo "scripts/study.sh: done in $(( $(date +%s) - start )) s; tables in $D/study.md"
