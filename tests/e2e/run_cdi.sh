# qimg run --device / --gpus: CDI spec files (JSON and YAML, several cdiVersions) the tests write for fake
# devices (/dev/zero and /dev/null stand in for GPUs), a host library directory mounted read-only, env, =all, a
# device defined in two spec directories, hooks at every OCI stage (a createContainer hook that, like NVIDIA's
# create-symlinks, reads the state on stdin and the bundle's config.json and makes a symlink inside the root),
# additionalGids, plain --device /dev/X, unknown devices and broken specs; root and rootless. The real GPU test
# runs only where nvidia-smi and nvidia-ctk are.

registry_start plain || { fail "run_cdi: registry_start" "did not start"; exit 0; }

# busybox, plus an image symlink pointing out of the root: a CDI container path through it must stay inside.
CANARY=$TMPD/canary
mkdir -p "$CANARY" && chmod 0777 "$CANARY"
"$PY" - "$TMPD" "$CANARY" <<'EOF'
import json, subprocess, sys
tmp, canary = sys.argv[1], sys.argv[2]
applets = sorted(set(subprocess.run(["/bin/busybox", "--list"], stdout=subprocess.PIPE, text=True).stdout.split()) - {"busybox"})
def d(p, mode="0755"): return {"path": p, "type": "dir", "mode": mode, "uid": 0, "gid": 0}
def s(p, t): return {"path": p, "type": "symlink", "target": t}
e = [d("bin"), d("etc"), d("tmp", "1777"), d("usr"), d("usr/lib"), {"path": "bin/busybox", "from": "/bin/busybox", "mode": "0755"}]
e += [s("bin/" + a, "busybox") for a in applets]
e += [{"path": "etc/passwd", "content": "root:x:0:0:root:/root:/bin/sh\n", "mode": "0644", "uid": 0, "gid": 0},
      {"path": "etc/group", "content": "root:x:0:\nvideo:x:44:\n", "mode": "0644", "uid": 0, "gid": 0},
      s("escape", "../../../../../../../../.." + canary)]
json.dump({"config": {"Env": ["PATH=/bin", "FROMIMAGE=1"], "Cmd": ["sh"]}, "layers": [{"entries": e}]},
          open(tmp + "/cdiimg.json", "w"))
EOF
fixture_custom cdiimg "$TMPD/cdiimg.json" cdi/img:1 || { fail "run_cdi: push cdiimg" "push failed"; exit 0; }
IMG=$REG/cdi/img:1

# Spec directories: D1 (like /etc/cdi) and D2 (like /var/run/cdi, later: wins).
C=$TMPD/cdi
D1=$C/etc
D2=$C/run
OUT=$C/out # host-side hooks (qimg's user) write their markers here
mkdir -p "$D1" "$D2" "$OUT" "$C/hostlib" "$C/bad" "$C/old"
chmod 0777 "$OUT"
echo "cuda-lib" >"$C/hostlib/libqcuda.so.1.2.3"
chmod -R a+rX "$C"

# A createContainer hook as NVIDIA's: the OCI state on stdin -> bundle -> config.json -> root.path; a symlink there.
cat >"$C/symlink-hook" <<'EOF'
#!/usr/bin/python3
import json, os, sys
state = json.load(sys.stdin)
cfg = json.load(open(os.path.join(state["bundle"], "config.json")))
root = cfg["root"]["path"]
os.symlink("qimg-cuda/libqcuda.so.1.2.3", root + "/usr/lib/libqcuda.so.1")
env = [e for e in cfg["process"]["env"] if e.startswith("GPU0=")]
with open(root + "/tmp/hook-state", "w") as f:
    f.write("%s %s %s %s %s\n" % (state["status"], state["id"][:8], "pid" if state["pid"] > 0 else "nopid",
                                  os.environ.get("HOOKVAR", "-"), ",".join(env)))
EOF
# Host-side hooks: a line per stage into $OUT/<stage>.
cat >"$C/mark-hook" <<'EOF'
#!/usr/bin/python3
import json, sys
state = json.load(sys.stdin)
with open(sys.argv[2] + "/" + sys.argv[1], "a") as f:
    f.write("%s %d\n" % (state["status"], state["pid"]))
