# qimg run's filesystem, root and rootless: the merged overlay equals the image (whiteouts, opaque dirs, layer
# order; kernel overlayfs and fuse-overlayfs), 60 layers (no page limit), writes vanish, -v binds (dir, file, ro,
# created targets, image symlinks that must not redirect), --read-only, --keep/--from and `qimg rm`.

registry_start plain || { fail "run_fs: registry_start" "did not start"; exit 0; }
fixture_push busybox run/busybox:1 || { fail "run_fs: push busybox" "push failed"; exit 0; }
fixture_push multilayer run/multi:1 || { fail "run_fs: push multilayer" "push failed"; exit 0; }
BB=$REG/run/busybox:1
ML=$REG/run/multi:1
VICTIM=$TMPD/victim # a host dir an image symlink points at: nothing may land there
mkdir -p "$VICTIM"

"$PY" - "$TMPD" "$VICTIM" <<'EOF'
import json, sys
tmp, victim = sys.argv[1], sys.argv[2]
def d(p, mode="0755"): return {"path": p, "type": "dir", "mode": mode}
def f(p, c, mode="0644"): return {"path": p, "content": c, "mode": mode}
def s(p, t): return {"path": p, "type": "symlink", "target": t}
base = [d("bin"), d("etc"), d("tmp", "1777"), {"path": "bin/busybox", "from": "/bin/busybox", "mode": "0755"}]
base += [s("bin/" + a, "busybox") for a in ["sh", "cat", "ls", "echo", "test", "touch", "mkdir", "wc", "readlink"]]
links = [s("data", "/qimg-escape"), s("data2", "../../../../../../../.." + victim), s("etc/dirlink", "/"),
         f("etc/marker", "image\n")]
layers = [{"entries": base + links}]
for i in range(1, 61):
    layers.append({"entries": [d("layers"), f("layers/%d" % i, "%d\n" % i), f("top", "%d\n" % i)]})
