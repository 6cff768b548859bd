# dmrs-bids: a BIDS App for diffusion-weighted MR spectroscopy.
#   docker build -t dmrs-bids .
#   docker run --rm -v /data:/data:ro -v /out:/out dmrs-bids /data /out participant
FROM python:3.11-slim-bookworm

ARG VERSION=0.1.0
# The public repository address is set at release time: --build-arg SOURCE_URL=...
ARG SOURCE_URL=unreleased
LABEL org.opencontainers.image.title="dmrs-bids" \
      org.opencontainers.image.description="BIDS App for diffusion-weighted MR spectroscopy: conversion, preprocessing, fitting, diffusion modelling, QC reports" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="Apache-2.0"

# Runtime environment: no telemetry, writable caches under /tmp so the image works with a
# read-only root file system, and the container type recorded in the derivatives.
ENV NIPYPE_NO_ET=1 \
    MPLBACKEND=Agg \
    OPENBLAS_NUM_THREADS=1 \
    OMP_NUM_THREADS=1 \
    MPLCONFIGDIR=/tmp/dmrs-bids/matplotlib \
    XDG_CACHE_HOME=/tmp/dmrs-bids/cache \
    HOME=/tmp/dmrs-bids/home \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DMRS_BIDS_CONTAINER=docker

WORKDIR /opt/dmrs-bids
COPY requirements.lock pyproject.toml README.md ./
RUN pip install --no-cache-dir -r requirements.lock
COPY pipeline ./pipeline
COPY workflows ./workflows
COPY bids_app ./bids_app
RUN pip install --no-cache-dir --no-deps . \
    && useradd --create-home --uid 1000 --user-group dmrs \
    && python -c "import bids_app, pipeline, workflows"

USER 1000:1000
ENTRYPOINT ["dmrs-bids"]
CMD ["--help"]
