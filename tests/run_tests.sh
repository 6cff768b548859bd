#!/usr/bin/env bash
# Installs dmrs-bids with its test extras and runs the whole test suite.
# This is the README's test command; .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
export NIPYPE_NO_ET=1 MPLBACKEND=Agg
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}" OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
python -m pip install --quiet -e ".[test]"
# Independent implementation for the diffusion-model cross-check (test only, AGPL, never imported
# by the app). --no-deps: its optional jax stack is not needed for the functions we compare.
python -m pip install --quiet --no-deps "dmipy-fit==2.3.0" "dmipy-sim==2.1.0" "dipy==1.12.1" "trx-python"
# System tools for the container, SLURM and report tests (podman/buildah build the image,
# slurm-wlm + munge make a one-node cluster, chromium renders the reports). Installed only
# where we are root with apt-get (CI, dev containers); elsewhere those tests skip with a reason.
if [[ "$(id -u)" == 0 && -z "${DMRS_BIDS_NO_APT:-}" ]] && command -v apt-get >/dev/null; then
    missing=()
    for tool in podman:podman buildah:buildah debootstrap:debootstrap sbatch:slurm-wlm \
                munged:munge chromium:chromium; do
        command -v "${tool%%:*}" >/dev/null || missing+=("${tool##*:}")
    done
    if (( ${#missing[@]} )); then
        echo "installing system test tools: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" uidmap fuse-overlayfs >/dev/null
    fi
fi
python -m pytest "$@"
