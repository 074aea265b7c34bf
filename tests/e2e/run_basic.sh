# qimg run, root and rootless: id mapping, chown, exit codes (docker's), the image config (Entrypoint/Cmd/Env/
# WorkingDir/User) with -e/--env-file/-w/-u/--entrypoint, capabilities, hostname and --net none, /etc files that
# are symlinks in the image, PID 1 and ps.

registry_start plain || { fail "run_basic: registry_start" "did not start"; exit 0; }
fixture_push busybox run/busybox:1 || { fail "run_basic: push busybox" "push failed"; exit 0; }
BB=$REG/run/busybox:1

# A two-layer image with a config of its own and hostile /etc entries (layer 2 wins over layer 1).
"$PY" - "$TMPD" <<'EOF'
import json, subprocess, sys
tmp = sys.argv[1]
applets = sorted(set(subprocess.run(["/bin/busybox", "--list"], stdout=subprocess.PIPE, text=True).stdout.split()) - {"busybox"})
def d(p, mode="0755", uid=0, gid=0): return {"path": p, "type": "dir", "mode": mode, "uid": uid, "gid": gid}
def f(p, c, mode="0644", uid=0, gid=0): return {"path": p, "content": c, "mode": mode, "uid": uid, "gid": gid}
def s(p, t): return {"path": p, "type": "symlink", "target": t}
base = [d("bin"), d("etc"), d("home"), d("home/app", uid=1000, gid=1000), d("root", "0700"), d("tmp", "1777"),
        {"path": "bin/busybox", "from": "/bin/busybox", "mode": "0755"}] + [s("bin/" + a, "busybox") for a in applets]
base += [f("etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"),
         f("etc/group", "root:x:0:\nusers:x:100:app\napp:x:1000:\n"), f("etc/qimg-fixture", "layer1\n")]
top = [f("etc/qimg-fixture", "layer2\n"), s("etc/hostname", "/etc/passwd"),
       s("etc/resolv.conf", "../run/systemd/resolve/stub-resolv.conf"), s("etc/hosts", "/proc/self/environ"),
       f("bin/noexec", "#!/bin/sh\necho no\n"), f("bin/script", "#!/bin/sh\necho script-ran \"$@\"\n", "0755")]
path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
cfg = {"config": {"Env": [path, "FOO=image", "SPACE=a b"], "Entrypoint": ["/bin/echo", "ep"], "Cmd": ["default"],
                  "WorkingDir": "/home/app"},
       "layers": [{"entries": base}, {"entries": top}]}
usr = {"config": {"Env": [path], "Cmd": ["id"], "User": "app:users"}, "layers": [{"entries": base}]}
json.dump(cfg, open(tmp + "/runcfg.json", "w"))
json.dump(usr, open(tmp + "/runuser.json", "w"))
EOF
fixture_custom runcfg "$TMPD/runcfg.json" run/cfg:1 || { fail "run_basic: push runcfg" "push failed"; exit 0; }
fixture_custom runuser "$TMPD/runuser.json" run/user:1 || { fail "run_basic: push runuser" "push failed"; exit 0; }
CFG=$REG/run/cfg:1
USR=$REG/run/user:1

t_setup() {
	local img
	for img in "$BB" "$CFG" "$USR"; do
		t_ok "pull ${img#"$REG"/}" $Q pull -q --tls-verify=false "$img"
	done
}

# rc NAME EXPECTED CMD...: the exit status of CMD.
rc() {
	local name=$1 want=$2
	shift 2
	_t_run "$@"
	t_eq "$name" "$want" "$T_RC"
}

t_ids() {
	t_ok "id is root" $Q run "$BB" id
	t_eq "id output" "uid=0(root) gid=0(root) groups=0(root)" "$(cat "$T_OUT")"
	t_ok "uid_map" $Q run "$BB" cat /proc/self/uid_map /proc/self/gid_map
	local want
	if [ "$MODE" = root ]; then
		want="0 0 4294967295 0 0 4294967295"
	else
		want="0 $TUSER_UID 1 1 $TUSER_SUBUID 65536 0 $TUSER_GID 1 1 $TUSER_SUBGID 65536"
	fi
	t_eq "uid_map/gid_map: the full range" "$want" "$(tr -s ' \n' ' ' <"$T_OUT" | sed 's/^ //; s/ $//')"
	t_ok "chown 1234:5678" $Q run "$BB" sh -c 'touch /f && chown 1234:5678 /f && stat -c %u:%g /f'
	t_eq "chown result" "1234:5678" "$(cat "$T_OUT")"
	t_ok "chown to the top of the range" $Q run "$BB" sh -c 'touch /f && chown 65535:65535 /f && stat -c %u:%g /f'
	t_eq "chown 65535 result" "65535:65535" "$(cat "$T_OUT")"
}

