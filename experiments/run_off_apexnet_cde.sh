#!/usr/bin/env bash
# OFF-ApexNet (Gan, Liong et al., SPIC 2019) under the MEGC2019 composite protocol (CDE): Tables 3-4.
#
#   bash experiments/run_off_apexnet_cde.sh                  # whole chain on the embedded synthetic default
#   bash experiments/run_off_apexnet_cde.sh --data CACHE     # on a prepared cache (e.g. the 442 MEGC2019 flows)
#   bash experiments/run_off_apexnet_cde.sh --smoke          # seconds-long check of the whole chain
#   bash experiments/run_off_apexnet_cde.sh --out DIR        # where run folders go (default: results/)
#
# With no --data it synthesizes CASME II / SAMM / SMIC in their real layouts (work/synthetic, shared
# with run_fr_cde.sh), prepares their onset->apex TV-L1 flows with the paper's D&C-RoIs apex spotting
# for SMIC, whose release has no apex (work/cache/synthetic_cde_dcrois), trains every LOSO fold,
# evaluates, and regenerates the report tables. Every step reuses what is already done, so a killed
# run resumes. MER_WORK moves the work/ folder elsewhere.
#
# Budget: the embedded default trains the reduced settings of experiments/off_apexnet_cde.py
# (SYNTHETIC, --synthetic: fewer epochs, the config says why); a run with --data uses that config
# unchanged (3000 epochs).
set -euo pipefail
cd "$(dirname "$0")/.."

source experiments/run_args.sh

name="off_apexnet_cde" reduced=()
if [[ -z "$data" ]]; then
  reduced=(--synthetic)
  if [[ -n "$smoke" ]]; then
    synth="$work/synthetic_smoke" data="$work/cache/synthetic_smoke_cde_dcrois"
    subjects=(--subjects casme2/01 casme2/02 samm/006 samm/007 smic/1 smic/2)
    name="off_apexnet_cde_synthetic_smoke"
  else
    synth="$work/synthetic" data="$work/cache/synthetic_cde_dcrois" subjects=()
    name="off_apexnet_cde_synthetic"
  fi
  echo "== 1/4 synthetic CASME II, SAMM and SMIC in $synth"
  python -m data_prep synth --out "$synth" "${subjects[@]}"
  echo "== 2/4 onset->apex TV-L1 flows (SMIC apex by D&C-RoIs) into $data"
  python -m data_prep flow --protocol cde --casme2 "$synth/CASME2" --samm "$synth/SAMM" \
    --smic "$synth/SMIC" --out "$data" --apex-rule dc-rois
fi

echo "== 3/4 OFF-ApexNet, every LOSO fold of $data"
python -m experiments.off_apexnet_cde --data "$data" --out "$out" --name "$name" "${reduced[@]}" \
  $smoke

echo "== 4/4 report tables from every run in $out"
python -m mer_keras.report --runs "$out" --published results/published.csv --out "$out/tables"
