#!/usr/bin/env bash
# Build the dmrs-bids image where no Docker engine runs, and check that it works:
#  1. a snapshot of the source becomes the build context (the same code for every run below);
#  2. hadolint on the Dockerfile;
#  3. the base image python:3.11-slim-bookworm made locally (make_base_image.sh, cached);
#  4. buildah bud --isolation chroot, /etc/ssl/certs mounted, pip index and CA bundle passed as
#     build arguments (nothing of this machine's pip configuration goes into the image);
#  5. the demo dataset (dmrs-bids-simulate --small) and a participant + group run outside;
#  6. inside the image (buildah run --isolation chroot, user 1000, no network, /data read-only):
#     dmrs-bids --version, the demo generated again, the participant + group run;
#  7. Singularity.def parsed with spython, its %post run in a fresh venv, the same run there;
#  8. outputs compared bit for bit (compare_outputs.py) with the run outside.
# Prints "timing <step> <seconds>" lines and ends with "container check: OK".
#
# Usage: build_and_run.sh WORK_DIR [--no-singularity]
# Env: DMRS_BIDS_CONTAINER_CACHE (base rootfs + image storage, default ~/.cache/...),
#      DMRS_BIDS_PIP_INDEX (default https://pypi.org/simple), PIP_CERT / SSL_CERT_FILE (CA
#      bundle for pip during the build), DMRS_BIDS_IMAGE (tag, default localhost/dmrs-bids:test)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# shellcheck source=tests/container/common.sh
source "$here/common.sh"
work="$(mkdir -p "$1" && cd "$1" && pwd)"
with_singularity=1
[[ "${2:-}" == "--no-singularity" ]] && with_singularity=0
export NIPYPE_NO_ET=1 MPLBACKEND=Agg OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

run_timeout_s=1800  # a hung run fails the check instead of stalling CI
trap 'echo "build_and_run.sh: failed at line $LINENO; last log lines:" >&2; tail -n 15 "$work"/*.log >&2 || true' ERR
started=$SECONDS
lap() { echo "timing $1 $((SECONDS - started))"; started=$SECONDS; }

# 1. snapshot of the source tree
ctx="$work/context"
rm -rf "$ctx" && mkdir -p "$ctx"
cp -r "$repo"/{Dockerfile,Singularity.def,.dockerignore,requirements.lock,pyproject.toml,README.md} "$ctx/"
cp -r "$repo"/{pipeline,workflows,bids_app} "$ctx/"
find "$ctx" -name __pycache__ -prune -exec rm -rf {} +
lap snapshot

# 2. lint
if command -v hadolint >/dev/null; then
    hadolint "$ctx/Dockerfile"
    echo "hadolint: clean"
fi
lap hadolint

# 3. base image (cached under $CACHE_DIR)
bash "$here/make_base_image.sh"
lap base_image

# 4. build
pip_index="${DMRS_BIDS_PIP_INDEX:-https://pypi.org/simple}"
ca_bundle="${PIP_CERT:-${SSL_CERT_FILE:-}}"
build_args=(--build-arg "PIP_INDEX=$pip_index")
volumes=()
if [[ -n "$ca_bundle" && -f "$ca_bundle" ]]; then
    build_args+=(--build-arg "CA_BUNDLE=$ca_bundle")
    volumes+=(--volume "$(dirname "$ca_bundle"):$(dirname "$ca_bundle"):ro")
fi
[[ -d /etc/ssl/certs ]] && [[ "$(dirname "${ca_bundle:-x}")" != /etc/ssl/certs ]] \
    && volumes+=(--volume /etc/ssl/certs:/etc/ssl/certs:ro)
buildah_cmd bud --isolation chroot --pull=never --layers "${volumes[@]}" "${build_args[@]}" \
    -t "$IMAGE" -f "$ctx/Dockerfile" "$ctx"
lap build

# 5. demo dataset and the reference run outside any container (the snapshot's code, and a
#    basis-simulation cache of its own: entries left by other versions may differ in the last bit)
demo="$work/demo"
export XDG_CACHE_HOME="$work/cache-host"
rm -rf "$demo" "$work"/out-* "$work"/work-*
PYTHONPATH="$ctx" dmrs-bids-simulate "$demo" --small >"$work/simulate-host.log" 2>&1
# readable by the container's user 1000 (write_nifti_mrs leaves 0600 files), writable by none
chmod -R a+rX,a-w "$demo"
PYTHONPATH="$ctx" timeout "$run_timeout_s" dmrs-bids "$demo" "$work/out-host" participant -w "$work/work-host" --nprocs 2 \
    >"$work/run-host.log" 2>&1