cfg = {"config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]}, "layers": layers}
json.dump(cfg, open(tmp + "/many.json", "w"))
EOF
fixture_custom runmany "$TMPD/many.json" run/many:1 || { fail "run_fs: push runmany" "push failed"; exit 0; }
MANY=$REG/run/many:1


t_setup() {
	local img
	for img in "$BB" "$ML" "$MANY"; do
		t_ok "pull ${img#"$REG"/}" $Q pull -q --tls-verify=false "$img"
	done
	# A -v source the container's root may write to (rootless: owned by the test user, who is root inside).
	local vol=$TMPD/vol-$MODE
	mkdir -p "$vol" && echo hostdata >"$vol/marker"
	[ "$MODE" = user ] && chown -R "$TUSER_UID:$TUSER_GID" "$vol"
}

vol() { echo "$TMPD/vol-$MODE"; }
run_relative_bind() { (cd "$TMPD" && $Q run -v "./vol-$MODE:/v" "$BB" cat /v/marker); }

# The merged tree of the multilayer image, listed inside the container, against multilayer.expected.
compare_multilayer() { # KIND
	local opt=(--overlay "$1")
	t_ok "multilayer tree ($1)" $Q run "${opt[@]}" "$ML" sh -c \
		'cd / && find . -xdev ! -path ./proc ! -path ./dev ! -path ./sys ! -path . -exec stat -c "%n|%F|%a|%u:%g|%s" {} +'
	"$PY" - "$QIMG_TESTS_DIR/fixtures/multilayer.expected" "$T_OUT" >"$TMPD/cmp.out" 2>&1 <<'EOF'
import sys
kinds = {"directory": "d", "regular file": "f", "regular empty file": "f", "symbolic link": "l", "fifo": "p"}
want = {}
for line in open(sys.argv[1], encoding="utf-8", errors="surrogateescape"):
    if line.startswith("#") or not line.strip():
        continue
    p, t, mode, owner, size = line.rstrip("\n").split("\t")[:5]
    if p in ("/dev", "/proc", "/sys"):
        continue
    want[p] = ("f" if t == "h" else t, "%o" % int(mode, 8), owner, size if t in "fh" else "-")
got = {}
for line in open(sys.argv[2], encoding="utf-8", errors="surrogateescape"):
    p, t, mode, owner, size = line.rstrip("\n").rsplit("|", 4)
    p = p[1:]
    if p in ("/etc/hosts", "/etc/hostname", "/etc/resolv.conf"):
        continue
    t = kinds.get(t, t)
    got[p] = (t, mode, owner, size if t == "f" else "-")
bad = 0
for p in sorted(set(want) | set(got)):
    w, g = want.get(p), got.get(p)
    if w is None:
        print("+", p, g); bad += 1
    elif g is None:
        print("-", p, w); bad += 1
    elif any(a != b and a != "*" for a, b in zip(w, g)):
        print("~", p, w, "!=", g); bad += 1
print("%d differences in %d entries" % (bad, len(want)))
sys.exit(1 if bad else 0)
EOF
	if [ $? -eq 0 ]; then pass "multilayer tree equals the image ($1)"; else
		fail "multilayer tree equals the image ($1)" "$(head -c 600 "$TMPD/cmp.out")"; fi
}

# Rootless fuse-overlayfs opens /dev/fuse itself inside the user namespace: Debian makes it 0666, some sandboxes
# 0600. The test opens it up for its own duration (restored at exit) rather than skip the rootless fuse path.
fuse_open_up() {
	local mode
	[ -c /dev/fuse ] && [ "$(id -u)" = 0 ] || return 0
	mode=$(stat -c %a /dev/fuse)
	[ "$mode" = 666 ] && return 0
	chmod 0666 /dev/fuse && at_exit "chmod $mode /dev/fuse"
}

t_overlay() {
	compare_multilayer kernel
	if [ -c /dev/fuse ] && { [ "$MODE" = root ] || [ "$(stat -c %a /dev/fuse)" = 666 ]; }; then
		compare_multilayer fuse
		t_ok "fuse-overlayfs is what is mounted" $Q run --overlay fuse "$BB" sh -c 'grep " / " /proc/mounts'
		t_contains "fuse mount on /" "fuse" "$(cat "$T_OUT")"
		t_ok "fuse: write, delete a lower file" $Q run --overlay fuse "$BB" sh -c \
			'echo new > /new && cat /new && rm /etc/os-release && test ! -e /etc/os-release'
		t_ok "fuse: chown to a mapped id" $Q run --overlay fuse "$BB" sh -c \
			'touch /f && chown 1234:5678 /f && stat -c %u:%g /f'
		t_eq "fuse: the owner sticks" "1234:5678" "$(tail -1 "$T_OUT")"
		t_ok "fuse: the writes are gone after the run" $Q run --overlay fuse "$BB" sh -c \
			'test ! -e /new && test ! -e /f && test -e /etc/os-release'
		local store
		store=$(store_dir)
		t_ok "QIMG_OVERLAY=fuse selects it" ${Q% *} env QIMG_OVERLAY=fuse "$QIMG" --store "$store" run "$BB" \
			sh -c 'grep " / " /proc/mounts'
		t_contains "QIMG_OVERLAY=fuse: fuse mount" "fuse" "$(cat "$T_OUT")"
	else
		skip "fuse-overlayfs[$MODE]" "no /dev/fuse the user can open"
	fi
	t_ok "kernel overlay needs no /dev/fuse" $Q run --overlay kernel "$BB" sh -c 'grep " / " /proc/mounts'
	t_contains "kernel overlay on /" "overlay" "$(cat "$T_OUT")"
}

t_layers() {
	t_ok "60 layers: top-most wins" $Q run "$MANY" cat /top
	t_eq "top is layer 60" "60" "$(cat "$T_OUT")"
	t_ok "60 layers: every layer visible" $Q run "$MANY" sh -c 'ls /layers | wc -l'
	t_eq "60 files from 60 layers" "60" "$(tr -d ' ' <"$T_OUT")"
}

t_writes_vanish() {
	t_ok "write in a run" $Q run "$BB" sh -c 'echo x > /persist && rm /etc/os-release && mkdir -p /var/new'
	t_ok "the next run sees the image again" $Q run "$BB" sh -c 'test ! -e /persist && test -f /etc/os-release && test ! -e /var/new'
	t_eq "store tmp/ is empty" "" "$(ls -A "$(store_dir)/tmp")"
	t_eq "store runs/ is empty" "" "$(ls -A "$(store_dir)/runs")"
	t_ok "the layer dir is untouched" grep -lx busybox "$(store_dir)"/layers/*/etc/qimg-fixture
	t_ok "the layer keeps the file deleted in the run" test -f "$(dirname "$(head -n 1 "$T_OUT")")/os-release"
}

t_binds() {
	local VOL
	VOL=$(vol)
	t_ok "-v dir" $Q run -v "$VOL:/mnt/vol" "$BB" sh -c 'cat /mnt/vol/marker && echo fromctr > /mnt/vol/written'
	t_eq "-v dir: host content" "hostdata" "$(cat "$T_OUT")"
	t_eq "-v dir: the write reached the host" "fromctr" "$(cat "$VOL/written" 2>&1)"
	local owner=0
	[ "$MODE" = user ] && owner=$TUSER_UID
	t_eq "-v dir: written as the container's root (the caller on the host)" "$owner" "$(stat -c %u "$VOL/written")"
	t_fail "-v :ro refuses writes" $Q run -v "$VOL:/mnt/ro:ro" "$BB" sh -c 'touch /mnt/ro/x'
	t_ok "-v :ro still reads" $Q run -v "$VOL:/mnt/ro:ro" "$BB" cat /mnt/ro/marker
	t_ok "-v file onto a missing nested target" $Q run -v "$VOL/marker:/a/b/c/file:ro" "$BB" cat /a/b/c/file
	t_eq "-v file content" "hostdata" "$(cat "$T_OUT")"
	t_ok "-v file over an image file" $Q run -v "$VOL/marker:/etc/os-release" "$BB" cat /etc/os-release
	t_eq "-v over an image file: host content" "hostdata" "$(cat "$T_OUT")"
	t_ok "-v relative source" run_relative_bind
	t_fail "-v missing source" $Q run -v "$TMPD/nonexistent:/x" "$BB" true
	t_eq "-v missing source: 125" 125 "$T_RC"
	t_fail "-v relative target" $Q run -v "$VOL:rel" "$BB" true
}

t_bind_symlinks() {
	local VOL
	VOL=$(vol)
	t_ok "-v onto an absolute image symlink stays in the root" $Q run -v "$VOL:/data" "$MANY" \
		sh -c 'cat /data/marker; cat /qimg-escape/marker'
	t_eq "bound where the symlink points inside the root" "hostdata hostdata" "$(tr '\n' ' ' <"$T_OUT" | sed 's/ $//')"
	t_ok "-v onto a ../ symlink aimed at a host dir stays in the root" $Q run -v "$VOL:/data2" "$MANY" \
		sh -c 'cat /data2/marker'
	t_eq "bound inside the root" "hostdata" "$(cat "$T_OUT")"
	t_eq "the host dir the symlink names is untouched" "" "$(ls -A "$VICTIM")"
	t_ok "-v through a symlinked parent (/etc/dirlink -> /)" $Q run -v "$VOL:/etc/dirlink/tmp/inroot" "$MANY" \
		sh -c 'cat /tmp/inroot/marker'
	t_eq "symlinked parent resolved in the root" "hostdata" "$(cat "$T_OUT")"
}

t_read_only() {
	local VOL
	VOL=$(vol)
	t_fail "--read-only: the root refuses writes" $Q run --read-only "$BB" touch /x
	t_contains "--read-only: EROFS" "Read-only file system" "$(cat "$T_ERR")"
	t_fail "--read-only: /tmp is part of the root" $Q run --read-only "$BB" touch /tmp/x
	t_ok "--read-only: /dev/shm and -v binds stay writable" $Q run --read-only -v "$VOL:/mnt/vol" "$BB" \
		sh -c 'echo a > /dev/shm/a && echo b > /mnt/vol/ro-ok'
	t_ok "--read-only: /etc/hosts provided" $Q run --read-only --hostname roh "$BB" grep -c roh /etc/hosts
	t_ok "--read-only with 60 layers and missing mount points" $Q run --read-only "$MANY" cat /top
}

t_keep() {
	local s
	s=$(store_dir)
	t_ok "--keep NAME: first run" $Q run --keep k1 "$BB" sh -c 'echo one > /kept; touch /owned; chown 1234:99 /owned'
	t_ok "--keep NAME: the dir exists" test -d "$s/runs/k1/upper"
	t_ok "--keep NAME: second run continues" $Q run --keep k1 "$BB" sh -c 'cat /kept; echo two >> /kept; stat -c %u:%g /owned'
	t_eq "--keep: sees the first run's changes" "one 1234:99" "$(tr '\n' ' ' <"$T_OUT" | sed 's/ $//')"
	t_ok "--from NAME" $Q run --from k1 "$BB" sh -c 'cat /kept; echo three >> /kept'
	t_eq "--from: sees the kept changes" "one two" "$(tr '\n' ' ' <"$T_OUT" | sed 's/ $//')"
	t_ok "--from writes do not reach the kept container" $Q run --keep k1 "$BB" cat /kept
	t_eq "kept content unchanged" "one two" "$(tr '\n' ' ' <"$T_OUT" | sed 's/ $//')"
	t_ok "a plain run does not see it" $Q run "$BB" test ! -e /kept
	t_fail "--keep NAME with another image" $Q run --keep k1 "$MANY" true
	t_contains "another image: says which" "was made from image" "$(cat "$T_ERR")"
	# A run that holds k1 until told: it says when it started, then waits for the release (no sleep-based timing).
	local sync=$TMPD/sync-$MODE i
	rm -rf "$sync" && mkdir -p "$sync" && chown "$(mode_ids)" "$sync"
	$Q run --keep k1 -v "$sync:/sync" "$BB" sh -c 'touch /sync/started; while [ ! -e /sync/release ]; do sleep 0.05; done' \
		>/dev/null 2>&1 &
	local bg=$!
	for ((i = 0; i < 600; i++)); do [ -e "$sync/started" ] && break; sleep 0.05; done
	t_ok "the holding run started" test -e "$sync/started"
	t_fail "--keep NAME while in use" $Q run --keep k1 "$BB" true
	t_contains "in use: says so" "in use" "$(cat "$T_ERR")"
	t_fail "rm while in use" $Q rm k1
	t_contains "rm while in use: says so" "in use" "$(cat "$T_ERR")"
	touch "$sync/release"
	wait $bg
	t_ok "rm NAME" $Q rm k1
	t_eq "runs/ is empty again" "" "$(ls -A "$s/runs")"
	t_fail "rm NAME again" $Q rm k1
	t_contains "rm: no such container" "no such container: k1" "$(cat "$T_ERR")"
	t_fail "--from a missing container" $Q run --from nosuch "$BB" true
	t_fail "invalid name" $Q run --keep ../x "$BB" true
}

both t_setup
fuse_open_up
both t_overlay
both t_layers
both t_writes_vanish
both t_binds
both t_bind_symlinks
both t_read_only
both t_keep
