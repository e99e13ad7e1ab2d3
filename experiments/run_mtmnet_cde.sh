#!/usr/bin/env bash
# MTMNet (Xia, Wang, Wang, Chen; ACM MM 2020) under the MEGC2019 composite protocol (CDE): Tables 3, 5.
#
#   bash experiments/run_mtmnet_cde.sh                         # the embedded synthetic default
#   bash experiments/run_mtmnet_cde.sh --data FRAMES --macro MACRO [--init-weights W]
#   bash experiments/run_mtmnet_cde.sh --smoke                 # seconds-long check of the whole chain
#   bash experiments/run_mtmnet_cde.sh --out DIR               # where run folders go (default: results/)
#
# With no --data it synthesizes CASME II / SAMM / SMIC and the CK+ macro-expression set in their real
# layouts (work/synthetic, shared with the other run scripts), prepares 5 apex-centred face crops and
# the onset (neutral) crop of every clip, and the CK+ (neutral, peak) faces, pre-trains MacroNet on the
# macro faces, then in every LOSO fold pre-trains MicroNet on the training subjects and fine-tunes it
# against the frozen MacroNet, evaluates, and regenerates the report tables. Every step reuses what is
# already done, so a killed run resumes. MER_WORK moves the work/ folder elsewhere.
#
# FRAMES is a `python -m data_prep frames --protocol cde --frames 5` cache, or the 442 public apex crops
# (`import-apex-images`: no onset frame, so another image of the same subject stands in for the
# neutral frame, said and recorded). MACRO is `python -m data_prep macro --protocol cde` of ONE macro
# database (--ckplus, --ckplus48, --mmi or --oulu): the run is named after it.
#
# Budget: the embedded default trains the reduced settings of experiments/mtmnet_cde.py (SYNTHETIC,
# --synthetic: narrower networks, 32 x 32 faces, fewer epochs; the config says why); a run with --data
# uses the paper's settings unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

source experiments/run_args.sh

frames=5
source experiments/synthetic_faces.sh

echo "== 4/5 MTMNet: MacroNet pre-training, then every LOSO fold of $data"
python -m experiments.mtmnet_cde --data "$data" --out "$out" --suffix "$suffix" \
  "${transfer[@]}" "${reduced[@]}" $smoke

echo "== 5/5 report tables from every run in $out"
python -m mer_keras.report --runs "$out" --published results/published.csv --out "$out/tables"
