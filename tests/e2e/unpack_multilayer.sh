# The unpacker's output on the multilayer fixture (whiteouts, opaque dir, type changes, hardlinks, modes, owners,
# names): layer dirs stacked by kernel overlayfs (userxattr) and by fuse-overlayfs, and `qimg export`, all equal
# tests/fixtures/multilayer.expected; root and rootless stores; what a layer dir and layers/<id>.json hold.

registry_start plain || { fail "unpack_multilayer: registry_start plain" "did not start"; exit 0; }
fixture_push multilayer test/ml:latest || { fail "unpack_multilayer: push multilayer" "push failed"; exit 0; }
fixture_push zstd test/zstd:latest || { fail "unpack_multilayer: push zstd" "push failed"; exit 0; }
fixture_push schema2 test/s2:latest || { fail "unpack_multilayer: push schema2" "push failed"; exit 0; }
EXPECTED=$QIMG_TESTS_DIR/fixtures/multilayer.expected
IMG=$REG/test/ml:latest

work_dir() { if [ "$MODE" = root ]; then echo "$TMPD"; else echo "$USER_HOME"; fi; } # writable by the caller
idmap_opts() { [ "$MODE" = user ] && [ -n "$TUSER" ] && echo "--uidmap $TUSER_UID:$TUSER_SUBUID --gidmap $TUSER_GID:$TUSER_SUBGID"; }
# A second store the caller may create.
fresh_store() { echo "$(work_dir)/store-$1"; }
# The spec's layer dirs, top first, ":"-joined (an overlay lowerdir string).
lowerdirs() { # DIGEST
	local s
	s=$(store_dir)
	awk -v s="$s" '$1 == "layer" { print s "/layers/" $2 }' "$s/specs/${1#sha256:}" | tac | paste -sd:
}

