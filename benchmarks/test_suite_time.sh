#!/usr/bin/env bash
# The default test run's wall time in one process and in pytest-xdist's test processes, one after
# the other in the same call (so the ratio is measured on one machine state):
#
#   bash benchmarks/test_suite_time.sh [WORKERS]     # WORKERS for the second run (default 2)
#
# Prints the machine, each command, its wall time and pytest's last line. Nothing else should be
# running: the suite is CPU-bound.
set -euo pipefail
cd "$(dirname "$0")/.."
workers="${1:-2}"

echo "machine: $(uname -sm), $(nproc) cores, $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p')"
echo "python $(python -c 'import platform; print(platform.python_version())'), $(date -u +%F)"
for args in "-n 0" "-n $workers"; do
  start=$(date +%s%N)
  last=$(python -m pytest -q $args 2>&1 | tail -1 || true)
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  printf 'python -m pytest -q %-12s %4d.%d s   %s\n' "$args" $((ms / 1000)) $((ms % 1000 / 100)) "$last"
done