t_exit_codes() {
	rc "exit 0" 0 $Q run "$BB" true
	rc "exit 1" 1 $Q run "$BB" false
	rc "exit 42" 42 $Q run "$BB" sh -c 'exit 42'
	rc "killed by SIGKILL: 137" 137 $Q run "$BB" sh -c 'kill -9 $$'
	rc "killed by SIGTERM: 143" 143 $Q run "$BB" sh -c 'kill -TERM $$'
	rc "not found in PATH: 127" 127 $Q run "$BB" no-such-command
	t_contains "not found: docker's message" 'exec: "no-such-command": executable file not found in $PATH' "$(cat "$T_ERR")"
	rc "missing absolute path: 127" 127 $Q run "$BB" /no/such
	rc "not executable: 126" 126 $Q run --entrypoint /bin/noexec "$CFG"
	t_contains "not executable: says so" "Permission denied" "$(cat "$T_ERR")"
	rc "a directory: 126" 126 $Q run "$BB" /etc
	rc "unknown image: 125" 125 $Q run "$REG/no/such:1" true
	rc "bad flag: 125" 125 $Q run --net bogus "$BB" true
	rc "unknown option: 125" 125 $Q run --bogus "$BB" true
	rc "-t without a terminal: 125" 125 $Q run -t "$BB" true
	t_contains "-t without a terminal: docker's message" "the input device is not a TTY" "$(cat "$T_ERR")"
	rc "unknown user: 125" 125 $Q run -u nosuch "$BB" true
	t_contains "unknown user: says so" "unable to find user nosuch" "$(cat "$T_ERR")"
	rc "the command's own 125 passes through" 125 $Q run "$BB" sh -c 'exit 125'
	t_eq "the command's own 125: qimg says nothing" "" "$(cat "$T_ERR")"
}

t_config() {
	t_ok "entrypoint + cmd" $Q run "$CFG"
	t_eq "entrypoint + cmd output" "ep default" "$(cat "$T_OUT")"
	t_ok "args replace cmd" $Q run "$CFG" a b
	t_eq "args replace cmd output" "ep a b" "$(cat "$T_OUT")"
	t_ok "--entrypoint drops cmd" $Q run --entrypoint /bin/script "$CFG"
	t_eq "--entrypoint drops cmd output" "script-ran" "$(cat "$T_OUT")"
	t_ok "--entrypoint + args" $Q run --entrypoint /bin/script "$CFG" x y
	t_eq "--entrypoint + args output" "script-ran x y" "$(cat "$T_OUT")"
	t_ok "--entrypoint '' + args" $Q run --entrypoint "" "$CFG" sh -c 'echo plain'
	t_eq "--entrypoint '' output" "plain" "$(cat "$T_OUT")"
	rc "--entrypoint '' and no args: 125" 125 $Q run --entrypoint "" "$CFG"
	t_ok "image WorkingDir" $Q run --entrypoint pwd "$CFG"
	t_eq "image WorkingDir output" "/home/app" "$(cat "$T_OUT")"
	t_ok "-w creates the directory" $Q run -w /new/dir "$BB" pwd
	t_eq "-w output" "/new/dir" "$(cat "$T_OUT")"
	rc "-w relative: 125" 125 $Q run -w rel "$BB" pwd
	QIMG_T_HOSTVAR=hv t_ok "env: image, -e, host pass-through" $Q run -e FOO=cli -e QIMG_T_HOSTVAR \
		-e QIMG_T_UNSET "$CFG" sh -c 'echo "$FOO|$SPACE|$QIMG_T_HOSTVAR|${QIMG_T_UNSET-unset}|$HOME|$HOSTNAME"'
	t_eq "env output" "ep sh -c echo \"\$FOO|\$SPACE|\$QIMG_T_HOSTVAR|\${QIMG_T_UNSET-unset}|\$HOME|\$HOSTNAME\"" \
		"$(cat "$T_OUT")"
	QIMG_T_HOSTVAR=hv t_ok "env (no entrypoint)" $Q run -e FOO=cli -e QIMG_T_HOSTVAR -e QIMG_T_UNSET \
		--entrypoint "" "$CFG" sh -c 'echo "$FOO|$SPACE|$QIMG_T_HOSTVAR|${QIMG_T_UNSET-unset}|$HOME|$PATH"'
	t_eq "env values" "cli|a b|hv|unset|/root|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
		"$(cat "$T_OUT")"
	printf '# comment\nFOO=file\nBAR=from file\n\n' >"$TMPD/env.list"
	chmod 0644 "$TMPD/env.list"
	t_ok "--env-file, -e wins" $Q run --env-file "$TMPD/env.list" -e BAR=flag --entrypoint "" "$CFG" \
		sh -c 'echo "$FOO|$BAR"'
	t_eq "--env-file output" "file|flag" "$(cat "$T_OUT")"
	t_ok "image User" $Q run "$USR"
	t_eq "image User output" "uid=1000(app) gid=100(users) groups=100(users)" "$(cat "$T_OUT")"
	t_ok "-u name: passwd + member groups + HOME" $Q run -u app "$BB" sh -c 'id; echo $HOME'
	t_eq "-u name output" "uid=1000(app) gid=1000(app) groups=1000(app) /home/app" "$(tr '\n' ' ' <"$T_OUT" | sed 's/ $//')"
	t_ok "-u uid:gid not in passwd" $Q run -u 4242:4343 "$BB" sh -c 'echo $(id -u) $(id -g) $HOME'
	t_eq "-u uid:gid output" "4242 4343 /" "$(cat "$T_OUT")"
	t_ok "-u 0 overrides the image's User" $Q run -u 0 "$USR" id -u
	t_eq "-u 0 output" "0" "$(cat "$T_OUT")"
}

