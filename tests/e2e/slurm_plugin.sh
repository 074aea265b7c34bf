# The Slurm plugin (slurm/spank_qimg.c) on a real two-node cluster on this machine (tests/slurm/cluster.sh):
# pyxis's options on srun and sbatch, one container per step and node, one pull per node, exit codes, failures,
# and nothing left behind (scancel included). Jobs are submitted as the rootless test user, a few as root.
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

# An image with an Env and WorkingDir of its own, pulled first by the pull-once-per-node case.
"$PY" - "$TMPD" <<'PYEOF'
import json, subprocess, sys
tmp = sys.argv[1]
applets = sorted(set(subprocess.run(["/bin/busybox", "--list"], stdout=subprocess.PIPE, text=True).stdout.split()) - {"busybox"})
def d(p, mode="0755"): return {"path": p, "type": "dir", "mode": mode, "uid": 0, "gid": 0}
def f(p, c): return {"path": p, "content": c, "mode": "0644", "uid": 0, "gid": 0}
def s(p, t): return {"path": p, "type": "symlink", "target": t}
base = [d("bin"), d("etc"), d("tmp", "1777"), {"path": "bin/busybox", "from": "/bin/busybox", "mode": "0755"}]
base += [s("bin/" + a, "busybox") for a in applets]
base += [f("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"), f("etc/group", "root:x:0:\n"), f("etc/qimg-fixture", "slurmcfg\n")]
cfg = {"config": {"Env": ["PATH=/bin:/imagepath", "FROM_IMAGE=yes", "SLURM_JOB_NAME=from-image"],
                  "Cmd": ["sh"], "WorkingDir": "/srv/wd"}, "layers": [{"entries": base}]}
json.dump(cfg, open(tmp + "/slurmcfg.json", "w"))
PYEOF
fixture_custom slurmcfg "$TMPD/slurmcfg.json" slurm/cfg:1 || { fail "slurm: push slurmcfg" "push failed"; exit 0; }
sed 's/slurmcfg/slurmconc/' "$TMPD/slurmcfg.json" >"$TMPD/slurmconc.json"
fixture_custom slurmconc "$TMPD/slurmconc.json" slurm/conc:1 || { fail "slurm: push slurmconc" "push failed"; exit 0; }
CFG=$REG/slurm/cfg:1

# A store per node (as on a real cluster, where each node has its own local disk) and per user.
mkdir -p "$TMPD/nodes/n1" "$TMPD/nodes/n2" && chmod 1777 "$TMPD/nodes/n1" "$TMPD/nodes/n2" && chmod 0755 "$TMPD/nodes"
slurm_start "$PLUGIN" "qimg=$QIMG" "store=$TMPD/nodes/%n/%u" tls_verify=false ||
	{ fail "slurm: cluster" "did not start"; exit 0; }

srun_u() { slurm_as_user srun "$@"; }
ours() { # PIDS on stdin -> those carrying this file's QIMG_TEST_TAG (other files' tests run beside us)
	local p
	while read -r p; do
		grep -qz "^QIMG_TEST_TAG=$QIMG_TEST_TAG\$" "/proc/$p/environ" 2>/dev/null && echo "$p"
	done
}
holders() { pgrep -f -- '--slurm-holder' | ours | tr '\n' ' '; }
sleeps() { pgrep -u "$TUSER" -x sleep | ours | wc -l; }

# ---- four tasks on two nodes asking for an image no node has: one pull per node ----
layer_gets() { grep -c "\"GET /v2/slurm/cfg/blobs/sha256:[0-9a-f]* HTTP/1.1\" 200 .*\"qimg/" "$REG_LOG"; }
manifest_gets() { grep -c "\"GET /v2/slurm/cfg/manifests/[^ ]* HTTP/1.1\" 200 .*\"qimg/" "$REG_LOG"; }
t_ok "cold: srun -N2 -n4 pulls and runs" srun_u -N2 -n4 --container-image="$CFG" cat /etc/qimg-fixture
t_eq "cold: four tasks ran in the image" 4 "$(grep -c '^slurmcfg$' "$T_OUT")"
# Two blobs (config and the one layer) per node: two nodes, four downloads, however many tasks.
t_eq "cold: each blob fetched once per node (2 nodes x config+layer)" 4 "$(layer_gets)"
t_ok "cold: each node's store has the image" test -d "$TMPD/nodes/n1/$TUSER/specs" -a -d "$TMPD/nodes/n2/$TUSER/specs"
t_ok "warm: srun again (a job's \$USER does not choose the store)" slurm_as_user env USER=someone-else \
	srun -N2 -n4 --container-image="$CFG" true
