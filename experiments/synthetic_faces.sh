# Sourced by the face-image run scripts (run_micro_attention_cde.sh, run_mtmnet_cde.sh) after
# run_args.sh: with no --data, steps 1-3 of their chain on the embedded synthetic default; with
# --data, the check that --macro came with it.
#
# Reads frames (apex-centred crops per clip, 1 or 5) and the run_args.sh variables; sets data,
# macro, transfer, reduced (--synthetic or nothing) and suffix (the run folder's).
suffix="" reduced=()
if [[ -z "$data" ]]; then
  reduced=(--synthetic)
  name="synthetic_cde_apex$([[ $frames == 1 ]] || echo "$frames")"
  if [[ -n "$smoke" ]]; then
    synth="$work/synthetic_smoke" data="$work/cache/${name/synthetic/synthetic_smoke}"
    macro="$work/cache/synthetic_smoke_macro_cde" suffix="_synthetic_smoke"
    subjects=(--subjects casme2/01 casme2/02 samm/006 samm/007 smic/1 smic/2)
  else
    synth="$work/synthetic" data="$work/cache/$name" subjects=()
    macro="$work/cache/synthetic_macro_cde" suffix="_synthetic"
  fi
  transfer=(--macro "$macro")
  echo "== 1/5 synthetic CASME II, SAMM, SMIC and CK+ in $synth"
  python -m data_prep synth --out "$synth" "${subjects[@]}"
  echo "== 2/5 $frames apex-centred face crop(s) and the onset crop of every clip (SMIC: around" \
       "the middle frame) into $data"
  python -m data_prep frames --protocol cde --casme2 "$synth/CASME2" --samm "$synth/SAMM" \
    --smic "$synth/SMIC" --out "$data" --frames "$frames" --face-size 64 --apex-rule middle
  echo "== 3/5 macro-expression (neutral, peak) faces (CK+) into $macro"
  python -m data_prep macro --protocol cde --ckplus "$synth/CK+" --out "$macro" --face-size 64
elif [[ -z "$macro" ]]; then
  echo "error: with --data, give --macro (a python -m data_prep macro cache of the same protocol)" >&2
  exit 2
fi
