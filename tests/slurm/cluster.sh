# A real Slurm cluster on this machine for the plugin's tests and benchmark (sourced after tests/lib.sh):
# munged, slurmctld and two slurmd processes as two nodes (`slurmd -N n1`, `slurmd -N n2`), one slurm.conf with
# NodeAddr=127.0.0.1 and a Port= per node, every port picked free at run time, every file under $TMPD/slurm.
# All three daemons run in the foreground under _t_spawn, so lib.sh's exit handler stops them (and their
# descendants: slurmstepd and what it started carry QIMG_TEST_TAG).
#
# slurm_have: 0 when the Slurm and munge programs and the plugin are there (else prints why).
# slurm_start PLUGIN [PLUGSTACK-ARGS...]: write the configs and start the cluster; sets SLURM_CONF SLURM_DIR.
# slurm_as_user CMD... / slurm_as_root CMD...: as_user/as_root with SLURM_CONF set.
# slurm_stop: stop the daemons now (also done at exit).

slurm_have() {
	local p
	for p in munged slurmctld slurmd slurmstepd srun sbatch scontrol; do
		command -v "$p" >/dev/null 2>&1 || { echo "$p is not installed (make deps: slurm-wlm munge)"; return 1; }
	done
	[ "$(id -u)" = 0 ] || { echo "the cluster's daemons must run as root"; return 1; }
	[ -f "${1:-/nonexistent}" ] || { echo "the plugin ${1:-} was not built (libslurm-dev's slurm/spank.h missing?)"; return 1; }
}

_slurm_wait() { # WHAT CMD...: retry CMD for 30 s
	local what=$1 i
	shift
	for ((i = 0; i < 300; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "slurm_start: $what not ready after 30 s" >&2
	return 1
}

_slurm_nodes_idle() {
	[ "$(env SLURM_CONF="$SLURM_CONF" sinfo -h -N -o '%N %t' 2>/dev/null | grep -c ' idle$')" = 2 ]
}

slurm_start() {
	local plugin=$1 d host p n
	shift
	d=$TMPD/slurm
	mkdir -p "$d/munge" "$d/state" "$d/n1" "$d/n2" "$d/log"
	chmod 0700 "$d/munge" && chmod 0755 "$d" "$d/log"
	dd if=/dev/urandom of="$d/munge/munge.key" bs=1024 count=1 2>/dev/null && chmod 0400 "$d/munge/munge.key"
	# The socket's directory must be reachable by the test user (munge's own check wants no group/other write).
	mkdir -p "$d/munge-run" && chmod 0755 "$d/munge-run"
	_t_spawn "$d/log/munged.log" munged -F --force --key-file="$d/munge/munge.key" --socket="$d/munge-run/munge.sock" \
		--pid-file="$d/munge/munged.pid" --seed-file="$d/munge/seed" --log-file="$d/log/munged.file.log"
	_slurm_wait munged test -S "$d/munge-run/munge.sock" || { cat "$d/log/munged.log" >&2; return 1; }
	host=$(hostname -s)
	{
		printf '%s\n' "ClusterName=qimgtest" "SlurmctldHost=$host(127.0.0.1)" "SlurmctldPort=$(free_port)" \
			"SlurmUser=root" "SlurmdUser=root" "AuthType=auth/munge" "CredType=cred/munge" \
			"AuthInfo=socket=$d/munge-run/munge.sock" "StateSaveLocation=$d/state" \
			"SlurmdSpoolDir=$d/%n/spool" "SlurmctldPidFile=$d/slurmctld.pid" "SlurmdPidFile=$d/%n/slurmd.pid" \
			"SlurmctldLogFile=$d/log/slurmctld.log" "SlurmdLogFile=$d/log/slurmd-%n.log" \
			"SlurmctldDebug=info" "SlurmdDebug=debug" "ProctrackType=proctrack/linuxproc" "TaskPlugin=task/none" \
			"MpiDefault=none" "SwitchType=switch/none" "JobAcctGatherType=jobacct_gather/none" \
			"AccountingStorageType=accounting_storage/none" "JobCompType=jobcomp/none" \
			"SchedulerType=sched/builtin" "SelectType=select/cons_tres" "SelectTypeParameters=CR_CPU" \
			"SlurmdParameters=config_overrides" "ReturnToService=2" "KillWait=2" "MessageTimeout=20" \
			"InactiveLimit=0" "MinJobAge=300" "PlugStackConfig=$d/plugstack.conf" "TmpFS=$d/tmp"
		for n in n1 n2; do
			p=$(free_port)
			printf 'NodeName=%s NodeHostname=%s NodeAddr=127.0.0.1 Port=%s CPUs=2 RealMemory=500 State=UNKNOWN\n' \
				"$n" "$host" "$p"
		done
		echo "PartitionName=main Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP"
	} >"$d/slurm.conf"
	mkdir -p "$d/tmp" && chmod 1777 "$d/tmp"
	if [ -n "$plugin" ]; then echo "required $plugin $*"; fi >"$d/plugstack.conf"
	chmod 0644 "$d/slurm.conf" "$d/plugstack.conf"
	SLURM_CONF=$d/slurm.conf SLURM_DIR=$d
	export SLURM_CONF SLURM_DIR
	_t_spawn "$d/log/slurmctld.out" slurmctld -D -i -c -f "$SLURM_CONF"
	_slurm_wait slurmctld env SLURM_CONF="$SLURM_CONF" scontrol ping ||
		{ tail -n 20 "$d/log/slurmctld.log" "$d/log/slurmctld.out" >&2; return 1; }
	for n in n1 n2; do
		_t_spawn "$d/log/slurmd-$n.out" slurmd -D -N "$n" -f "$SLURM_CONF"
	done
	_slurm_wait "the nodes" _slurm_nodes_idle ||
		{ tail -n 20 "$d/log/slurmd-n1.log" "$d/log/slurmd-n1.out" "$d/log/slurmctld.log" >&2; return 1; }
}

slurm_as_user() { SLURM_CONF=$SLURM_CONF as_user env SLURM_CONF="$SLURM_CONF" "$@"; }
slurm_as_root() { as_root env SLURM_CONF="$SLURM_CONF" "$@"; }

slurm_stop() { registry_stop; }
