#!/usr/bin/env bash
# Start a one-node SLURM cluster on localhost (munge, slurmctld, slurmd) without systemd, so that
# tests/test_slurm.py can send the smoke DAG through `snakemake --executor slurm` and real sbatch.
# Runs as root (CI). Idempotent: daemons already running are left alone. Stop with .ci/slurm_down.sh.
#
# Minimal slurm.conf (Debian bookworm's slurm 22.05): no cgroups (proctrack/linuxproc, task/none),
# no accounting database (so no sacct: the plugin uses squeue, and MinJobAge keeps finished jobs
# visible to it for 10 minutes), and a jobcomp text log as the record of every job that ran.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
MARK="# written by dlgm .ci/slurm_up.sh"
LOGDIR=/var/log/slurm
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid

say() { echo "slurm_up: $*"; }

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
    || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
  say "installing Debian's slurmctld slurmd slurm-client munge"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge
fi

if [ -e "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
  say "ERROR: $CONF exists and was not written by this script; refusing to overwrite it" >&2
  exit 1
fi

cpus=$(nproc)
# 90% of the machine's memory, so that a job's --mem (the rule's mem_mb) is judged against it.
mem_mb=$(awk '/^MemTotal:/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd "$LOGDIR"
cat > "$CONF" <<CONF_EOF
$MARK
ClusterName=dlgm-ci
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOGDIR/slurmctld.log
SlurmdLogFile=$LOGDIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$LOGDIR/jobcomp.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MinJobAge=600
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF_EOF

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

if [ ! -s /etc/munge/munge.key ]; then  # normally made by the package's postinst
  say "creating /etc/munge/munge.key"
  mungekey --create --keyfile=/etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key && chmod 600 /etc/munge/munge.key
fi
if ! alive /run/munge/munged.pid; then
  say "starting munge"
  /etc/init.d/munge start
fi
if ! alive "$CTLD_PID"; then
  say "starting slurmctld"
  slurmctld
fi
if ! alive "$SLURMD_PID"; then
  say "starting slurmd"
  slurmd -N localhost
fi

# Wait until the node accepts jobs (a node left "down" by an earlier run is resumed).
for _ in $(seq 60); do
  state=$(sinfo -h -n localhost -o %t 2>/dev/null || true)
  case "$state" in
    idle*|mix*|alloc*) say "node localhost is $state; sbatch ready (logs in $LOGDIR)"; exit 0 ;;
    down*|drain*) scontrol update NodeName=localhost State=RESUME 2>/dev/null || true ;;
  esac
  sleep 1
done
say "ERROR: node localhost did not become idle within 60 s; last state '${state:-none}'" >&2
tail -n 20 "$LOGDIR/slurmctld.log" "$LOGDIR/slurmd.log" >&2 || true
exit 1
