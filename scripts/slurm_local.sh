#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for the tests (Debian's slurmctld, slurmd and munge, which
# `scripts/install.sh --test` installs; run as root). No accounting database: the slurm profile asks
# squeue for job states. Its state and logs live under $SLURM_LOCAL (default /tmp/slurm-local); its config
# is /etc/slurm/slurm.conf, where job steps look for it (a config not written by this script is refused).
#   bash scripts/slurm_local.sh start    # daemons up, the node idle
#   bash scripts/slurm_local.sh stop     # daemons down, nothing left running
set -euo pipefail
root=${SLURM_LOCAL:-/tmp/slurm-local}
conf=/etc/slurm/slurm.conf
marker="# written by scripts/slurm_local.sh"

start() {
    mkdir -p "$root"/{state,spool,log,munge} /run/munge
    # munge: a fresh key, a socket of its own
    [ -f "$root/munge/munge.key" ] || dd if=/dev/urandom of="$root/munge/munge.key" bs=1024 count=1 status=none
    chown -R munge:munge "$root/munge" /run/munge 2>/dev/null || true
    chmod 700 "$root/munge" && chmod 400 "$root/munge/munge.key"
    munged --key-file="$root/munge/munge.key" --socket=/run/munge/munge.socket.2 \
        --pid-file="$root/munge/munged.pid" --log-file="$root/log/munged.log" --seed-file="$root/munge/seed" --force
    if [ -f "$conf" ] && ! grep -qx "$marker" "$conf"; then
        echo "$conf exists and was not written by this script: not touching a real cluster's config" >&2
        return 1
    fi
    mkdir -p "$(dirname "$conf")"
    host=$(hostname -s)
    cpus=$(nproc)
    memory=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
    cat > "$conf" <<EOF
$marker
ClusterName=local
SlurmctldHost=$host
AuthType=auth/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$root/state
SlurmdSpoolDir=$root/spool
SlurmctldPidFile=$root/slurmctld.pid
SlurmdPidFile=$root/slurmd.pid
SlurmctldLogFile=$root/log/slurmctld.log
SlurmdLogFile=$root/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SchedulerType=sched/backfill
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SlurmctldParameters=enable_configless
NodeName=$host CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    slurmctld -f "$conf"
    slurmd -f "$conf"
    for _ in $(seq 60); do
        sinfo -h -o %T 2>/dev/null | grep -q idle && { sinfo; return 0; }
        sleep 1
    done
    echo "the node did not come up; logs in $root/log" >&2
    return 1
}

running() {
    pgrep -x slurmctld >/dev/null || pgrep -x slurmd >/dev/null || pgrep -x munged >/dev/null
}

stop() {
    for pidfile in "$root/slurmd.pid" "$root/slurmctld.pid" "$root/munge/munged.pid"; do
        [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    for _ in $(seq 30); do
        running || return 0
        sleep 1
    done
    pkill -9 -x slurmctld || true
    pkill -9 -x slurmd || true
    pkill -9 -x munged || true
}

case "${1:-}" in
start) start ;;
stop) stop ;;
*) echo "usage: slurm_local.sh start|stop"; exit 2 ;;
esac