t_caps() {
	t_ok "default capabilities" $Q run "$BB" grep -E '^Cap(Eff|Bnd|Inh|Amb)' /proc/self/status
	t_eq "podman's default set" "CapInh: 0000000000000000 CapEff: 00000000800405fb CapBnd: 00000000800405fb CapAmb: 0000000000000000" \
		"$(tr -s '\t\n' '  ' <"$T_OUT" | sed 's/ $//')"
	t_ok "--cap-add NET_RAW --cap-drop CHOWN" $Q run --cap-add NET_RAW --cap-drop CHOWN "$BB" grep CapEff /proc/self/status
	t_eq "--cap-add/--cap-drop result" "CapEff: 00000000800425fa" "$(tr -s '\t' ' ' <"$T_OUT")"
	t_ok "--cap-drop ALL" $Q run --cap-drop ALL "$BB" grep CapBnd /proc/self/status
	t_eq "--cap-drop ALL result" "CapBnd: 0000000000000000" "$(tr -s '\t' ' ' <"$T_OUT")"
	t_fail "--cap-drop CHOWN: chown fails" $Q run --cap-drop CHOWN "$BB" sh -c 'touch /f && chown 5 /f'
	t_ok "non-root user: no effective caps" $Q run -u app "$BB" grep CapEff /proc/self/status
	t_eq "non-root user caps" "CapEff: 0000000000000000" "$(tr -s '\t' ' ' <"$T_OUT")"
	t_ok "non-root user + --cap-add: ambient" $Q run -u app --cap-add NET_BIND_SERVICE "$BB" grep CapAmb /proc/self/status
	t_eq "ambient caps" "CapAmb: 0000000000000400" "$(tr -s '\t' ' ' <"$T_OUT")"
	t_ok "no_new_privs off by default" $Q run "$BB" grep NoNewPrivs /proc/self/status
	t_eq "NoNewPrivs 0" "NoNewPrivs: 0" "$(tr -s '\t' ' ' <"$T_OUT")"
	t_ok "--security-opt no-new-privileges" $Q run --security-opt no-new-privileges "$BB" grep NoNewPrivs /proc/self/status
	t_eq "NoNewPrivs 1" "NoNewPrivs: 1" "$(tr -s '\t' ' ' <"$T_OUT")"
}

