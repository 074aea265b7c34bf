# `qimg export` of the Debian fixture (debootstrap minbase, ~6,700 files in one layer) equals the debootstrap
# tree it was built from: names, types, modes, owners, sizes, contents, symlink targets, hardlinks, user xattrs.
# Root and rootless stores.

registry_start plain || { fail "export_debian: registry_start plain" "did not start"; exit 0; }
ROOTFS=$(fixture_rootfs debian) || { fail "export_debian: debian rootfs" "debootstrap failed"; exit 0; }
fixture_push debian test/debian:bookworm || { fail "export_debian: push debian" "push failed"; exit 0; }
tree_list "$ROOTFS" >"$TMPD/rootfs.list" || { fail "export_debian: list the rootfs" "tree.py failed"; exit 0; }

work_dir() { if [ "$MODE" = root ]; then echo "$TMPD"; else echo "$USER_HOME"; fi; }

t_export_debian() {
	local out opts=()
	out=$(work_dir)/debian
	t_ok "pull debian" $Q pull --tls-verify=false "$REG/test/debian:bookworm" || return
	t_ok "export debian" $Q export "$REG/test/debian:bookworm" "$out" || return
	if [ "$MODE" = user ] && [ -n "$TUSER" ]; then
		opts=(--uidmap "$TUSER_UID:$TUSER_SUBUID" --gidmap "$TUSER_GID:$TUSER_SUBGID")
	fi
	tree_list "$out" "${opts[@]}" >"$TMPD/export-$MODE.list"
	t_ok "export equals the debootstrap tree" diff -u "$TMPD/rootfs.list" "$TMPD/export-$MODE.list"
	t_eq "as many entries as the rootfs" "$(wc -l <"$TMPD/rootfs.list")" "$(wc -l <"$TMPD/export-$MODE.list")"
}

both t_export_debian
