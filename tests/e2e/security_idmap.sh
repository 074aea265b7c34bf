# Each layer records the uid/gid map it was unpacked for (layers/<id>.idmap; issue 13 item 6). After a user's
# /etc/subuid and /etc/subgid ranges change, a layer unpacked under the old range would show wrong owners (and gc
# could not remove it): the run refuses it with a message saying what to do, and `pull` unpacks it again for the
# new map. A dedicated user (not the shared test user, whose range other tests rely on) has its range moved.

registry_start plain || { fail "security_idmap: registry_start" "did not start"; exit 0; }
fixture_push busybox sec/idmap:1 || { fail "security_idmap: push busybox" "push failed"; exit 0; }
fixture_push multilayer sec/idmap-ml:1 || { fail "security_idmap: push multilayer" "push failed"; exit 0; }
IMG=$REG/sec/idmap:1
MLIMG=$REG/sec/idmap-ml:1 # /own/dir1000/file: a file of a non-root id in a dir of one, removable only within the map

layer_of() { # STORE: the first layer id of the image's spec
	awk '$1 == "layer" { print $2; exit }' "$1/specs/$(ls "$1/specs" | grep -v tmp | head -n1)"
}

t_root() {
	local st=$ROOT_STORE id
	t_ok "root: pull" $Q pull -q --tls-verify=false "$IMG"
	id=$(layer_of "$st")
	t_eq "root: the layer's idmap record is the identity map" "u0:0:4294967295 g0:0:4294967295" \
		"$(readlink "$st/layers/$id.idmap")"
	t_ok "root: gc keeps the record of a live layer" $Q gc
	t_ok "root: record still there" test -L "$st/layers/$id.idmap"
	t_ok "root: run" $Q run "$IMG" stat -c %u:%g /home/app
	t_eq "root: owners as in the image" 1000:1000 "$(cat "$T_OUT")"
	# A record for another map (what a rootless store gets after a range change) is refused, then re-unpacked.
	ln -sfn "u0:1000:1,1:100000:65536 g0:1000:1,1:100000:65536" "$st/layers/$id.idmap"
	t_fail "root: a layer for another map is refused" $Q run "$IMG" true
	t_contains "root: the refusal names the maps and the fix" \
		"was unpacked for the id map \"u0:1000:1,1:100000:65536 g0:1000:1,1:100000:65536\", but this run maps \"u0:0:4294967295 g0:0:4294967295\"" \
		"$(cat "$T_ERR")"
	t_contains "root: ... and what to do" "\`qimg pull $IMG\` unpacks it again" "$(cat "$T_ERR")"
	t_ok "root: pull unpacks it again" $Q pull --tls-verify=false "$IMG"
	t_contains "root: pull says so" "unpacking it again" "$(cat "$T_ERR")"
	t_ok "root: run after the new unpack" $Q run "$IMG" stat -c %u:%g /home/app
	t_eq "root: owners right" 1000:1000 "$(cat "$T_OUT")"
	t_ok "root: gc removes the layer moved aside" $Q gc
	t_eq "root: nothing stale left in tmp/" "" "$(ls "$st/tmp")"
	# A layer from before the records (no .idmap) is taken as unpacked for the current map.
	rm -f "$st/layers/$id.idmap"
	t_ok "root: a layer without a record still runs" $Q run "$IMG" true
}

IDUSER=qimgid$$ # one per file run: another suite on this machine may run this file at the same time
idmap_user_setup() {
	if ! id -u "$IDUSER" >/dev/null 2>&1; then
		useradd -M -d / -s /bin/sh -c "qimg idmap test user" "$IDUSER" || return 1
	fi
	sed -i "/^$IDUSER:/d" /etc/subuid /etc/subgid
	local start
	start=$(_t_next_range)
	echo "$IDUSER:$start:65536" >>/etc/subuid && echo "$IDUSER:$start:65536" >>/etc/subgid
}
idmap_user_move() { # give the user a fresh range past every other one
	local start
	start=$(_t_next_range)
	sed -i "/^$IDUSER:/d" /etc/subuid /etc/subgid
	echo "$IDUSER:$start:65536" >>/etc/subuid && echo "$IDUSER:$start:65536" >>/etc/subgid
}
idmap_user_remove() {
	_t_locked /run/lock/qimg-test-user.lock sed -i "/^$IDUSER:/d" /etc/subuid /etc/subgid
	pkill -KILL -u "$IDUSER" 2>/dev/null
	userdel "$IDUSER" 2>/dev/null
	:
}

