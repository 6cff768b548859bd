#!/usr/bin/env bash
# Start a one-node SLURM cluster on this machine, for tests: munged, slurmctld and slurmd
# (Debian packages slurm-wlm and munge), one partition "debug" with this host, 2 CPUs,
# select/cons_tres. Idempotent: a cluster already answering is left as it is.
# Prints the path of its slurm.conf; export SLURM_CONF=<that path> to use it.
#
# Usage: start_slurm.sh   (env: DMRS_BIDS_SLURM_DIR, default /tmp/dmrs-bids-slurm; must be
# root, as on CI — the daemons run as root here)
set -euo pipefail
state="${DMRS_BIDS_SLURM_DIR:-/tmp/dmrs-bids-slurm}"
conf="$state/slurm.conf"
export SLURM_CONF="$conf"

for exe in munged slurmctld slurmd sbatch; do
    command -v "$exe" >/dev/null || { echo "start_slurm.sh: $exe not found (apt-get install slurm-wlm munge)" >&2; exit 1; }
done
if [[ -s "$conf" ]] && timeout 10 scontrol ping 2>/dev/null | grep -q "is UP"; then
    echo "$conf"
    exit 0
fi

host="$(hostname -s)"
mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) * 8 / 10240 ))
mkdir -p "$state"/{ctld,spool,log,run}

# munge: a key (made once), then the daemon; `munge -n | unmunge` proves it works.
if [[ ! -s /etc/munge/munge.key ]]; then
    mungekey --create --keyfile /etc/munge/munge.key
fi
chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
mkdir -p /run/munge && chown munge:munge /run/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged --force
    for _ in $(seq 20); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.5; done
fi

cat >"$conf" <<EOF
ClusterName=dmrsbids
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/run/slurmctld.pid
SlurmdPidFile=$state/run/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
DefMemPerCPU=1024
NodeName=$host NodeAddr=127.0.0.1 CPUs=2 RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF

slurmctld -f "$conf"
slurmd -f "$conf"
for _ in $(seq 60); do
    if sinfo --noheader --format=%T 2>/dev/null | grep -q -E "^(idle|mixed|allocated)"; then
        echo "$conf"
        exit 0
    fi
    sleep 1
done
echo "start_slurm.sh: the node did not come up; logs in $state/log" >&2
tail -5 "$state/log/slurmctld.log" "$state/log/slurmd.log" >&2 || true
exit 1