t_ok "warm: no store made for \$USER" test ! -e "$TMPD/nodes/n1/someone-else" -a ! -e "$TMPD/nodes/n2/someone-else"
t_eq "warm: no blob fetched again" 4 "$(layer_gets)"
t_eq "warm: the containers ended cleanly (run records released)" "" \
	"$(grep -l '^id ' "$TMPD"/nodes/n[12]/"$TUSER"/live/slot-* 2>/dev/null)"

# ---- two jobs' steps started together on one node, asking for the same new image: one download (qimg's blob and
# layer locks make a second pull wait for the first and find the blobs there) ----
slurm_as_user srun -w n1 -n1 --container-image="$REG/slurm/conc:1" cat /etc/qimg-fixture >"$TMPD/conc1.out" 2>&1 &
c1=$!
slurm_as_user srun -w n1 -n1 --container-image="$REG/slurm/conc:1" cat /etc/qimg-fixture >"$TMPD/conc2.out" 2>&1 &
c2=$!
wait "$c1"
r1=$?
wait "$c2"
t_eq "concurrent: both steps ran" "0 0 slurmconc slurmconc" "$r1 $? $(cat "$TMPD/conc1.out" "$TMPD/conc2.out" | tr '\n' ' ' | sed 's/ $//')"
t_eq "concurrent: config and layer fetched once for the node" 2 \
	"$(grep -c "\"GET /v2/slurm/conc/blobs/sha256:[0-9a-f]* HTTP/1.1\" 200 .*\"qimg/" "$REG_LOG")"

# ---- the basic case ----
t_ok "srun -N2 -n4 --container-image cat /etc/os-release" srun_u -N2 -n4 --container-image="$IMG" cat /etc/os-release
t_eq "srun: four tasks read the image's os-release" 4 "$(grep -c '^ID=qimg-busybox$' "$T_OUT")"

# ---- pyxis's (enroot's) image URIs: [docker://][USER@][REGISTRY#]IMAGE[:TAG] ----
t_ok "uri: REGISTRY#IMAGE" srun_u -n1 --container-image="$REG#slurm/busybox:1" cat /etc/qimg-fixture
t_eq "uri: REGISTRY#IMAGE ran" busybox "$(cat "$T_OUT")"
t_ok "uri: docker://USER@REGISTRY#IMAGE" srun_u -n1 --container-image="docker://someone@$REG#slurm/busybox:1" true
t_fail "uri: a squashfs path is refused" srun_u -n1 --container-image=/scratch/image.sqsh true
t_contains "uri: squashfs named" "--container-image=/scratch/image.sqsh: squashfs files are not supported" "$(cat "$T_ERR")"

