# Shared settings of the container scripts (sourced, not run).
# Image storage lives in a cache directory outside the repository (vfs driver: works inside
# an unprivileged CI container, no overlay mount needed), so that the base image and build
# layers survive between runs.
CACHE_DIR="${DMRS_BIDS_CONTAINER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dmrs-bids-container}"
STORAGE_ROOT="${BUILDAH_ROOT:-$CACHE_DIR/storage}"
RUN_ROOT="${BUILDAH_RUNROOT:-$CACHE_DIR/run}"
BASE_IMAGE="docker.io/library/python:3.11-slim-bookworm"
IMAGE="${DMRS_BIDS_IMAGE:-localhost/dmrs-bids:test}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
STORAGE_OPTS=(--root "$STORAGE_ROOT" --runroot "$RUN_ROOT" --storage-driver vfs)

buildah_cmd() { buildah "${STORAGE_OPTS[@]}" "$@"; }
podman_cmd() { podman "${STORAGE_OPTS[@]}" --cgroup-manager cgroupfs --events-backend none "$@"; }
