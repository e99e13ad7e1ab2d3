#!/usr/bin/env bash
# Micro-Attention (Wang, Peng, Bi, Chen) under composite LOSO: Table 4, and the MEGC2019 composite.
#
#   bash experiments/run_micro_attention_cde.sh                         # the embedded synthetic default
#   bash experiments/run_micro_attention_cde.sh --data FRAMES --macro MACRO [--init-weights W]
#   bash experiments/run_micro_attention_cde.sh --smoke                 # seconds-long check of the chain
#   bash experiments/run_micro_attention_cde.sh --out DIR               # where run folders go (results/)
#
# With no --data it synthesizes CASME II / SAMM / SMIC and the CK+ macro-expression set in their real
# layouts (work/synthetic, shared with the other run scripts), prepares the apex face crops (SMIC: the
# middle frame, the paper's rule) and the macro faces, pre-trains ResNet-10 on the macro faces, fine-
# tunes Micro-Attention in every LOSO fold, evaluates, and regenerates the report tables. Every step
# reuses what is already done, so a killed run resumes. MER_WORK moves the work/ folder elsewhere.
#
# FRAMES is a `python -m data_prep frames` (or `import-apex-images`) cache; its protocol picks the run:
# megc2018_objective (CASME II + SAMM, 5 objective classes, the paper's Table 4) or cde (MEGC2019, 442
# samples, 3 classes). MACRO is `python -m data_prep macro --protocol <the same>`.
#
# Budget: the embedded default trains the reduced settings of experiments/micro_attention_cde.py
# (SYNTHETIC, --synthetic: narrower network, 32 x 32 faces, fewer epochs; the config says why); a
# run with --data uses the paper's settings unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

source experiments/run_args.sh

frames=1
source experiments/synthetic_faces.sh

echo "== 4/5 Micro-Attention: macro pre-training, then every LOSO fold of $data"
python -m experiments.micro_attention_cde --data "$data" --out "$out" --suffix "$suffix" \
  "${transfer[@]}" "${reduced[@]}" $smoke

echo "== 5/5 report tables from every run in $out"
python -m mer_keras.report --runs "$out" --published results/published.csv --out "$out/tables"
