#!/usr/bin/env bash
# Stop the localhost SLURM started by .ci/slurm_up.sh: slurmd, slurmctld, munged, each by its PID file.
set -uo pipefail

stop() {  # stop NAME PIDFILE: TERM, wait up to 20 s, then KILL
  local name=$1 pidfile=$2 pid
  [ -s "$pidfile" ] || { echo "slurm_down: $name not running (no $pidfile)"; return 0; }
  pid=$(cat "$pidfile")
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "slurm_down: $name not running (stale $pidfile)"; rm -f "$pidfile"; return 0
  fi
  kill -TERM "$pid"
  for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "slurm_down: $name (pid $pid) ignored TERM; sending KILL"; kill -KILL "$pid"
  fi
  rm -f "$pidfile"
  echo "slurm_down: stopped $name (pid $pid)"
}

stop slurmd /run/slurmd.pid
stop slurmctld /run/slurmctld.pid
stop munged /run/munge/munged.pid
