#!/usr/bin/env bash
# A real one-node Slurm (munge + slurmctld + slurmd) on loopback, for testing sweep submission on
# a single machine without systemd or cgroups. Facts it relies on: /work/shared/SLURM.md.
#
#   scripts/slurm-cluster.sh start    # installs the packages if missing, starts the daemons,
#                                     # prints the `export SLURM_CONF=...` line to eval
#   scripts/slurm-cluster.sh status   # daemons and node state
#   scripts/slurm-cluster.sh stop     # cancels every job, waits for them, stops the daemons
#
#   eval "$(scripts/slurm-cluster.sh start)" && sbatch --wrap 'echo hi' --wait
#
# State (config, munge key and socket, spool, logs, PIDs) lives in $FIRE_RL_SLURM_DIR
# (default: ~/.cache/fire-rl/slurm). Daemons are stopped by their recorded PIDs, never by name.
# $FIRE_RL_SLURM_MAX_ARRAY_SIZE sets the cluster's MaxArraySize (Slurm's default: 1001), e.g. 5
# to test splitting a sweep into several job arrays; it is written at `start`.
# Diagnostics go to stderr; stdout carries only the export line, so `eval` is safe.
set -euo pipefail

STATE="${FIRE_RL_SLURM_DIR:-$HOME/.cache/fire-rl/slurm}"
CONF="$STATE/slurm.conf"
MAX_ARRAY_SIZE="${FIRE_RL_SLURM_MAX_ARRAY_SIZE:-}"

log() { echo "slurm-cluster: $*" >&2; }
die() { echo "slurm-cluster: error: $*" >&2; exit 1; }

alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

install_packages() {
    local missing=()
    for bin in munged slurmctld slurmd sbatch; do
        command -v "$bin" >/dev/null 2>&1 || missing+=("$bin")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    log "installing munge slurmctld slurmd slurm-client (missing: ${missing[*]})"
    [[ $(id -u) -eq 0 ]] || die "missing ${missing[*]} and not root: install munge slurmctld slurmd slurm-client"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends munge slurmctld slurmd slurm-client >&2
}

write_config() {
    local host node_line
    host=$(hostname -s)
    # The node line must match the hardware (a RealMemory mismatch drains the node).
    node_line=$(slurmd -C | head -n1)
    [[ $node_line == NodeName=* ]] || die "slurmd -C printed no node line: $node_line"
    node_line="${node_line/NodeName=$host/NodeName=$host NodeAddr=127.0.0.1}"
    local extra=""
    if [[ -n $MAX_ARRAY_SIZE ]]; then
        [[ $MAX_ARRAY_SIZE =~ ^[1-9][0-9]*$ ]] ||
            die "FIRE_RL_SLURM_MAX_ARRAY_SIZE must be a positive integer, not '$MAX_ARRAY_SIZE'"
        extra="MaxArraySize=$MAX_ARRAY_SIZE"
    fi
    cat >"$CONF" <<EOF
# Written by scripts/slurm-cluster.sh: one node on loopback, no systemd, no cgroups.
ClusterName=fire-rl
SlurmctldHost=$host(127.0.0.1)
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$STATE/munge/munge.socket
SlurmUser=root
SlurmdUser=root
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerParameters=batch_sched_delay=0,bf_interval=1,sched_min_interval=0
$extra
$node_line State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
    install_packages
    mkdir -p "$STATE"/{munge,ctld,spool,log}
    # munged refuses a socket folder that others cannot traverse: 0711 on it and a+x above it.
    local d="$STATE/munge"
    chmod 0711 "$d"
    while d=$(dirname "$d") && [[ $d != / ]]; do chmod a+x "$d" 2>/dev/null || true; done
    if alive "$STATE/slurmctld.pid" || alive "$STATE/slurmd.pid" || alive "$STATE/munged.pid"; then
        log "already running (state in $STATE)"
        echo "export SLURM_CONF=$CONF"
        return 0
    fi
    [[ -f "$STATE/munge/munge.key" ]] || mungekey --create --keyfile="$STATE/munge/munge.key" >&2
    chmod 0600 "$STATE/munge/munge.key"
    write_config
    export SLURM_CONF="$CONF"

    munged -F --key-file="$STATE/munge/munge.key" --socket="$STATE/munge/munge.socket" \
        --pid-file="$STATE/munge/munged.pidfile" --log-file="$STATE/log/munged.log" \
        --seed-file="$STATE/munge/munged.seed" >/dev/null 2>&1 &
    echo $! >"$STATE/munged.pid"
    for _ in $(seq 50); do [[ -S "$STATE/munge/munge.socket" ]] && break; sleep 0.1; done
    [[ -S "$STATE/munge/munge.socket" ]] || die "munged did not start (see $STATE/log/munged.log)"

    slurmctld -D -f "$CONF" >>"$STATE/log/slurmctld.out" 2>&1 &
    echo $! >"$STATE/slurmctld.pid"
    slurmd -D -f "$CONF" -N "$(hostname -s)" >>"$STATE/log/slurmd.out" 2>&1 &
    echo $! >"$STATE/slurmd.pid"

    local state=""
    for _ in $(seq 150); do
        state=$(sinfo -h -N -o %T 2>/dev/null | head -n1 || true)
        [[ $state == idle* || $state == mixed* || $state == allocated* ]] && break
        sleep 0.1
    done
    [[ $state == idle* || $state == mixed* || $state == allocated* ]] ||
        die "node not ready (state '${state:-none}'; logs in $STATE/log)"
    log "up: node $(hostname -s) $state; state in $STATE"
    echo "export SLURM_CONF=$CONF"
}

stop() {
    export SLURM_CONF="$CONF"
    if alive "$STATE/slurmctld.pid"; then
        # Job processes outlive slurmd by design: cancel and wait for the queue to drain first.
        scancel --full --quiet --user="$(id -un)" 2>/dev/null || true
        for _ in $(seq 100); do
            [[ -z $(squeue -h -o %i 2>/dev/null) ]] && break
            sleep 0.1
        done
    fi
    local pids=()
    for f in slurmd slurmctld munged; do
        if alive "$STATE/$f.pid"; then pids+=("$(cat "$STATE/$f.pid")"); fi
    done
    if [[ ${#pids[@]} -gt 0 ]]; then
        kill -TERM "${pids[@]}" 2>/dev/null || true
        for _ in $(seq 100); do
            local any=0
            for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && any=1; done
            [[ $any -eq 0 ]] && break
            sleep 0.1
        done
    fi
    rm -f "$STATE"/{slurmd,slurmctld,munged}.pid
    log "stopped"
}

status() {
    local rc=0
    for f in munged slurmctld slurmd; do
        if alive "$STATE/$f.pid"; then
            echo "$f: running (pid $(cat "$STATE/$f.pid"))"
        else
            echo "$f: stopped"
            rc=1
        fi
    done
    if [[ $rc -eq 0 ]]; then
        echo "node: $(SLURM_CONF="$CONF" sinfo -h -N -o '%N %T %c CPUs' 2>/dev/null || echo unknown)"
        echo "export SLURM_CONF=$CONF"
    fi
    return $rc
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) die "usage: $0 start|stop|status (state in \$FIRE_RL_SLURM_DIR, default ~/.cache/fire-rl/slurm)" ;;
esac
