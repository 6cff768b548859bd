# shellcheck shell=bash disable=SC2034  # variables used by the scripts that source this
# Shared settings of the container scripts (sourced, not run).
# Image storage lives in a cache directory outside the repository, so that the base image and
# the dependency layer survive between runs. Storage driver: overlay (kernel overlayfs; works
# as root on the CI machines), or DMRS_BIDS_STORAGE_DRIVER=vfs where overlay mounts are not
# allowed (much slower: every layer is a full copy).
CACHE_DIR="${DMRS_BIDS_CONTAINER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dmrs-bids-container}"
STORAGE_DRIVER="${DMRS_BIDS_STORAGE_DRIVER:-overlay}"
STORAGE_ROOT="$CACHE_DIR/storage-$STORAGE_DRIVER"
RUN_ROOT="$CACHE_DIR/run-$STORAGE_DRIVER"
BASE_IMAGE="docker.io/library/python:3.11-slim-bookworm"
IMAGE="${DMRS_BIDS_IMAGE:-localhost/dmrs-bids:test}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
STORAGE_OPTS=(--root "$STORAGE_ROOT" --runroot "$RUN_ROOT" --storage-driver "$STORAGE_DRIVER")

buildah_cmd() { buildah "${STORAGE_OPTS[@]}" "$@"; }
podman_cmd() { podman "${STORAGE_OPTS[@]}" --cgroup-manager cgroupfs --events-backend none "$@"; }
