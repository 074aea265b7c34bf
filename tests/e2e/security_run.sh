# Runner escapes (issue 6; peers-asks-cves.md §3 "Runtime"), root and rootless. Not repeated here: what
# run_basic.sh / run_fs.sh already prove (PID 1's fds and environ unreadable, podman's capability set, /etc files
# that are symlinks to container paths, -v onto image symlinks, writes vanishing). Here: host paths outside the
# mounts stay invisible; the layer dirs are unchanged byte for byte whatever a run writes; only fds 0 1 2 reach the
# command and nothing visible points into the store (also through -w /proc/self/fd/N, CVE-2024-21626); host
# processes cannot be signalled or traced; the qimg binary cannot be reached through /proc (CVE-2019-5736);
# /etc, /etc/resolv.conf, /dev, /proc in the image as symlinks to host paths redirect nothing; /dev holds the
# minimal set; no CAP_SYS_ADMIN/CAP_MKNOD; no controlling terminal without -t (CVE-2017-5226); setuid files stay owned by mapped ids (CVE-2023-0386) and out of
# other users' reach; a tampered run spec cannot turn a layer id into a path.

registry_start plain || { fail "security_run: registry_start" "did not start"; exit 0; }

VICTIM=$TMPD/victim # host paths that image symlinks name: nothing may appear or change there
HOSTCANARY=$TMPD/host-canary-$RANDOM
mkdir -p "$VICTIM/dir" && echo victim >"$VICTIM/file" && echo host-secret >"$HOSTCANARY"
chmod 0755 "$VICTIM" "$VICTIM/dir" && chmod 0644 "$VICTIM/file" "$HOSTCANARY"
victim_state() { find "$VICTIM" -printf '%P %y %m %s %T@\n' | sort | sha256sum; }
VICTIM_STATE=$(victim_state)

"$PY" - "$TMPD" "$VICTIM" <<'EOF_PY'
import json, subprocess, sys
tmp, victim = sys.argv[1], sys.argv[2]
applets = sorted(set(subprocess.run(["/bin/busybox", "--list"], stdout=subprocess.PIPE, text=True).stdout.split()) - {"busybox"})
def d(p, mode="0755"): return {"path": p, "type": "dir", "mode": mode}
def f(p, c, mode="0644", uid=0, gid=0): return {"path": p, "content": c, "mode": mode, "uid": uid, "gid": gid}
def s(p, t): return {"path": p, "type": "symlink", "target": t}
base = [d("bin"), d("tmp", "1777"), d("mnt"), {"path": "bin/busybox", "from": "/bin/busybox", "mode": "0755"}]
base += [s("bin/" + a, "busybox") for a in applets]
etc = [d("etc"), f("etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/:/bin/sh\n"),
       f("etc/group", "root:x:0:\napp:x:1000:\n")]