PYTHONPATH="$ctx" dmrs-bids "$demo" "$work/out-host" group >>"$work/run-host.log" 2>&1
lap run_host

# 6. inside the image
ctr="$(buildah_cmd from --pull=never "$IMAGE")"
cleanup() { buildah_cmd rm "$ctr" >/dev/null 2>&1 || true; }
trap cleanup EXIT
mkdir -p "$work/out-image" "$work/work-image"
chown 1000:1000 "$work/out-image" "$work/work-image"
# chroot isolation shares the host's network, so buildah itself runs in a new, empty network
# namespace (unshare --net): the app must work with no network at all.
in_image_as() {
    local user="$1"; shift
    timeout "$run_timeout_s" unshare --net -- buildah "${STORAGE_OPTS[@]}" run --isolation chroot --user "$user" \
        --volume "$demo:/data:ro" --volume "$work/out-image:/out" \
        --volume "$work/work-image:/work" "$ctr" -- "$@"
}
in_image() { in_image_as 1000:1000 "$@"; }
in_image python -c "
import socket, sys
try:
    socket.create_connection(('pypi.org', 443), timeout=5)
except OSError as exc:
    sys.exit(print('network inside: none (', exc, ')'))
sys.exit('FAIL: the container reached the network')"
in_image dmrs-bids --version | tee "$work/version-image.txt"
grep -q "^dmrs-bids " "$work/version-image.txt"
# even root inside cannot write to the input (mounted read-only)
if in_image_as 0:0 sh -c 'touch /data/written-by-test' 2>/dev/null; then
    echo "FAIL: /data is writable inside the container" >&2
    exit 1
fi
in_image_as 0:0 touch /.before-run
in_image dmrs-bids-simulate /out/demo --small >"$work/simulate-image.log" 2>&1
in_image dmrs-bids /data /out/derivatives participant -w /work --nprocs 2 >"$work/run-image.log" 2>&1
in_image dmrs-bids /data /out/derivatives group >>"$work/run-image.log" 2>&1
# works with a read-only root: nothing written outside /out, /work and /tmp (/etc holds the
# hosts/resolv.conf that buildah run itself writes)
written="$(in_image_as 0:0 find / \( -path /proc -o -path /sys -o -path /dev -o -path /run \
    -o -path /tmp -o -path /out -o -path /work -o -path /data -o -path /etc \) -prune \
    -o -newer /.before-run -print)"
if [[ -n "$written" ]]; then
    echo "FAIL: the app wrote outside /out, /work and /tmp:" >&2
    echo "$written" >&2
    exit 1
fi
echo "read-only root: nothing written outside /out, /work, /tmp"
lap run_image

echo "== demo dataset made inside vs outside the image"
python "$here/compare_outputs.py" "$demo" "$work/out-image/demo"
echo "== derivatives inside vs outside the image"
python "$here/compare_outputs.py" "$work/out-host" "$work/out-image/derivatives" \
    --same-path "$demo=/data"
python - "$work/out-image/derivatives/dataset_description.json" <<'EOF'
import json, sys
container = json.load(open(sys.argv[1]))["GeneratedBy"][0].get("Container")
print("dataset_description Container:", container)
sys.exit(0 if container and container.get("Type") == "docker" else 1)
EOF
lap compare_image

# 7. Singularity recipe: %post in a fresh virtual environment, then the same run
if (( with_singularity )); then
    env_file="$(CA_BUNDLE="$ca_bundle" PIP_INDEX="$pip_index" \
        python "$here/singularity_venv.py" "$ctx/Singularity.def" "$ctx" "$work/sing-root" "$work/sing-venv")"
    lap singularity_post
    (
        # shellcheck disable=SC1090
        source "$env_file"
        unset PYTHONPATH
        export XDG_CACHE_HOME="$work/cache-venv"
        cd "$work"
        bash "$work/sing-root/test.sh"   # the recipe's %test
        timeout "$run_timeout_s" dmrs-bids "$demo" "$work/out-venv" participant -w "$work/work-venv" --nprocs 2 \
            >"$work/run-venv.log" 2>&1
        dmrs-bids "$demo" "$work/out-venv" group >>"$work/run-venv.log" 2>&1
    )
    lap run_venv
    echo "== derivatives in the Singularity venv vs outside"
    python "$here/compare_outputs.py" "$work/out-host" "$work/out-venv"
fi
echo "container check: OK"