# as_user for IDUSER: the shared as_user with TUSER and its dirs swapped for this user's.
as_iduser() {
	TUSER=$IDUSER TUSER_UID=$(id -u "$IDUSER") TUSER_GID=$(id -g "$IDUSER") USER_HOME=$TMPD/iduser/home \
		USER_RUNTIME=$TMPD/iduser/run QIMG_STORE=$TMPD/iduser/store as_user "$@"
}

t_user() {
	local st=$TMPD/iduser/store id before after
	_t_locked /run/lock/qimg-test-user.lock idmap_user_setup || { fail "user: create $IDUSER" "useradd failed"; return; }
	at_exit idmap_user_remove
	_t_user_dirs iduser "$(id -u "$IDUSER"):$(id -g "$IDUSER")"
	Q="as_iduser $QIMG"
	local IMG=$MLIMG
	t_ok "user: pull" $Q pull -q --tls-verify=false "$IMG"
	id=$(layer_of "$st")
	before=$(readlink "$st/layers/$id.idmap")
	t_contains "user: the record is the user's subuid map" ",1:$(awk -F: -v u=$IDUSER '$1 == u { print $2 }' /etc/subuid):65536 g" "$before"
	t_ok "user: run" $Q run "$IMG" stat -c %u:%g /home/app
	t_eq "user: owners as in the image" 1000:1000 "$(cat "$T_OUT")"
	# The administrator moves the user's range; the user's keeper (still the old map) is stopped, as on a reboot.
	t_ok "user: keeper stop" $Q system keeper stop
	_t_locked /run/lock/qimg-test-user.lock idmap_user_move
	t_fail "user: the old layer is refused under the new range" $Q run "$IMG" true
	t_contains "user: the refusal says what changed and what to do" "(your /etc/subuid or /etc/subgid range changed?): \`qimg pull $IMG\` unpacks it again" "$(cat "$T_ERR")"
	t_ok "user: pull unpacks it again" $Q pull --tls-verify=false "$IMG"
	after=$(readlink "$st/layers/$id.idmap")
	t_eq "user: the record is the new map" "$(awk -F: -v u=$IDUSER '$1 == u { print $2 }' /etc/subuid)" \
		"$(echo "$after" | sed 's/.*,1:\([0-9]*\):65536 g.*/\1/')"
	t_ok "user: run under the new range" $Q run "$IMG" stat -c %u:%g /home/app
	t_eq "user: owners right again" 1000:1000 "$(cat "$T_OUT")"
	# The old tree's files belong to ids outside the new map: gc says so and what to do, without failing.
	t_ok "user: gc" $Q gc
	t_contains "user: gc names the stale tree it cannot remove" "holds files owned by ids outside your id map" "$(cat "$T_ERR")"
	t_contains "user: what it could not remove is left" /own/dir1000/file "$(find "$st"/tmp/stale-* -path '*/own/dir1000/file' 2>/dev/null | sed 's|.*\(/own/\)|\1|')"
	t_ok "user: gc again" $Q gc
	t_ok "user: the image still runs" $Q run "$IMG" cat /own/dir1000/file
	t_ok "user: keeper stop at the end" $Q system keeper stop
	rm -rf "$st" # as root: the stale tree's ids are not the user's any more
}

MODE=root Q="as_root $QIMG" t_root
[ -n "$TUSER" ] && MODE=user t_user