t_layers() {
	local s d id n_wh
	t_ok "pull" $Q pull --tls-verify=false "$IMG" || return
	d=$(cat "$T_OUT")
	s=$(store_dir)
	t_eq "three layer dirs" 3 "$(awk '$1 == "layer"' "$s/specs/${d#sha256:}" | wc -l)"
	t_ok "nothing left in tmp/" test -z "$(ls -A "$s/tmp")"
	n_wh=$(find "$s/layers" -name '.wh.*' | wc -l)
	t_eq "no .wh.* files in layer dirs (converted)" 0 "$n_wh"
	t_eq "whiteouts are 0:0 char devices" 5 "$(find "$s/layers" -type c | xargs -r stat -c '%t:%T' | grep -c '^0:0$')"
	for id in $(awk '$1 == "layer" { print $2 }' "$s/specs/${d#sha256:}"); do
		t_ok "layer ${id:0:12}: json has diffID, sizes, files, time" \
			grep -q "\"diffID\":\"sha256:$id\".*\"compressedSize\":[0-9]*,\"size\":[0-9]*,\"files\":[0-9]*,\"unpackSeconds\":" \
			"$s/layers/$id.json"
	done
	t_eq "opaque dir marked with user.overlay.opaque=y" y "$(/usr/bin/python3 -c '
import os, sys
for root, dirs, files in os.walk(sys.argv[1]):
    for d in dirs:
        try:
            print(os.getxattr(os.path.join(root, d), "user.overlay.opaque", follow_symlinks=False).decode())
        except OSError:
            pass' "$s/layers")"
	if [ "$MODE" = user ] && [ -n "$TUSER" ]; then
		t_eq "rootless: uid 100 in the image is subuid+99 on disk" "$((TUSER_SUBUID + 99))" \
			"$(find "$s/layers" -name u100 -printf '%U\n' | head -1)"
	fi
}

t_kernel_overlay() {
	local d m
	t_ok "pull (again)" $Q pull --tls-verify=false "$IMG" || return
	d=$(cat "$T_OUT")
	m=$TMPD/kmnt-$MODE
	mkdir -p "$m"
	if ! mount -t overlay -o "userxattr,lowerdir=$(lowerdirs "$d")" "qimg-test" "$m" 2>"$TMPD/mount.err"; then
		fail "kernel overlay: mount" "$(cat "$TMPD/mount.err")"
		return
	fi
	# shellcheck disable=SC2046
	t_ok "kernel overlay (userxattr) equals multilayer.expected" tree_compare "$EXPECTED" "$m" $(idmap_opts)
	umount "$m"
}

t_fuse_overlay() {
	local d m
	if ! command -v fuse-overlayfs >/dev/null; then
		skip "fuse-overlayfs equals multilayer.expected" "fuse-overlayfs not installed"
		return
	fi
	t_ok "pull (again)" $Q pull --tls-verify=false "$IMG" || return
	d=$(cat "$T_OUT")
	m=$TMPD/fmnt-$MODE
	mkdir -p "$m"
	if ! fuse-overlayfs -o "lowerdir=$(lowerdirs "$d")" "$m" 2>"$TMPD/fuse.err"; then
		fail "fuse-overlayfs: mount" "$(cat "$TMPD/fuse.err")"
		return
	fi
	# shellcheck disable=SC2046
	t_ok "fuse-overlayfs equals multilayer.expected" tree_compare "$EXPECTED" "$m" $(idmap_opts)
	fusermount3 -u "$m" 2>/dev/null || umount "$m"
}

t_export() {
	local w out own uid gid
	w=$(work_dir)
	out=$w/export own=$w/export-own
	t_ok "pull (again)" $Q pull --tls-verify=false "$IMG" || return
	t_ok "export" $Q export "$IMG" "$out" || return
	# shellcheck disable=SC2046
	t_ok "export equals multilayer.expected" tree_compare "$EXPECTED" "$out" $(idmap_opts)
	t_ok "export leaves no overlay xattrs" test -z "$(/usr/bin/python3 -c '
import os, sys
for root, dirs, files in os.walk(sys.argv[1]):
    for n in dirs + files:
        p = os.path.join(root, n)
        for x in os.listxattr(p, follow_symlinks=False):
            if "overlay" in x:
                print(p, x)' "$out")"
	t_ok "export --own into an existing empty dir" mkdir -p "$own"
	if [ "$MODE" = user ] && [ -n "$TUSER" ]; then chown "$TUSER_UID:$TUSER_GID" "$own"; fi
	t_ok "export --own" $Q export --own "$IMG" "$own" || return
	# Every owner is the caller's; the rest as expected.
	uid=$(if [ "$MODE" = user ] && [ -n "$TUSER" ]; then echo "$TUSER_UID:$TUSER_GID"; else echo "0:0"; fi)
	awk -F'\t' -v OFS='\t' '/^#/ { next } { $4 = "*"; print }' "$EXPECTED" >"$TMPD/expected-own"
	t_ok "export --own equals multilayer.expected (owners aside)" tree_compare "$TMPD/expected-own" "$own"
	t_eq "export --own: every file is the caller's" "$uid" "$(find "$own" -printf '%U:%G\n' | sort -u | paste -sd' ')"
	gid=$(stat -c %a "$own/modes/suid")
	t_eq "export --own keeps the setuid bit" 4755 "$gid"
	t_fail "export into a non-empty dir is refused" $Q export "$IMG" "$out"
	t_contains "export: refusal says why" "not empty" "$(cat "$T_ERR")"
	t_fail "export of an unknown image fails" $Q export "$REG/test/nope:latest" "$w/nope"
	t_ok "export --help" $Q export --help
}

# zstd and gzip layers (OCI media types), Docker schema2 media types: every layer lands.
t_codecs() {
	local out
	out=$(work_dir)/zstd
	t_ok "zstd+gzip image: pull" $Q pull --tls-verify=false "$REG/test/zstd:latest" || return
	t_ok "zstd+gzip image: export" $Q export "$REG/test/zstd:latest" "$out" || return
	t_eq "zstd+gzip image: all three layers applied" "gzip layer on top|zstd again|zstd" \
		"$(cat "$out/etc/zstd-layer2" "$out/etc/zstd-layer3" "$out/etc/qimg-fixture" | paste -sd'|')"
	out=$(work_dir)/s2
	t_ok "schema2 image: pull" $Q pull --tls-verify=false "$REG/test/s2:latest" || return
	t_ok "schema2 image: export" $Q export "$REG/test/s2:latest" "$out" || return
	t_eq "schema2 image: both layers applied" "second layer|schema2" \
		"$(cat "$out/etc/schema2-layer2" "$out/etc/qimg-fixture" | paste -sd'|')"
}

# Two pulls of the same image at once into an empty store: both succeed, each layer is unpacked once.
t_concurrent() {
	local st p1 p2 rc1 rc2
	st=$(fresh_store concurrent)
	QIMG_STORE=$st $Q pull -q --tls-verify=false "$IMG" >"$TMPD/c1.out" 2>"$TMPD/c1.err" &
	p1=$!
	QIMG_STORE=$st $Q pull -q --tls-verify=false "$IMG" >"$TMPD/c2.out" 2>"$TMPD/c2.err" &
	p2=$!
	wait "$p1"
	rc1=$?
	wait "$p2"
	rc2=$?
	t_eq "concurrent pulls both succeed" "0 0" "$rc1 $rc2"
	[ "$rc1 $rc2" = "0 0" ] || echo "# $(cat "$TMPD/c1.err" "$TMPD/c2.err")"
	t_eq "concurrent pulls: three layer dirs" 3 "$(find "$st/layers" -mindepth 1 -maxdepth 1 -type d | wc -l)"
	t_eq "concurrent pulls: nothing left in tmp/" "" "$(ls -A "$st/tmp")"
}

both t_layers
both t_codecs
both t_concurrent
both t_kernel_overlay
if [ "$(id -u)" = 0 ] && [ -c /dev/fuse ]; then
	MODE=root Q="as_root $QIMG" t_fuse_overlay
	[ -n "$TUSER" ] && MODE=user Q="as_user $QIMG" t_fuse_overlay
else
	skip "fuse-overlayfs equals multilayer.expected" "needs root and /dev/fuse"
fi
both t_export
