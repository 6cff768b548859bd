#!/usr/bin/env bash
# Installs dmrs-bids with its test extras and runs the whole test suite.
# This is the README's test command; .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
export NIPYPE_NO_ET=1 MPLBACKEND=Agg
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}" OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
python -m pip install --quiet -e ".[test]"
python -m pytest "$@"
