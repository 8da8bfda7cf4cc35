#!/usr/bin/env bash
# The pm4py comparison in its own environment, .venv-pm4py (pm4py is AGPL, so it
# never enters eventlab's dependencies or .venv): eventlab installed editable plus
# the pinned pm4py of benchmarks/pm4py-baseline.txt, then benchmarks/bench_pm4py.py.
#   benchmarks/pm4py-env.sh [--repeat N] [--log path/to/log.xes.gz]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=.venv-pm4py
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
stamp="$VENV/.installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] \
    || [ benchmarks/pm4py-baseline.txt -nt "$stamp" ]; then
  "$VENV/bin/python" -m pip install --quiet -e . -r benchmarks/pm4py-baseline.txt
  touch "$stamp"   # only reached when the install succeeded (set -e)
fi
exec "$VENV/bin/python" benchmarks/bench_pm4py.py "$@"
