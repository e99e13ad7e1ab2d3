# Sourced by the run scripts (experiments/run_*.sh): their shared command line.
#
#   --data CACHE   train on a prepared cache instead of the synthetic default
#   --out DIR      where run folders go (default: results/)
#   --smoke        seconds-long check of the whole chain
#   --macro CACHE  macro-expression faces to pre-train on (Micro-Attention, MTMNet; with --data)
#   --init-weights FILE  initial backbone weights, e.g. your ImageNet ResNet (Micro-Attention, MTMNet)
#   -h, --help     the calling script's header comment
#
# Sets data, out, smoke ("--smoke" or empty), macro, transfer (the --macro / --init-weights
# arguments to pass on) and work (MER_WORK, default work/).
data="" out="results" smoke="" work="${MER_WORK:-work}" macro="" transfer=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --data) data="${2:?--data needs a cache folder}"; shift 2 ;;
    --out) out="${2:?--out needs a folder}"; shift 2 ;;
    --smoke) smoke="--smoke"; shift ;;
    --macro) macro="${2:?--macro needs a cache folder}"; transfer+=(--macro "$macro"); shift 2 ;;
    --init-weights) transfer+=(--init-weights "${2:?--init-weights needs a file}"); shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
