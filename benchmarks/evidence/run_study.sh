#!/usr/bin/env bash
# The evidence study (docs/results.md, docs/paper_reproduction.md), one job after another so that no two runs share
# the two cores; each job's log, wall time and the load average before and after go to $LOGS.
#   bash benchmarks/evidence/run_study.sh [JOB ...]      # jobs: fmnist fmnist_seed0 fmnist_posthoc fmnist_methods
#   pretrain transfer_frozen
#   paper budget budget10 budget_frozen remedy_frozen transfer_finetune cost
# SEEDS="0 1" limits the jobs that run one compare per seed (fmnist_posthoc, fmnist_methods, transfer_finetune);
# BUDGETS="5" the epochs of the budget job.
set -uo pipefail
UGMM=${UGMM:-ugmm-vision}
PY=${PY:-python}
LOGS=${LOGS:-outputs/evidence/logs}
mkdir -p "$LOGS"
[ -d data/ood/photo_patches ] || $PY -m ugmm_vision.data.photo_patches data/ood/photo_patches

job() {  # job NAME COMMAND...
  local name=$1; shift
  echo "[$name] start $(date -u +%FT%TZ) load: $(cut -d' ' -f1-3 /proc/loadavg) commit: $(git rev-parse --short HEAD)" \
    | tee -a "$LOGS/study.log"
  local start=$SECONDS
  "$@" > "$LOGS/$name.log" 2>&1
  local rc=$?
  echo "[$name] end $(date -u +%FT%TZ) rc=$rc wall=$((SECONDS - start))s load: $(cut -d' ' -f1-3 /proc/loadavg)" \
    | tee -a "$LOGS/study.log"
}

FM="--config configs/fashion_mnist.yaml"
TR="--config configs/finetune_timm.yaml --config configs/evidence_transfer.yaml"
for name in "${@:-fmnist pretrain transfer_frozen paper budget}"; do
  for one in $name; do
    case $one in
      fmnist) job fmnist $UGMM compare $FM --config configs/evidence_fmnist.yaml ;;
      fmnist_seed0)  # what one session's two cores allowed: one seed, the post-hoc methods only
        job fmnist_seed0 $UGMM compare $FM --config configs/evidence_fmnist.yaml --seeds '[0]' \
          --methods '{ddu: {class_path: ugmm_vision.methods.FeatureDensity}, laplace: {class_path: ugmm_vision.methods.LastLayerLaplace}}' \
          --output_dir outputs/evidence/fmnist_finetune_seed0 ;;
      fmnist_posthoc)  # what one session's two cores allowed: 3 seeds, one compare per seed (each finished seed is
        # kept), the post-hoc methods only (no MC dropout or ensemble: 5 more trainings per seed)
        for S in ${SEEDS:-0 1 2}; do
          job "fmnist_posthoc_seed$S" $UGMM compare $FM --config configs/evidence_fmnist.yaml --seeds "[$S]" \
            --methods '{ddu: {class_path: ugmm_vision.methods.FeatureDensity}, laplace: {class_path: ugmm_vision.methods.LastLayerLaplace}}' \
            --output_dir "outputs/evidence/fmnist_finetune_posthoc/seed_$S"
        done ;;
      fmnist_methods)  # the trained methods of fmnist (MC dropout, deep ensemble of 5) on the linear head, one compare
        # per seed; with fmnist_posthoc this is the whole fmnist job (tables.py keeps the first of a repeated
        # head and seed: the linear head retrained here as the methods' base, and prints whether the two agree)
        for S in ${SEEDS:-0 1 2}; do
          job "fmnist_methods_seed$S" $UGMM compare $FM --config configs/evidence_fmnist.yaml --seeds "[$S]" \
            --heads '{linear: {class_path: ugmm_vision.heads.LinearHead}}' \
            --methods '{mc_dropout: {class_path: ugmm_vision.methods.MCDropout, init_args: {n_samples: 20, feature_dropout: 0.1}}, ensemble: {class_path: ugmm_vision.methods.DeepEnsemble, init_args: {members: 5}}}' \
            --output_dir "outputs/evidence/fmnist_finetune_methods/seed_$S"
        done ;;
      pretrain) job pretrain $UGMM pretrain --config configs/pretrain_fashion_mnist.yaml ;;
      transfer_frozen) job transfer_frozen $UGMM compare $TR ;;
      transfer_finetune)  # every head, the post-hoc methods (DDU, last-layer Laplace) on the preset's method heads, no
        # shift sets; MC dropout and the ensemble left out (6 more trainings per seed; ≈ 4 min each on 2 cores); one
        # compare per seed, so that each finished seed is kept
        for S in ${SEEDS:-0 1 2}; do
          job "transfer_finetune_seed$S" $UGMM compare $TR --mode finetune --epochs 2 \
            --model.init_args.lr_scheduler.init_args.T_max 2 --cache_images true --shift false \
            --methods '{ddu: {class_path: ugmm_vision.methods.FeatureDensity, init_args: {covariance: full}}, laplace: {class_path: ugmm_vision.methods.LastLayerLaplace}}' \
            --seeds "[$S]" --output_dir "outputs/evidence/transfer_finetune/seed_$S"
        done ;;
      paper)
        job paper_reference $UGMM compare $FM --config configs/paper_fmnist_reference.yaml
        job paper_toolkit $UGMM compare $FM --config configs/paper_fmnist_toolkit.yaml ;;
      budget)
        for E in ${BUDGETS:-1 2 3 5}; do
          job "budget_$E" $UGMM compare $FM --config configs/evidence_budget.yaml --epochs $E \
            --model.init_args.lr_scheduler.init_args.T_max $E --output_dir "outputs/evidence/budget/epochs_$E"
        done ;;
      budget10)
        job budget_10 $UGMM compare $FM --config configs/evidence_budget.yaml --epochs 10 \
          --model.init_args.lr_scheduler.init_args.T_max 10 \
          --output_dir outputs/evidence/budget/epochs_10 ;;
      budget_frozen)
        for E in 1 2 3 5 20; do
          job "budget_frozen_$E" $UGMM compare $TR --config configs/evidence_budget_frozen.yaml --epochs $E \
            --model.init_args.lr_scheduler.init_args.T_max $E --output_dir "outputs/evidence/budget_frozen/epochs_$E"
        done ;;
      remedy_frozen)  # head lr 0.03 (the transfer preset's) and 0.1; ${LRS} adds others (0.01 was not run: compute)
        for LR in ${LRS:-0.03 0.1}; do
          job "remedy_frozen_lr$LR" $UGMM compare $TR --config configs/evidence_remedy_frozen.yaml --epochs 1 \
            --model.init_args.lr_scheduler.init_args.T_max 1 --model.init_args.head_lr $LR \
            --output_dir "outputs/evidence/remedy_frozen/head_lr_$LR"
        done ;;
      cost) job cost $PY benchmarks/evidence/cost.py ;;
      *) echo "unknown job $one" >&2; exit 2 ;;
    esac
  done
done