# ---- one container per step and node, shared by its tasks; none across nodes ----
share='touch /tmp/task$SLURM_PROCID; i=0
while [ "$(ls /tmp | grep -c "^task")" -lt 2 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
echo "$SLURMD_NODENAME $(readlink /proc/self/ns/mnt) $(ls /tmp | grep "^task" | tr "\n" " ")"'
t_ok "share: srun -N2 -n4" srun_u -N2 -n4 --container-image="$IMG" sh -c "$share"
n1=$(grep '^n1 ' "$T_OUT" | sort -u) n2=$(grep '^n2 ' "$T_OUT" | sort -u)
t_eq "share: n1's two tasks saw each other's /tmp files, in one mount namespace" 1 "$(printf '%s\n' "$n1" | grep -c '^n1 mnt:\[[0-9]*\] task[0-9] task[0-9] $')"
t_eq "share: n2's two tasks too" 1 "$(printf '%s\n' "$n2" | grep -c '^n2 mnt:\[[0-9]*\] task[0-9] task[0-9] $')"
t_ok "share: the nodes' containers differ" test "$(echo "$n1" | cut -d' ' -f2)" != "$(echo "$n2" | cut -d' ' -f2)"
t_ok "share: no pid namespace: the task's pid is the host's" srun_u -N1 -n1 --container-image="$IMG" sh -c \
	'test "$(cut -d" " -f4 /proc/self/stat)" != 0 && test "$$" != 1 && test -n "$SLURM_TASK_PID" && test "$(cat /proc/$SLURM_TASK_PID/stat | cut -d" " -f1)" = "$SLURM_TASK_PID"'

# ---- ids ----
t_ok "ids: default: the user's own uid inside" srun_u -n1 --container-image="$IMG" id -u
t_eq "ids: uid" "$TUSER_UID" "$(cat "$T_OUT")"
t_ok "ids: --container-remap-root" srun_u -n1 --container-image="$IMG" --container-remap-root id -u
t_eq "ids: remap-root uid 0" 0 "$(cat "$T_OUT")"
t_ok "ids: root's job" slurm_as_root srun -n1 --container-image="$IMG" id -u
t_eq "ids: root's job runs as 0" 0 "$(cat "$T_OUT")"
t_ok "ids: root's job reads the image" slurm_as_root srun -N2 -n2 --container-image="$IMG" cat /etc/qimg-fixture
t_eq "ids: root's job: two tasks" 2 "$(grep -c '^busybox$' "$T_OUT")"

# uid 0 inside gets qimg run's (docker's) capability set, not all of the namespace's (or the host's) capabilities.
want=$(as_user env QIMG_STORE="$TMPD/nodes/n1/$TUSER" "$QIMG" run "$IMG" grep CapBnd /proc/self/status)
t_ok "caps: remap-root" srun_u -w n1 -n1 --container-image="$IMG" --container-remap-root grep CapBnd /proc/self/status
t_eq "caps: remap-root's bounding set is qimg run's" "$want" "$(cat "$T_OUT")"
t_ok "caps: root's job" slurm_as_root srun -w n1 -n1 --container-image="$IMG" grep -E 'Cap(Bnd|Eff)' /proc/self/status
t_eq "caps: root's job's bounding and effective sets are qimg run's" "${want/CapBnd/CapEff}|$want" "$(tr '\n' '|' <"$T_OUT" | sed 's/|$//')"
t_ok "ids: QIMG_CONTAINER_REMAP_ROOT=1" slurm_as_user env QIMG_CONTAINER_REMAP_ROOT=1 srun -n1 --container-image="$IMG" id -u
t_eq "ids: env form remaps" 0 "$(cat "$T_OUT")"
t_ok "ids: the flag wins over the env form" slurm_as_user env QIMG_CONTAINER_REMAP_ROOT=1 \
	srun -n1 --container-image="$IMG" --no-container-remap-root id -u
t_eq "ids: --no-container-remap-root" "$TUSER_UID" "$(cat "$T_OUT")"
t_fail "ids: a bad env form value" slurm_as_user env QIMG_CONTAINER_REMAP_ROOT=maybe srun -n1 --container-image="$IMG" true
t_contains "ids: bad value named" "QIMG_CONTAINER_REMAP_ROOT=maybe: expected 1 or 0" "$(cat "$T_ERR")"

# ---- entrypoint: not run (pyxis's default); asking for it is refused by name ----
t_fail "entrypoint: --container-entrypoint refused" srun_u -n1 --container-image="$IMG" --container-entrypoint true
t_contains "entrypoint: named" "--container-entrypoint: not supported" "$(cat "$T_ERR")"
t_ok "entrypoint: --no-container-entrypoint" srun_u -n1 --container-image="$IMG" --no-container-entrypoint true

# ---- exit codes ----
t_fail "exit: the task's status reaches srun" srun_u -n1 --container-image="$IMG" sh -c 'exit 7'
t_eq "exit: status 7" 7 "$T_RC"

# ---- environment: the image's Env over the job's; Slurm's variables kept; --container-env ----
t_ok "env: srun" srun_u -n1 --container-image="$CFG" sh -c 'echo "$PATH|$FROM_IMAGE|$SLURM_PROCID|$SLURM_JOB_NAME"'
t_eq "env: image PATH and Env, SLURM_PROCID kept; the image's SLURM_JOB_NAME wins as pyxis" \
	"/bin:/imagepath|yes|0|from-image" "$(cat "$T_OUT")"
t_ok "env: --container-env=PATH keeps the host's" srun_u -n1 --container-image="$CFG" --container-env=PATH,SLURM_JOB_NAME \
	sh -c 'echo "$PATH|$SLURM_JOB_NAME"'
t_eq "env: host PATH and job name" "$_T_PATH|sh" "$(cat "$T_OUT")"
t_ok "env: QIMG_CONTAINER_IMAGE" slurm_as_user env QIMG_CONTAINER_IMAGE="$CFG" srun -n1 cat /etc/qimg-fixture
t_eq "env: the image from the environment" slurmcfg "$(cat "$T_OUT")"

# ---- workdir ----
t_ok "workdir: the image's" srun_u -n1 --container-image="$CFG" pwd
t_eq "workdir: /srv/wd" /srv/wd "$(cat "$T_OUT")"
t_ok "workdir: --container-workdir" srun_u -n1 --container-image="$CFG" --container-workdir=/var/x pwd
t_eq "workdir: /var/x (created)" /var/x "$(cat "$T_OUT")"

# ---- mounts ----
mkdir -p "$TMPD/share" && echo hostdata >"$TMPD/share/in" && chown -R "$TUSER_UID:$TUSER_GID" "$TMPD/share"
t_ok "mounts: ro" srun_u -n1 --container-image="$IMG" --container-mounts="$TMPD/share:/data:ro" \
	sh -c 'cat /data/in; touch /data/x 2>/dev/null && echo writable || echo readonly'
t_eq "mounts: ro content" "hostdata readonly" "$(tr '\n' ' ' <"$T_OUT" | sed 's/ $//')"
t_ok "mounts: rw, two mounts" srun_u -N2 -n2 --container-image="$IMG" --container-mounts="$TMPD/share:/data,$TMPD/share:/d2:ro" \
	sh -c 'echo out$SLURM_PROCID >/data/out$SLURM_PROCID && cat /d2/in'
t_eq "mounts: written through to the host" "out0 out1" "$(cat "$TMPD/share/out0" "$TMPD/share/out1" 2>&1 | tr '\n' ' ' | sed 's/ $//')"
t_eq "mounts: second mount" "hostdata hostdata" "$(tr '\n' ' ' <"$T_OUT" | sed 's/ $//')"
t_ok "mounts: ./SRC is the job's working directory's" slurm_as_user sh -c "cd '$TMPD/share' && srun -n1 \
	--container-image='$IMG' --container-mounts=./in:/in:ro cat /in"
t_eq "mounts: ./SRC content" hostdata "$(cat "$T_OUT")"
echo homefile >"$USER_HOME/hf" && chown "$TUSER_UID:$TUSER_GID" "$USER_HOME/hf"
t_ok "mount-home: --container-mount-home" srun_u -n1 --container-image="$IMG" --container-mount-home cat "$USER_HOME/hf"
t_eq "mount-home: the home file" homefile "$(cat "$T_OUT")"
t_fail "mount-home: not by default" srun_u -n1 --container-image="$IMG" cat "$USER_HOME/hf"
t_contains "mount-home: not by default: absent" "No such file" "$(cat "$T_ERR")"

# ---- writable / readonly ----
t_ok "writable: by default" srun_u -n1 --container-image="$IMG" sh -c 'echo x >/newfile && cat /newfile'
t_fail "readonly: --container-readonly" srun_u -n1 --container-image="$IMG" --container-readonly touch /newfile
t_contains "readonly: EROFS" "Read-only file system" "$(cat "$T_ERR")"
t_fail "readonly: QIMG_CONTAINER_READONLY=1" slurm_as_user env QIMG_CONTAINER_READONLY=1 srun -n1 --container-image="$IMG" touch /newfile
t_contains "readonly: env form EROFS" "Read-only file system" "$(cat "$T_ERR")"
t_ok "writable: --container-writable over QIMG_CONTAINER_READONLY=1" slurm_as_user env QIMG_CONTAINER_READONLY=1 \
	srun -n1 --container-image="$IMG" --container-writable touch /newfile

# ---- a kept container across two steps; sbatch ----
cat >"$USER_HOME/steps.sh" <<EOS
#!/bin/sh
srun --container-image=$IMG --container-name=keep1 sh -c 'echo kept >/kept-file'
srun --container-image=$IMG --container-name=keep1 cat /kept-file
srun --container-image=$IMG cat /kept-file 2>&1 || echo "fresh: absent"
EOS
cat >"$USER_HOME/batch.sh" <<'EOS'
#!/bin/sh
cat /etc/qimg-fixture
id -u
echo "$FROM_IMAGE"
EOS
chown "$TUSER_UID:$TUSER_GID" "$USER_HOME/steps.sh" "$USER_HOME/batch.sh"
t_ok "name: sbatch with two steps sharing --container-name" slurm_as_user sbatch --wait -N1 -o "$USER_HOME/steps.out" "$USER_HOME/steps.sh"
t_contains "name: the second step saw the first's file" "kept" "$(cat "$USER_HOME/steps.out")"
t_contains "name: an unnamed container did not" "fresh: absent" "$(cat "$USER_HOME/steps.out")"
t_ok "sbatch --container-image runs the script inside" slurm_as_user sbatch --wait -N1 --container-image="$CFG" \
	-o "$USER_HOME/batch.out" "$USER_HOME/batch.sh"
t_eq "sbatch: the script's output" "slurmcfg $TUSER_UID yes" "$(tr '\n' ' ' <"$USER_HOME/batch.out" | sed 's/ $//')"
printf '#!/bin/sh\n#SBATCH --container-image=%s\ncat /etc/qimg-fixture\n' "$CFG" >"$USER_HOME/batch2.sh"
chown "$TUSER_UID:$TUSER_GID" "$USER_HOME/batch2.sh"
t_ok "sbatch: #SBATCH --container-image in the script" slurm_as_user sbatch --wait -N1 -o "$USER_HOME/batch2.out" "$USER_HOME/batch2.sh"
t_eq "sbatch: #SBATCH directive's output" slurmcfg "$(cat "$USER_HOME/batch2.out")"

# ---- bad input: one line naming the image or option, the step fails, nothing left ----
keepers() { # our test user's keeper (the one its XDG_RUNTIME_DIR names; other files' tests have their own)
	as_user "$QIMG" system keeper status 2>&1 | grep -v '^not running' | head -n 1
}
as_user "$QIMG" system keeper stop >/dev/null 2>&1
t_eq "bad input: no keeper before" "" "$(keepers)"
t_fail "bad image" srun_u -N2 -n2 --container-image="$REG/slurm/nope:1" true
t_contains "bad image: named on srun's stderr" "qimg: $REG/slurm/nope:1: " "$(cat "$T_ERR")"
t_eq "bad image: one line per node (its first task), not one per task" 2 "$(grep -c "^qimg: $REG/slurm/nope:1: " "$T_ERR")"
t_contains "bad image: the registry's answer, not only 'pull failed'" "qimg: $REG/slurm/nope:1: pull: GET /v2/slurm/nope/manifests/1: 404 Not Found" "$(cat "$T_ERR")"
t_fail "bad mount" srun_u -N1 -n1 --container-image="$IMG" --container-mounts=/nonexistent/dir:/x true
t_contains "bad mount: named" "--container-mounts=/nonexistent/dir:/x: /nonexistent/dir: No such file or directory" "$(cat "$T_ERR")"
t_fail "bad mount flag" srun_u -N1 -n1 --container-image="$IMG" --container-mounts="$TMPD/share:/x:nosuch" true
t_contains "bad mount flag: named" 'unsupported mount flag "nosuch"' "$(cat "$T_ERR")"
t_fail "registry down" srun_u -N1 -n1 --container-image="127.0.0.1:$(free_port)/x/y:1" true
t_contains "registry down: named, with the reason" "Couldn't connect to server" "$(grep '^qimg: 127.0.0.1:' "$T_ERR")"
t_eq "bad input: no holder left" "" "$(holders)"
t_eq "bad input: no keeper started" "" "$(keepers)"
t_fail "missing command" srun_u -N1 -n1 --container-image="$IMG" no-such-command
t_contains "missing command: named" "no-such-command" "$(cat "$T_ERR")"
t_ok "keeper check: running once a step built a container (qimg's per-user keeper, reused by later steps)" test -n "$(keepers)"

# ---- scancel of a running containerised step: nothing left on either node ----
slurm_as_user srun -N2 -n4 --container-image="$IMG" sleep 300 >"$TMPD/cancel.out" 2>&1 &
srun_pid=$!
for ((i = 0; i < 100; i++)); do
	[ "$(sleeps)" -ge 4 ] && break
	sleep 0.1
done
t_eq "scancel: four tasks and two holders (qimg and its container process each) running" "4 4" "$(sleeps) $(holders | wc -w)"
jobid=$(env SLURM_CONF="$SLURM_CONF" squeue -h -u "$TUSER" -o %i | head -n 1)
t_ok "scancel: scancel" slurm_as_user scancel "$jobid"
wait "$srun_pid"
for ((i = 0; i < 100; i++)); do
	[ -z "$(holders)" ] && [ "$(sleeps)" = 0 ] && break
	sleep 0.1
done
t_eq "scancel: no task and no holder left" "0 " "$(sleeps) $(holders)"
# qimg ended its runs itself (a run killed -9 leaves a slot starting with "id ", which only ps or gc frees).
t_eq "scancel: every run record on both nodes was released by its qimg" "" \
	"$(grep -l '^id ' "$TMPD"/nodes/n[12]/"$TUSER"/live/slot-* 2>/dev/null)"
t_eq "scancel: no live container recorded on either node" "" \
	"$(for n in n1 n2; do as_user env QIMG_STORE="$TMPD/nodes/$n/$TUSER" "$QIMG" ps -q; done)"

# ---- plugstack arguments: registries_conf (short names, an insecure registry without tls_verify=false) ----
# slurmstepd and srun read plugstack.conf at every step, so the cluster keeps running.
fixture_push busybox slurm/short:1 || fail "registries: push" "push failed"
printf 'unqualified-search-registries = ["%s"]\n\n[[registry]]\nlocation = "%s"\ninsecure = true\n' "$REG" "$REG" \
	>"$TMPD/registries.conf" && chmod 0644 "$TMPD/registries.conf"
echo "required $PLUGIN qimg=$QIMG store=$TMPD/nodes/%n/%u registries_conf=$TMPD/registries.conf" >"$SLURM_DIR/plugstack.conf"
t_ok "registries_conf: a short name, pulled from the insecure registry it names" \
	srun_u -N2 -n2 --container-image=slurm/short:1 cat /etc/qimg-fixture
t_eq "registries_conf: ran on both nodes" "busybox busybox" "$(tr '\n' ' ' <"$T_OUT" | sed 's/ $//')"
echo "required $PLUGIN qimg=$QIMG store=$TMPD/nodes/%n/%u tls_verify=false container_scope=global" >"$SLURM_DIR/plugstack.conf"
t_ok "container_scope=global: job 1 keeps g1" srun_u -w n1 -n1 --container-image="$IMG" --container-name=g1 sh -c 'echo global >/gfile'
t_ok "container_scope=global: job 2 continues from it" srun_u -w n1 -n1 --container-image="$IMG" --container-name=g1 cat /gfile
t_eq "container_scope=global: the file" global "$(cat "$T_OUT")"
sleep 1 # the epilogs have run (and must leave it)
t_ok "container_scope=global: the user's kept container g1, left by the epilog" test -d "$TMPD/nodes/n1/$TUSER/runs/g1"
t_ok "container_scope=global: qimg rm g1" as_user env QIMG_STORE="$TMPD/nodes/n1/$TUSER" "$QIMG" rm g1
echo "required $PLUGIN qimg=$QIMG store=$TMPD/nodes/%n/%u pull=never" >"$SLURM_DIR/plugstack.conf"
t_fail "pull=never: an image the nodes lack is not pulled" srun_u -N1 -n1 --container-image="$REG/slurm/never:1" true
t_contains "pull=never: named" "qimg: $REG/slurm/never:1: " "$(cat "$T_ERR")"
t_eq "pull=never: no request for it" 0 "$(grep -c '/v2/slurm/never/' "$REG_LOG")"
echo "required $PLUGIN qimg=$QIMG nosuch=1" >"$SLURM_DIR/plugstack.conf"
t_fail "plugstack: an unknown argument fails the step" srun_u -N1 -n1 --container-image="$IMG" true
t_contains "plugstack: named (slurmd's log)" 'unknown plugstack argument "nosuch=1"' "$(cat "$SLURM_DIR"/log/slurmd-n1.log "$T_ERR")"

# ---- the job's named containers are removed at its end (the epilog), on the node that kept them ----
kept_left() { find "$TMPD/nodes/n1/$TUSER/runs" "$TMPD/nodes/n2/$TUSER/runs" -mindepth 1 -maxdepth 1 2>/dev/null; }
for ((i = 0; i < 50; i++)); do
	[ -z "$(kept_left)" ] && break
	sleep 0.1
done
t_eq "name: the job's kept containers are gone after it" "" "$(kept_left)"