t_names_and_net() {
	t_ok "--hostname" $Q run --hostname box1 "$BB" sh -c 'hostname; cat /etc/hostname; grep -c box1 /etc/hosts; echo $HOSTNAME'
	t_eq "--hostname output" "box1 box1 1 box1" "$(tr '\n' ' ' <"$T_OUT" | sed 's/ $//')"
	t_ok "default hostname (host network): the host's" $Q run "$BB" hostname
	t_eq "default hostname output" "$(hostname)" "$(cat "$T_OUT")"
	t_ok "--net none: only lo, and it is up" $Q run --net none "$BB" sh -c 'ls /sys/class/net; cat /sys/class/net/lo/flags'
	t_eq "--net none output" "lo 0x9" "$(tr '\n' ' ' <"$T_OUT" | sed 's/ $//')"
	t_ok "--net none: ping lo works" $Q run --net none "$BB" sh -c 'grep -c : /proc/net/dev'
	t_eq "--net none: /proc/net/dev lists one interface" "1" "$(cat "$T_OUT")"
	t_ok "host network by default" $Q run "$BB" sh -c 'grep -c : /proc/net/dev'
	t_eq "host network: same interfaces as the host" "$(grep -c : /proc/net/dev)" "$(cat "$T_OUT")"
	t_ok "resolv.conf is the host's" $Q run "$BB" cat /etc/resolv.conf
	t_eq "resolv.conf content" "$(cat /etc/resolv.conf)" "$(cat "$T_OUT")"
}

t_etc_symlinks() {
	t_ok "top layer wins" $Q run --entrypoint cat "$CFG" /etc/qimg-fixture
	t_eq "top layer content" "layer2" "$(cat "$T_OUT")"
	t_ok "/etc/hostname symlink to /etc/passwd is replaced, not followed" $Q run --entrypoint "" --hostname hx "$CFG" sh -c 'cat /etc/hostname; grep -c ^root: /etc/passwd; test -L /etc/hostname || echo notlink'
	t_eq "/etc/hostname and /etc/passwd intact" "hx 1 notlink" "$(tr '\n' ' ' <"$T_OUT" | sed 's/ $//')"
	t_ok "dangling /etc/resolv.conf symlink replaced" $Q run --entrypoint cat "$CFG" /etc/resolv.conf
	t_eq "resolv.conf content" "$(cat /etc/resolv.conf)" "$(cat "$T_OUT")"
	t_ok "/etc/hosts symlink to /proc/self/environ replaced" $Q run --entrypoint "" "$CFG" sh -c 'grep -c localhost /etc/hosts'
}

t_pid1() {
	t_ok "ps shows only the container's processes" $Q run "$BB" sh -c 'ps -o pid= >/tmp/ps; cat /tmp/ps'
	t_eq "PID 1, sh and ps: nothing of the host" "1 2 3" "$(tr -s ' \n' '  ' <"$T_OUT" | sed 's/^ //; s/ $//')"
	t_ok "the command is PID 2, under PID 1" $Q run "$BB" sh -c 'echo $$ $PPID'
	t_eq "pids" "2 1" "$(cat "$T_OUT")"
	rc "kill 1 (TERM) inside ends the container, forwarded to the command" 143 $Q run "$BB" sh -c 'kill 1; sleep 5; echo survived'
	t_ok "the host's init is untouched" kill -0 1
	rc "kill -9 1 inside is ignored" 0 $Q run "$BB" sh -c 'kill -9 1; sleep 0.2; echo alive'
	t_eq "kill -9 1: still alive" "alive" "$(cat "$T_OUT")"
	t_ok "orphans are reaped by PID 1" $Q run "$BB" sh -c '(sleep 0.1 &) ; sleep 0.5; ps -o stat= | grep -c Z || true'
	t_eq "no zombies" "0" "$(cat "$T_OUT")"
	t_ok "PID 1's fds are out of reach" $Q run "$BB" sh -c 'readlink /proc/1/fd/* 2>/dev/null | wc -l; cat /proc/1/environ 2>/dev/null | wc -c'
	t_eq "nothing readable through /proc/1" "0 0" "$(tr '\n' ' ' <"$T_OUT" | sed 's/ $//')"
}

both t_setup
both t_ids
both t_exit_codes
both t_config
both t_caps
both t_names_and_net
both t_etc_symlinks
both t_pid1
