# The Slurm plugin (slurm/spank_qimg.c) on a real two-node cluster on this machine (tests/slurm/cluster.sh):
# pyxis's options on srun and sbatch, one container per step and node, pulls once per node, failures, cleanup.
# Jobs are submitted as the rootless test user (and a few as root).
. "$QIMG_TESTS_DIR/slurm/cluster.sh"

PLUGIN=${QIMG_SPANK_PLUGIN:-$QIMG_ROOT/build/release/spank_qimg.so}
if ! why=$(slurm_have "$PLUGIN"); then
	skip slurm_plugin "$why"
	exit 0
fi
[ -n "$TUSER" ] || { skip slurm_plugin "needs root and the test user"; exit 0; }

registry_start plain || { fail "slurm: registry_start" "did not start"; exit 0; }
fixture_push busybox slurm/busybox:1 || { fail "slurm: push busybox" "push failed"; exit 0; }
IMG=$REG/slurm/busybox:1

# A store per node (as on a real cluster, where each node has its own local disk) and per user.
mkdir -p "$TMPD/nodes/n1" "$TMPD/nodes/n2" && chmod 1777 "$TMPD/nodes/n1" "$TMPD/nodes/n2" && chmod 0755 "$TMPD/nodes"
slurm_start "$PLUGIN" "qimg=$QIMG" "store=$TMPD/nodes/%n/%u" tls_verify=false ||
	{ fail "slurm: cluster" "did not start"; exit 0; }

srun_u() { slurm_as_user srun "$@"; }

# -N2 -n4: four tasks on two nodes, each running the image's cat.
t_ok "srun -N2 -n4 --container-image" srun_u -N2 -n4 --container-image="$IMG" cat /etc/os-release /etc/qimg-fixture
t_eq "srun: four tasks saw the image's /etc/qimg-fixture" 4 "$(grep -c '^busybox$' "$T_OUT")"
cat $T_OUT $T_ERR
