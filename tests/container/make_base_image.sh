#!/usr/bin/env bash
# Make a local stand-in for the Dockerfile's base image `python:3.11-slim-bookworm`, where no
# registry but PyPI and Debian is reachable: a debootstrapped Debian bookworm rootfs with
# Debian's python3.11, and a virtual environment at /usr/local so that `python` and `pip` are
# /usr/local/bin/python and /usr/local/bin/pip, as in the official image (no PEP 668 marker
# in the way). The rootfs tarball is cached outside the repository and reused.
#
# Usage: make_base_image.sh   (env: DMRS_BIDS_CONTAINER_CACHE, BUILDAH_ROOT, DEBIAN_MIRROR)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=tests/container/common.sh
source "$here/common.sh"

mkdir -p "$CACHE_DIR"
tarball="$CACHE_DIR/python-3.11-slim-bookworm-rootfs.tar"
if [[ ! -s "$tarball" ]]; then
    root="$(mktemp -d "$CACHE_DIR/rootfs.XXXXXX")"
    trap 'rm -rf "$root"' EXIT
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$root" "$DEBIAN_MIRROR" >"$CACHE_DIR/debootstrap.log" 2>&1 \
        || { tail -20 "$CACHE_DIR/debootstrap.log"; exit 1; }
    chroot "$root" /usr/bin/python3 -m venv /usr/local
    chroot "$root" /bin/sh -c 'apt-get clean && rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* /usr/share/locale/* /var/cache/debconf/*-old'
    tar --numeric-owner -C "$root" -cf "$tarball.part" .
    mv "$tarball.part" "$tarball"
fi
if ! buildah_cmd images --quiet "$BASE_IMAGE" >/dev/null 2>&1; then
    podman_cmd import \
        --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["python3"]' \
        "$tarball" "$BASE_IMAGE" >/dev/null
fi
echo "$BASE_IMAGE"