EOF
printf '#!/bin/sh\nexit 3\n' >"$C/fail-hook"
printf '#!/bin/sh\nsleep 30\n' >"$C/slow-hook"
chmod 0755 "$C"/*-hook

cat >"$D1/vendor.yaml" <<EOF
cdiVersion: "0.6.0"
kind: test.example/gpu
annotations: {note: fake}
containerEdits:
  env: [SHARED=yes]
  hooks:
  - hookName: createContainer
    path: $C/symlink-hook
    args: [symlink-hook, create-symlinks]
    env: [HOOKVAR=set]
    timeout: 20
devices:
- name: "0"
  containerEdits:
    env: [GPU0=1]
    deviceNodes:
    - {path: /dev/qgpu0, hostPath: /dev/zero, permissions: rw}
    mounts:
    - {hostPath: $C/hostlib, containerPath: /usr/lib/qimg-cuda, options: [ro, nosuid, nodev, rbind]}
- name: "1"
  containerEdits:
    env: [GPU1=1]
    deviceNodes:
    - {path: /dev/qgpu1, hostPath: /dev/null}
- name: dup
  containerEdits:
    env: [DUP=etc]
EOF
cat >"$D2/vendor.json" <<'EOF'
{"cdiVersion": "0.7.0", "kind": "test.example/gpu",
 "devices": [{"name": "dup", "containerEdits": {"env": ["DUP=run"]}},
             {"name": "grp", "containerEdits": {"additionalGids": [44]}}]}
EOF
cat >"$D2/hooks.json" <<EOF
{"cdiVersion": "1.0.0", "kind": "test.example/hooks",
 "devices": [{"name": "stages", "containerEdits": {"hooks": [
   {"hookName": "createRuntime", "path": "$C/mark-hook", "args": ["mark-hook", "createRuntime", "$OUT"]},
   {"hookName": "poststart", "path": "$C/mark-hook", "args": ["mark-hook", "poststart", "$OUT"]},
   {"hookName": "startContainer", "path": "/bin/sh", "args": ["sh", "-c", "echo start \$(id -u) \$STARTVAR >/tmp/started"],
    "env": ["STARTVAR=sv"]},
   {"hookName": "poststop", "path": "$C/mark-hook", "args": ["mark-hook", "poststop", "$OUT"]}]}},
  {"name": "fail", "containerEdits": {"hooks": [{"hookName": "createContainer", "path": "$C/fail-hook"}]}},
  {"name": "slow", "containerEdits": {"hooks": [{"hookName": "createContainer", "path": "$C/slow-hook", "timeout": 1}]}},
  {"name": "stopfail", "containerEdits": {"hooks": [{"hookName": "poststop", "path": "$C/fail-hook"}]}},
  {"name": "escape", "containerEdits": {
     "mounts": [{"hostPath": "$C/hostlib", "containerPath": "/escape/lib", "options": ["ro", "rbind"]}],
     "deviceNodes": [{"path": "/escape/dev0", "hostPath": "/dev/zero"}]}}]}
EOF
cat >"$D2/nvidia.yaml" <<'EOF'
cdiVersion: 0.5.0
kind: nvidia.com/gpu
devices:
- name: "0"
  containerEdits: {env: [NV0=1]}
- name: "1"
  containerEdits: {env: [NV1=1]}
EOF
chmod -R a+rX "$C"
export QIMG_CDI_SPEC_DIRS=$D1:$D2

t_setup() {
	t_ok "pull cdiimg" $Q pull -q --tls-verify=false "$IMG"
}

# One device: env (shared + its own), the node (a real read of /dev/zero through it), the read-only library mount,
# the createContainer hook's symlink and what it saw (state, bundle config.json, its own env).
t_device() {
	rm -f "$OUT"/*
	t_ok "cdi one device" $Q run --device test.example/gpu=0 "$IMG" sh -c \
		'echo "env=$SHARED,$GPU0,$FROMIMAGE"; head -c 4 /dev/qgpu0 | od -An -tx1; cat /usr/lib/libqcuda.so.1;
		 readlink /usr/lib/libqcuda.so.1; cat /tmp/hook-state; touch /usr/lib/qimg-cuda/x 2>&1 || echo ro-ok;
		 test -e /dev/qgpu1 && echo has-gpu1; true'
	t_contains "cdi env" "env=yes,1,1" "$(cat "$T_OUT")"
	t_contains "cdi device node reads /dev/zero" " 00 00 00 00" "$(cat "$T_OUT")"
	t_contains "cdi mount" "cuda-lib" "$(cat "$T_OUT")"
	t_contains "cdi hook symlink" "qimg-cuda/libqcuda.so.1.2.3" "$(cat "$T_OUT")"
	t_contains "cdi hook state/config/env" "creating" "$(cat "$T_OUT")"
	t_contains "cdi hook pid, env, config.json env" "pid set GPU0=1" "$(cat "$T_OUT")"
	t_contains "cdi mount is read-only" "ro-ok" "$(cat "$T_OUT")"
	case $(cat "$T_OUT") in *has-gpu1*) fail "cdi only the asked device" "$T_OUT" ;; *) pass "cdi only the asked device" ;; esac
	if command -v fuse-overlayfs >/dev/null && [ -c /dev/fuse ] &&
		{ [ "$MODE" = root ] || [ "$(stat -c %a /dev/fuse)" = 666 ]; }; then
		# fuse-overlayfs makes PID 1 unshare its mount namespace again: the bundle and binds must follow.
		t_ok "cdi with --overlay fuse" $Q run --overlay fuse --device test.example/gpu=0 "$IMG" sh -c \
			'head -c 2 /dev/qgpu0 | od -An -tx1; readlink /usr/lib/libqcuda.so.1; cat /usr/lib/qimg-cuda/*'
		t_contains "cdi with --overlay fuse: node, hook, mount" "qimg-cuda/libqcuda.so.1.2.3" "$(cat "$T_OUT")"
		t_contains "cdi with --overlay fuse: mount" "cuda-lib" "$(cat "$T_OUT")"
	fi
}

t_all() {
	t_ok "cdi =all" $Q run --device test.example/gpu=all "$IMG" sh -c \
		'echo "all=$GPU0,$GPU1,$DUP"; test -c /dev/qgpu0 && test -c /dev/qgpu1 && echo nodes-ok'
	t_contains "cdi =all: every device, later dir wins" "all=1,1,run" "$(cat "$T_OUT")"
	t_contains "cdi =all: nodes" "nodes-ok" "$(cat "$T_OUT")"
	t_ok "cdi later dir wins" $Q run --device test.example/gpu=dup "$IMG" sh -c 'echo "dup=$DUP"'
	t_contains "cdi later dir wins" "dup=run" "$(cat "$T_OUT")"
	t_ok "cdi -e wins over CDI env" $Q run -e DUP=cli --device test.example/gpu=dup "$IMG" sh -c 'echo "dup=$DUP"'
	t_contains "cdi -e wins over CDI env" "dup=cli" "$(cat "$T_OUT")"
}

# Without qimg-cdi installed beside qimg, qimg-pull cdi-resolve does the resolving.
t_fallback() {
	local d=$TMPD/nolean
	mkdir -p "$d" && cp "$QIMG" "$d/qimg" && cp "$(dirname "$QIMG")/qimg-pull" "$d/" && chmod -R a+rx "$d"
	t_ok "cdi through qimg-pull when qimg-cdi is missing" ${Q%"$QIMG"}"$d/qimg" -vv run --device test.example/gpu=1 \
		"$IMG" sh -c 'echo "gpu1=$GPU1"'
	t_contains "cdi through qimg-pull: resolved" "gpu1=1" "$(cat "$T_OUT")"
	t_contains "cdi through qimg-pull: that helper" "resolving CDI devices with $d/qimg-pull" "$(cat "$T_ERR")"
	[ -x "$(dirname "$QIMG")/qimg-cdi" ] || return 0 # lib.sh copied only qimg and qimg-pull for the test user
	t_ok "cdi through qimg-cdi where it is" $Q -vv run --device test.example/gpu=1 "$IMG" true
	t_contains "cdi through qimg-cdi: that helper" "/qimg-cdi" "$(grep 'resolving CDI' "$T_ERR")"
}

t_gids() {
	t_ok "cdi additionalGids" $Q run --device test.example/gpu=grp "$IMG" id -G
	t_contains "cdi additionalGids" "44" "$(cat "$T_OUT")"
}

t_plain() {
	t_ok "plain --device" $Q run --device /dev/zero:/dev/myzero:rw "$IMG" sh -c 'head -c 3 /dev/myzero | od -An -tx1'
	t_contains "plain --device reads" " 00 00 00" "$(cat "$T_OUT")"
	t_ok "plain --device same path" $Q run --device /dev/full "$IMG" sh -c 'test -c /dev/full && echo full-ok'
	mkdir -p "$C/devdir/sub" && ln -sf /dev/zero "$C/devdir/zero" && chmod -R a+rX "$C/devdir"
	if [ "$MODE" = root ]; then mknod -m 0666 "$C/devdir/sub/null" c 1 3 2>/dev/null || true; fi
	if [ -c "$C/devdir/sub/null" ]; then
		t_ok "plain --device DIR: its device nodes" $Q run --device "$C/devdir:/dev/dd" "$IMG" sh -c \
			'test -c /dev/dd/sub/null && echo dir-ok; test -e /dev/dd/zero || echo no-symlink'
		t_contains "plain --device DIR: nodes below it" "dir-ok" "$(cat "$T_OUT")"
		t_contains "plain --device DIR: symlinks not followed" "no-symlink" "$(cat "$T_OUT")"
	fi
	t_fail "plain --device not a device" $Q run --device /etc/passwd "$IMG" true
	t_contains "plain --device not a device: message" "is not a device node" "$(cat "$T_ERR")"
	t_fail "plain --device bad perms" $Q run --device /dev/zero:/dev/z:rwx "$IMG" true
	t_contains "plain --device bad perms: message" "invalid permissions" "$(cat "$T_ERR")"
}

t_hooks() {
	rm -f "$OUT"/*
	t_ok "cdi hooks stages" $Q run -u 1234 --device test.example/hooks=stages "$IMG" cat /tmp/started
	t_contains "cdi startContainer: in the container, as the command's user" "start 1234 sv" "$(cat "$T_OUT")"
	for s in createRuntime poststart poststop; do
		if [ -s "$OUT/$s" ]; then pass "cdi hook $s ran"; else fail "cdi hook $s ran" "no $OUT/$s"; fi
	done
	t_contains "cdi createRuntime state" "creating" "$(cat "$OUT/createRuntime" 2>/dev/null)"
	t_contains "cdi poststop state" "stopped" "$(cat "$OUT/poststop" 2>/dev/null)"
	t_fail "cdi failing hook" $Q run --device test.example/hooks=fail "$IMG" echo never-printed
	t_eq "cdi failing hook: exit 125" 125 "$T_RC"
	t_contains "cdi failing hook: names it" "createContainer hook $C/fail-hook: exit status 3" "$(cat "$T_ERR")"
	case $(cat "$T_OUT") in *never-printed*) fail "cdi failing hook: no command" "$T_OUT" ;; *) pass "cdi failing hook: no command" ;; esac
	t_fail "cdi hook timeout" $Q run --device test.example/hooks=slow "$IMG" true
	t_contains "cdi hook timeout: message" "timed out after 1 s" "$(cat "$T_ERR")"
	t_ok "cdi failing poststop only warns" $Q run --device test.example/hooks=stopfail "$IMG" true
	t_contains "cdi failing poststop: warning" "poststop hook $C/fail-hook: exit status 3" "$(cat "$T_ERR")"
}

# A container path through an image symlink pointing out of the root stays inside the root.
t_escape() {
	t_ok "cdi container path in root" $Q run --device test.example/hooks=escape "$IMG" sh -c \
		'cat /escape/lib/libqcuda.so.1.2.3; head -c 2 /escape/dev0 | od -An -tx1'
	t_contains "cdi container path in root: mount" "cuda-lib" "$(cat "$T_OUT")"
	if [ -z "$(ls -A "$CANARY")" ]; then pass "cdi container path never escapes"; else
		fail "cdi container path never escapes" "$(ls -lA "$CANARY")"
	fi
}

t_errors() {
	t_fail "cdi unknown device" $Q run --device test.example/gpu=7 "$IMG" true
	t_eq "cdi unknown device: 125" 125 "$T_RC"
	t_contains "cdi unknown device: lists offers" "unknown CDI device test.example/gpu=7" "$(cat "$T_ERR")"
	t_contains "cdi unknown device: offers" "test.example/gpu=0, test.example/gpu=1" "$(cat "$T_ERR")"
	t_fail "cdi invalid name" $Q run --device nvidia.com/gpu "$IMG" true
	t_contains "cdi invalid name: message" "invalid CDI device name" "$(cat "$T_ERR")"
	QIMG_CDI_SPEC_DIRS=$D1:$C/bad t_fail "cdi broken spec" $Q run --device test.example/gpu=0 "$IMG" true
	t_contains "cdi broken spec: file and field" "$C/bad/broken.json: devices[0].containerEdits.envs: unknown field" "$(cat "$T_ERR")"
	QIMG_CDI_SPEC_DIRS=$C/old t_fail "cdi version too old" $Q run --device test.example/old=0 "$IMG" true
	t_contains "cdi version too old: names field" "additionalGids needs 0.7.0" "$(cat "$T_ERR")"
}
cat >"$C/bad/broken.json" <<'EOF'
{"cdiVersion": "0.6.0", "kind": "test.example/gpu", "devices": [{"name": "0", "containerEdits": {"envs": ["A=1"]}}]}
EOF
cat >"$C/old/old.yaml" <<'EOF'
cdiVersion: 0.6.0
kind: test.example/old
devices:
- name: "0"
  containerEdits:
    additionalGids: [44]
EOF
chmod -R a+rX "$C"

t_gpus() {
	t_ok "--gpus all" $Q run --gpus all "$IMG" sh -c 'echo "nv=$NV0,$NV1"'
	t_contains "--gpus all: nvidia.com/gpu=all (every GPU)" "nv=1,1" "$(cat "$T_OUT")"
	t_ok "--gpus 1" $Q run --gpus 1 "$IMG" sh -c 'echo "nv=$NV0,$NV1"'
	t_contains "--gpus 1: the first GPU" "nv=1," "$(cat "$T_OUT")"
	t_ok "--gpus device=1" $Q run --gpus '"device=1"' "$IMG" sh -c 'echo "nv=$NV0,$NV1"'
	t_contains "--gpus device=1" "nv=,1" "$(cat "$T_OUT")"
	t_fail "--gpus bad" $Q run --gpus lots "$IMG" true
	t_contains "--gpus bad: message" "expected all, a count" "$(cat "$T_ERR")"
}

# The real default directories (/etc/cdi), written under a lock (the directory itself) and restored at exit.
t_default_dirs() {
	if [ "$(id -u)" != 0 ]; then
		skip "cdi default dirs" "needs root to write /etc/cdi"
		return
	fi
	local f=/etc/cdi/qimg-test-$$.json made=
	[ -d /etc/cdi ] || { mkdir /etc/cdi && made=1; }
	at_exit "rm -f $f; ${made:+rmdir /etc/cdi 2>/dev/null}"
	exec {lk}</etc/cdi && flock "$lk"
	printf '{"cdiVersion":"0.6.0","kind":"qimg-test.example/dev","devices":[{"name":"x","containerEdits":{"env":["DEFAULTDIR=1"]}}]}\n' >"$f"
	chmod 0644 "$f"
	MODE=root QIMG_CDI_SPEC_DIRS= t_ok "cdi default dirs" as_root env -u QIMG_CDI_SPEC_DIRS "$QIMG" run \
		--device qimg-test.example/dev=x "$IMG" sh -c 'echo "dd=$DEFAULTDIR"'
	t_contains "cdi default dirs" "dd=1" "$(cat "$T_OUT")"
	rm -f "$f"
	exec {lk}<&-
}

t_nvidia() {
	if ! command -v nvidia-smi >/dev/null || ! command -v nvidia-ctk >/dev/null; then
		skip "cdi real NVIDIA GPU" "no nvidia-smi/nvidia-ctk on this machine"
		return
	fi
	local spec=$TMPD/nvidia-cdi
	mkdir -p "$spec" && nvidia-ctk cdi generate --output="$spec/nvidia.yaml" >/dev/null 2>&1 &&
		QIMG_CDI_SPEC_DIRS=$spec t_ok "cdi real NVIDIA GPU" $Q run --device nvidia.com/gpu=all "$IMG" nvidia-smi
}

both t_setup
both t_device
both t_all
both t_fallback
both t_gids
both t_plain
both t_hooks
both t_escape
both t_errors
both t_gpus
t_default_dirs
both t_nvidia
