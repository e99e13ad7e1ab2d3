#!/usr/bin/env bash
# STRCN-G and STRCN-A (Xia et al., IEEE TMM 2020) under LOSO, Table II.
#
#   bash experiments/run_strcn_loso.sh                # whole chain on the embedded synthetic default
#   bash experiments/run_strcn_loso.sh --data CACHE   # on a prepared STRCN cache (python -m data_prep strcn)
#   bash experiments/run_strcn_loso.sh --smoke        # seconds-long check of the whole chain
#   bash experiments/run_strcn_loso.sh --out DIR      # where run folders go (default: results/)
#
# With no --data it synthesizes CASME II / SAMM / SMIC in their real layouts (work/synthetic, shared
# with run_fr_cde.sh), prepares STRCN's sequences of synthetic SMIC-HS (EVM-magnified appearance
# clips and onset->Eq.(5)-apex TV-L1 geometry flows, work/cache/synthetic_strcn_smic), trains STRCN-G
# and STRCN-A on every LOSO fold, and regenerates the report tables. Every step reuses what is done,
# so a killed run resumes. MER_WORK moves the work/ folder elsewhere.
#
# Budget: the paper's sizes (300 x 245 flow, M = 64 maps, 10 augmentations, up to 30 epochs) cost
# hours per database on 2 CPU cores. The embedded default therefore checks the chain at reduced
# settings, in about 13 minutes there: a 132 x 132 flow (the least Table I's pools allow), one
# augmentation, and the config's SYNTHETIC settings (M = 16, fewer epochs; --synthetic). A run with
# --data uses the config of
# experiments/strcn_loso.py unchanged. The default's numbers are not a reproduction.
set -euo pipefail
cd "$(dirname "$0")/.."

source experiments/run_args.sh

reduced=() suffix=""
if [[ -z "$data" ]]; then
  reduced=(--synthetic)
  if [[ -n "$smoke" ]]; then
    synth="$work/synthetic_smoke_strcn" data="$work/cache/synthetic_smoke_strcn_smic"
    subjects=(--subjects smic/1 smic/2 smic/3) suffix="_synthetic_smoke"
    # TV-L1 on magnified frames runs its full iterations (~1 s a flow); a smoke run needs speed only
    quick_flow=(--tvl1 '{"warps": 1, "nscales": 3, "outer_iterations": 2, "inner_iterations": 10}')
  else
    synth="$work/synthetic" data="$work/cache/synthetic_strcn_smic" subjects=() suffix="_synthetic"
    quick_flow=()
  fi
  echo "== 1/4 synthetic CASME II, SAMM and SMIC in $synth"
  python -m data_prep synth --out "$synth" "${subjects[@]}"
  echo "== 2/4 STRCN sequences of synthetic SMIC-HS into $data"
  python -m data_prep strcn --protocol smic_3class --smic "$synth/SMIC" --out "$data" \
    --augment 1 --geometry-size 132x132 "${quick_flow[@]}"
fi

echo "== 3/4 STRCN-G and STRCN-A, every LOSO fold of $data"
python -m experiments.strcn_loso --data "$data" --out "$out" --suffix "$suffix" "${reduced[@]}" \
  $smoke

echo "== 4/4 report tables from every run in $out"
python -m mer_keras.report --runs "$out" --published results/published.csv --out "$out/tables"