cfg = lambda layers: {"config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]}, "layers": layers}
images = {
    # resolv.conf and a -v target that are absolute symlinks to host files; a setuid-root file
    "secrun": cfg([{"entries": base + etc + [
        s("etc/resolv.conf", victim + "/file"), s("etc/vtarget", victim + "/file"), s("etc/vdir", victim + "/dir"),
        f("bin/suid", "#!/bin/sh\necho suid\n", "4755"), f("bin/sgid", "#!/bin/sh\n", "2755", 0, 0)]}]),
    # the directories the runner mounts on, as symlinks to host dirs
    "symetc": cfg([{"entries": base + [s("etc", victim + "/dir")]}]),
    "symdev": cfg([{"entries": base + etc + [s("dev", victim + "/dir")]}]),
    "symproc": cfg([{"entries": base + etc + [s("proc", victim + "/dir")]}]),
    "symsys": cfg([{"entries": base + etc + [s("sys", "../../../../../../.." + victim + "/dir")]}]),
}
for name, spec in images.items():
    json.dump(spec, open("%s/%s.json" % (tmp, name), "w"))
EOF_PY
for img in secrun symetc symdev symproc symsys; do
	fixture_custom "$img" "$TMPD/$img.json" "sec/$img:1" >"$TMPD/$img.push.log" 2>&1 ||
		{ fail "security_run: push $img" "$(tail -n 3 "$TMPD/$img.push.log")"; exit 0; }
done
IMG=$REG/sec/secrun:1

layer_dir() { echo "$(store_dir)/layers/$(awk '$1 == "layer" { print $2; exit }' "$(store_dir)/specs/${SEC_DIGEST#sha256:}")"; }
# Everything about a layer tree that a write could change: names, types, modes, owners, sizes, times, content.
tree_state() {
	(cd "$1" && find . -printf '%p %y %m %U:%G %s %T@ %l\n' | sort && find . -type f -exec sha256sum {} + | sort) |
		sha256sum | cut -c1-64
}

t_setup() {
	local img
	for img in secrun symetc symdev symproc symsys; do
		t_ok "pull sec/$img" $Q pull -q --tls-verify=false "$REG/sec/$img:1"
	done
	SEC_DIGEST=$($Q pull -q --tls-verify=false "$IMG" 2>/dev/null)
}

t_host_paths() {
	t_ok "host /tmp canary: invisible inside" $Q run "$IMG" sh -c "test ! -e '$HOSTCANARY' && test ! -e '$TMPD' && ls -A /tmp"
	t_eq "the container's /tmp is the image's (empty)" "" "$(cat "$T_OUT")"
	t_ok "only the container's processes in /proc" $Q run "$IMG" sh -c 'cd /proc && echo [0-9]*'
	t_eq "PID 1 and the command" "1 2" "$(cat "$T_OUT")"
	t_ok "/proc/1/root and /proc/1/cwd are out of reach" $Q run "$IMG" sh -c \
		'ls /proc/1/root/ 2>/dev/null | wc -l; readlink /proc/1/cwd 2>/dev/null | wc -l'
	t_eq "nothing through PID 1's root or cwd" "0 0" "$(tr '\n' ' ' <"$T_OUT" | sed 's/ $//')"
	t_ok "the store is not mounted anywhere inside" $Q run "$IMG" sh -c "grep -c '$(store_dir)' /proc/self/mountinfo || true"
	t_eq "no mountinfo line names the store" 0 "$(cat "$T_OUT")"
	# "/.." from the command's first instruction: the old root must already be detached when the command starts
	# (while it is stacked on the new root, ".." at / steps onto it: the host). The command is busybox itself,
	# exec'd directly, as early as a command can look; 30 runs, since it was a race.
	local i seen=0
	for i in $(seq 30); do
		$Q run --entrypoint /bin/busybox "$IMG" cat "/../$HOSTCANARY" >/dev/null 2>&1 && seen=$((seen + 1))
	done
	t_eq "the host's / is never reachable through /.. (30 runs)" 0 "$seen"
}

t_layer_dirs() {
	local l before
	l=$(layer_dir)
	before=$(tree_state "$l")
	t_ok "write, chmod, chown, truncate, rm, xattrs on image files" $Q run "$IMG" sh -c '
		echo owned >> /etc/passwd; chmod 0777 /bin/busybox; chown 1234:1234 /etc/group; : > /bin/suid
		rm -f /bin/sgid; mkdir /etc/new; ln /etc/group /etc/hard; touch -d 2001-01-01 /bin
		setfattr -n user.overlay.opaque -v y /etc 2>/dev/null; setfattr -n user.x -v y /etc/passwd 2>/dev/null
		setfattr -n trusted.overlay.redirect -v /x /etc 2>/dev/null; true'
	t_eq "the layer dir is unchanged byte for byte" "$before" "$(tree_state "$l")"
	t_ok "a second run sees the image as it was" $Q run "$IMG" sh -c \
		'! grep -q owned /etc/passwd && test -e /bin/sgid && test ! -e /etc/new && stat -c %a /bin/busybox'
	t_eq "busybox mode from the image" 755 "$(cat "$T_OUT")"
	t_ok "the lower dirs named in mountinfo do not exist inside" $Q run "$IMG" sh -c \
		'for d in $(sed -n "s/.*lowerdir[+]*=\([^,]*\).*/\1/p" /proc/self/mountinfo | tr : " "); do
			test -e "$d" && echo "reachable: $d"; test -e "/$d" && echo "reachable: /$d"; done; true'
	t_eq "no lower dir reachable by its path" "" "$(cat "$T_OUT")"
}

t_fds() {
	# What a program exec'd inside inherits (a background sleep's fds: the shell's own, such as busybox's saved
	# redirections, are close-on-exec).
	t_ok "a program started inside holds only fds 0 1 2" $Q run "$IMG" sh -c \
		'sleep 5 & p=$!; until tr "\0" " " </proc/$p/cmdline | grep -q "^sleep 5"; do sleep 0.05; done
		ls /proc/$p/fd >/tmp/fds; kill $p; echo $(cat /tmp/fds)'
	t_eq "fds of the command" "0 1 2" "$(cat "$T_OUT")"
	t_ok "no fd, cwd or root of any visible process points into the store or the host" $Q run "$IMG" sh -c \
		"readlink /proc/[0-9]*/fd/* /proc/[0-9]*/cwd /proc/[0-9]*/root 2>/dev/null | grep -cE '$(store_dir)|$TMPD|^/work' || true"
	t_eq "no such link" 0 "$(cat "$T_OUT")"
	local n bad=
	for n in 3 4 5 6 7 8 9 10; do # CVE-2024-21626: a leaked dir fd as the working dir
		_t_run $Q run -w "/proc/self/fd/$n" "$IMG" sh -c 'ls -A .. | wc -l; pwd -P'
		[ "$T_RC" -eq 0 ] && grep -qE "$TMPD|/work|$(store_dir)|^/$" "$T_OUT" && bad="$bad $n:$(tr '\n' ' ' <"$T_OUT")"
		_t_crashed && bad="$bad $n:crash"
	done
	t_eq "-w /proc/self/fd/N reaches nothing of the host" "" "$bad"
}

t_signals() {
	local sp host_sleep i
	if [ "$MODE" = root ]; then # a host process of the same user as the container's root
		sleep 300 &
		sp=$! host_sleep=$!
	else
		local secs=300.$RANDOM$RANDOM # a command line of its own, to find the sleep below env/timeout/setpriv
		as_user sleep "$secs" &
		sp=$!
		for ((i = 0; i < 100; i++)); do
			host_sleep=$(pgrep -u "$TUSER_UID" -f "^sleep $secs\$") && break
			sleep 0.05
		done
	fi
	[ -n "$host_sleep" ] || { fail "signals: start a host process" "no sleep found"; return; }
	t_fail "kill -9 of a host pid from inside fails" $Q run "$IMG" kill -9 "$host_sleep"
	t_ok "kill -9 -1 inside kills only the container" sh -c "$Q run '$IMG' sh -c 'kill -9 -1; sleep 1'; true"
	t_ok "the host process survived both" kill -0 "$host_sleep"
	t_fail "PID 1's memory cannot be read (ptrace access)" $Q run "$IMG" sh -c 'dd if=/proc/1/mem bs=1 count=1 skip=4096 of=/dev/null'
	t_fail "PID 1's /proc/1/stack and syscall are refused" $Q run "$IMG" sh -c 'cat /proc/1/syscall'
	kill "$host_sleep" "$sp" 2>/dev/null
	wait "$sp" 2>/dev/null
}

t_self_exe() {
	local bin sum
	bin=$(readlink -f "$QIMG")
	sum=$(sha256sum "$bin" "$bin-pull" 2>/dev/null)
	t_ok "/proc/1/exe: no readlink, open, write or exec" $Q run "$IMG" sh -c '
		readlink /proc/1/exe && echo readlink-ok; cat /proc/1/exe >/dev/null 2>&1 && echo read-ok
		(echo x >> /proc/1/exe) 2>/dev/null && echo write-ok; (exec 3</proc/1/exe) 2>/dev/null && echo open-ok
		/proc/1/exe --version 2>/dev/null && echo exec-ok; true'
	t_eq "/proc/1/exe refused every way" "" "$(cat "$T_OUT")"
	t_fail "--entrypoint /proc/self/exe does not run the host binary" $Q run --entrypoint /proc/self/exe "$IMG" --version
	t_eq "--entrypoint /proc/self/exe: 126" 126 "$T_RC"
	t_contains "--entrypoint /proc/self/exe: refused by name" "refusing to run qimg's own binary" "$(cat "$T_ERR")"
	printf '#!/proc/self/exe\n' >"$TMPD/selfexe" && chmod 0755 "$TMPD/selfexe"
	t_fail "a #!/proc/self/exe script from a -v mount does not run the host binary" \
		$Q run -v "$TMPD/selfexe:/bin/selfexe:ro" "$IMG" /bin/selfexe
	t_eq "#!/proc/self/exe: 126" 126 "$T_RC"
	printf '#!/bin/selfexe\n' >"$TMPD/selfexe2" && chmod 0755 "$TMPD/selfexe2"
	t_fail "a script whose #! names such a script does not run the host binary" \
		$Q run -v "$TMPD/selfexe:/bin/selfexe:ro" -v "$TMPD/selfexe2:/bin/selfexe2:ro" "$IMG" selfexe2
	t_eq "nested #!: 126" 126 "$T_RC"
	ln -sf /proc/self/exe "$TMPD/selflink"
	t_fail "a symlink to /proc/self/exe found through PATH does not run the host binary" \
		$Q run -v "$TMPD:/hostdir:ro" -e PATH=/hostdir:/bin "$IMG" selflink --version
	t_eq "symlink to /proc/self/exe: 126" 126 "$T_RC"
	t_eq "the qimg binaries are unchanged" "$sum" "$(sha256sum "$bin" "$bin-pull" 2>/dev/null)"
}

bind_inside_or_refused() { # NAME BIND CMD EXPECTED-OUTPUT
	_t_run $Q run -v "$2" "$IMG" sh -c "$3"
	if [ "$T_RC" -eq 125 ] && grep -q "symlink" "$T_ERR"; then
		pass "$1: refused"
	elif [ "$T_RC" -eq 0 ]; then
		t_eq "$1: bound inside the root" "$4" "$(tr '\n' ' ' <"$T_OUT" | sed 's/ $//')"
	else
		fail "$1: refused or bound inside" "$(_t_why "exit $T_RC")"
	fi
}

t_symlinked_mounts() {
	local img
	t_ok "/etc/resolv.conf -> host file: the host's resolv.conf is mounted inside" $Q run "$IMG" cat /etc/resolv.conf
	t_eq "resolv.conf content" "$(cat /etc/resolv.conf)" "$(cat "$T_OUT")"
	# A -v target that is a symlink to an absolute host path: resolved inside the root, where that path does not
	# exist, so the run is refused (it would otherwise be bound inside the root, never onto the host).
	bind_inside_or_refused "-v file onto /etc/vtarget (-> host file)" "$HOSTCANARY:/etc/vtarget:ro" \
		"cat /etc/vtarget $VICTIM/file" "host-secret host-secret"
	bind_inside_or_refused "-v dir onto /etc/vdir (-> host dir)" "$TMPD/vol-$MODE:/etc/vdir" \
		"cat /etc/vdir/marker $VICTIM/dir/marker" "vol vol"
	# /etc, /dev, /proc, /sys of the image as symlinks to host dirs: refused, or followed inside the root only.
	for img in symetc symdev symproc symsys; do
		_t_run $Q run "$REG/sec/$img:1" sh -c 'echo x > /etc/probe && cat /etc/probe'
		if [ "$T_RC" -eq 125 ] && grep -q "symlink" "$T_ERR"; then
			pass "$img: a symlinked /${img#sym} in the image: refused"
		elif [ "$T_RC" -eq 0 ] && [ "$(cat "$T_OUT")" = x ]; then
			pass "$img: a symlinked /${img#sym} in the image: resolved inside the root"
		else
			fail "$img: a symlinked /${img#sym} in the image: refused or resolved inside" "$(_t_why "exit $T_RC")"
		fi
	done
	t_eq "the host paths the image links to are unchanged" "$VICTIM_STATE" "$(victim_state)"
	t_eq "no mount left on the host under $TMPD" "" "$(grep -F " $TMPD" /proc/self/mountinfo)"
}

t_dev_caps() {
	t_ok "/dev listing" $Q run "$IMG" sh -c 'cd /dev && ls -A | tr "\n" " "'
	t_eq "/dev: the minimal set" "core fd full mqueue null ptmx pts random shm stderr stdin stdout tty urandom zero " \
		"$(cat "$T_OUT")"
	t_ok "no block device, no char device beyond the six and the pty" $Q run "$IMG" sh -c \
		'find /dev -xdev \( -type b -o -type c \) | sort | tr "\n" " "'
	t_eq "devices in /dev" "/dev/full /dev/null /dev/random /dev/tty /dev/urandom /dev/zero " "$(cat "$T_OUT")"
	t_fail "mknod of a block device fails" $Q run "$IMG" mknod /tmp/sda b 8 0
	t_ok "CapBnd" $Q run "$IMG" sh -c 'grep CapBnd /proc/self/status | cut -f2'
	local bnd
	bnd=$(cat "$T_OUT")
	t_eq "no CAP_SYS_ADMIN (21) in the bounding set" 0 $(((0x$bnd >> 21) & 1))
	t_eq "no CAP_SYS_PTRACE (19), CAP_SYS_MODULE (16), CAP_SYS_RAWIO (17), CAP_MKNOD (27)" 0 \
		$(((0x$bnd >> 19 & 1) | (0x$bnd >> 16 & 1) | (0x$bnd >> 17 & 1) | (0x$bnd >> 27 & 1)))
	t_fail "mount fails" $Q run "$IMG" mount -t tmpfs none /mnt
	t_fail "/proc/sys is read-only" $Q run "$IMG" sh -c 'cat /proc/sys/kernel/core_pattern > /proc/sys/kernel/core_pattern'
	t_fail "/proc/sysrq-trigger is not there to write" $Q run "$IMG" sh -c 'test -w /proc/sysrq-trigger'
	t_fail "/sys is read-only" $Q run "$IMG" sh -c 'touch /sys/kernel/qimg-probe'
}

# CVE-2017-5226: a command started from a terminal must not share it (TIOCSTI could type into the host's shell).
t_tty() {
	t_ok "from a terminal, without -t" ${Q%% *} script -qec "$QIMG run $IMG sh -c 'cut -d\" \" -f7 /proc/self/stat; (: >/dev/tty) 2>/dev/null && echo tty-open; true'" /dev/null
	t_eq "no controlling terminal (tty_nr 0), /dev/tty cannot be opened" 0 "$(tr -d '\r' <"$T_OUT")"
}

t_setuid() {
	local s l owner
	s=$(store_dir) l=$(layer_dir)
	owner=0
	[ "$MODE" = user ] && owner=$TUSER_UID
	t_eq "setuid file in the layer: owned by the container root's host id, setuid kept" "$owner 4755" \
		"$(stat -c '%u %a' "$l/bin/suid")"
	t_ok "--keep: copy-up of the setuid file" $Q run --keep suidk "$IMG" sh -c \
		'chmod 4755 /bin/suid && echo >> /bin/suid && chown 0:0 /bin/suid && chmod 4755 /bin/suid && stat -c "%u %a" /bin/suid'
	t_eq "inside: root-owned setuid" "0 4755" "$(cat "$T_OUT")"
	t_eq "copied up on the host: owned by the mapped id, never host root unless qimg runs as root" "$owner" \
		"$(stat -c %u "$s/runs/suidk/upper/bin/suid")"
	t_ok "qimg rm" $Q rm suidk
	if [ "$MODE" = root ] && [ -n "$TUSER" ]; then # other host users cannot reach the root store's setuid files
		t_fail "another user cannot stat a file under layers/" as_user stat "$l/bin/suid"
		t_eq "the root store is 0700" 700 "$(stat -c %a "$s")"
	fi
}

# A run spec edited behind qimg's back (a shared or tampered store): a layer id must not become a path.
t_spec_tamper() {
	local spec orig
	spec=$(store_dir)/specs/${SEC_DIGEST#sha256:}
	orig=$(cat "$spec")
	printf '%s\n' "$orig" | sed '0,/^layer /s#^layer .*#layer ../../../../../../etc#' >"$spec" # in place: owner kept
	t_fail "a spec whose layer id is a path is refused" $Q run "$IMG" true
	t_contains "says the spec is corrupt" "corrupt run spec" "$(cat "$T_ERR")"
	printf '%s\n' "$orig" >"$spec"
	t_ok "the restored spec runs again" $Q run "$IMG" true
}

# A root store in a world-traversable place, as /var/lib/qimg is: its dirs alone must keep users out.
t_public_root_store() {
	[ -n "$TUSER" ] || { skip "public root store" "not root: no second user"; return; }
	local pub=$TMPD/pub l
	mkdir -p "$pub" && chmod 0755 "$pub"
	QIMG_STORE=$pub/store t_ok "root pulls into $pub/store" as_root "$QIMG" pull -q --tls-verify=false "$IMG"
	l=$(ls -d "$pub"/store/layers/*/ | head -n 1)
	t_eq "store, layers/ and blobs/ are 0700" "700 700 700" \
		"$(stat -c %a "$pub/store" "$pub/store/layers" "$pub/store/blobs" | tr '\n' ' ' | sed 's/ $//')"
	t_fail "a user cannot execute the image's setuid-root file" as_user "${l}bin/suid"
	t_fail "a user cannot list layers/" as_user ls "$pub/store/layers"
}

mkdir -p "$TMPD/vol-root" "$TMPD/vol-user" && echo vol | tee "$TMPD/vol-root/marker" >"$TMPD/vol-user/marker"
[ -n "$TUSER" ] && chown "$TUSER_UID:$TUSER_GID" "$TMPD/vol-user"
both t_setup
both t_host_paths
both t_layer_dirs
both t_fds
both t_signals
both t_self_exe
both t_symlinked_mounts
both t_dev_caps
both t_tty
both t_setuid
both t_spec_tamper
t_public_root_store
