#!/bin/bash
# Queue a whole dmrs-bids study on SLURM: one array task per participant (sub-* folder), then
# the group level once all of them succeeded. Prints the two job ids.
#   cluster/submit.sh /data/study /data/study-out dmrs-bids.sif [dmrs-bids options]
# sbatch options for both jobs (partition, account, QOS...): SBATCH_PARTITION, SBATCH_ACCOUNT,
# SBATCH_QOS in the environment; for the participant jobs only: DMRS_BIDS_SBATCH_ARGS
# (e.g. "--mem=8G --time=04:00:00"); at most DMRS_BIDS_MAX_PARALLEL tasks at once (default 50).
set -euo pipefail
if (( $# < 3 )); then
    echo "usage: submit.sh BIDS_DIR OUTPUT_DIR IMAGE.sif [dmrs-bids options]" >&2
    exit 2
fi
here="$(cd "$(dirname "$0")" && pwd)"
bids_dir="$1"
n="$(find "$bids_dir" -mindepth 1 -maxdepth 1 -type d -name 'sub-*' | wc -l)"
if (( n == 0 )); then
    echo "submit.sh: no sub-* folder in $bids_dir" >&2
    exit 2
fi
# shellcheck disable=SC2086  # DMRS_BIDS_SBATCH_ARGS holds several options
array_id="$(sbatch --parsable --array="1-$n%${DMRS_BIDS_MAX_PARALLEL:-50}" \
    ${DMRS_BIDS_SBATCH_ARGS:-} "$here/participant_array.sbatch" "$@")"
group_id="$(sbatch --parsable --dependency="afterok:${array_id%%;*}" "$here/group.sbatch" "$@")"
echo "participant array job: ${array_id%%;*} ($n tasks); group job: ${group_id%%;*}"
