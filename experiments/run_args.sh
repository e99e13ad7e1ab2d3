# Sourced by the run scripts (experiments/run_*.sh): their shared command line.
#
#   --data CACHE   train on a prepared cache instead of the synthetic default
#   --out DIR      where run folders go (default: results/)
#   --smoke        seconds-long check of the whole chain
#   -h, --help     the calling script's header comment
#
# Sets data, out, smoke ("--smoke" or empty) and work (MER_WORK, default work/).
data="" out="results" smoke="" work="${MER_WORK:-work}"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --data) data="${2:?--data needs a cache folder}"; shift 2 ;;
    --out) out="${2:?--out needs a folder}"; shift 2 ;;
    --smoke) smoke="--smoke"; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
