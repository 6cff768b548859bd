# dmrs-bids: a BIDS App for diffusion-weighted MR spectroscopy.
#   docker build -t dmrs-bids .
#   docker run --rm --read-only --tmpfs /tmp -v /data:/data:ro -v /out:/out \
#       dmrs-bids /data /out participant -w /out/work
# Behind a TLS-intercepting proxy or with a PyPI mirror, pass them for the build only
# (nothing of it stays in the image):
#   docker build --build-arg PIP_INDEX=https://mirror/simple \
#       --build-arg CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \
#       -v /etc/ssl/certs:/etc/ssl/certs:ro ...      (podman/buildah: --volume)
FROM python:3.11-slim-bookworm

ARG VERSION=0.1.0
# The public repository address is set at release time: --build-arg SOURCE_URL=...
ARG SOURCE_URL=unreleased
# Build-time only: the package index and an optional CA bundle file for pip.
ARG PIP_INDEX=https://pypi.org/simple
ARG CA_BUNDLE=
LABEL org.opencontainers.image.title="dmrs-bids" \
      org.opencontainers.image.description="BIDS App for diffusion-weighted MR spectroscopy: conversion, preprocessing, fitting, diffusion modelling, QC reports" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="Apache-2.0"

# Dependencies first (pinned, own layer: rebuilt only when the lock changes). No pip.conf of
# the build machine is read; the index comes from PIP_INDEX alone.
COPY requirements.lock /opt/dmrs-bids/requirements.lock
RUN PIP_CONFIG_FILE=/dev/null python -m pip install --no-cache-dir --disable-pip-version-check \
        --index-url "${PIP_INDEX}" ${CA_BUNDLE:+--cert "${CA_BUNDLE}"} \
        -r /opt/dmrs-bids/requirements.lock

# The project itself, without resolving anything again; `pip check` proves the lock is complete.
COPY pyproject.toml README.md /tmp/dmrs-bids-src/
COPY pipeline /tmp/dmrs-bids-src/pipeline
COPY workflows /tmp/dmrs-bids-src/workflows
COPY bids_app /tmp/dmrs-bids-src/bids_app
RUN PIP_CONFIG_FILE=/dev/null python -m pip install --no-cache-dir --disable-pip-version-check \
        --no-deps --no-build-isolation --no-index /tmp/dmrs-bids-src \
    && python -m pip check \
    && rm -rf /tmp/dmrs-bids-src \
    && useradd --no-create-home --home-dir /tmp/dmrs-bids/home --uid 1000 --user-group dmrs \
    && NIPYPE_NO_ET=1 python -c "import bids_app.cli, bids_app.run, pipeline, workflows.participant"

# Runtime: no telemetry, single-threaded BLAS (reproducible sums), writable caches under /tmp
# so the image works with a read-only root (docker --read-only --tmpfs /tmp), and the container
# recorded in dataset_description.json.
ENV NIPYPE_NO_ET=1 \
    MPLBACKEND=Agg \
    OPENBLAS_NUM_THREADS=1 \
    OMP_NUM_THREADS=1 \
    MKL_NUM_THREADS=1 \
    MPLCONFIGDIR=/tmp/dmrs-bids/matplotlib \
    NIPYPE_CONFIG_DIR=/tmp/dmrs-bids/nipype \
    XDG_CACHE_HOME=/tmp/dmrs-bids/cache \
    HOME=/tmp/dmrs-bids/home \
    PYTHONDONTWRITEBYTECODE=1 \
    DMRS_BIDS_CONTAINER="docker:dmrs-bids:${VERSION}"

WORKDIR /tmp
USER 1000:1000
ENTRYPOINT ["dmrs-bids"]
CMD ["--help"]
