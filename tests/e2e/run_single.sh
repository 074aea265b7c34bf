# The single-id mode (issue 15): a user without /etc/subuid and /etc/subgid entries (created here) pulls and runs
# in a user namespace that maps only their own uid and gid to 0; chown, set*id, setgroups, capset and mknod of
# devices succeed without doing anything (the seccomp root emulation); apt-get, dpkg -i, useradd, su work in the
# debian fixture unchanged. The warning comes once per store and never with -q. A layer unpacked in one mode is
# refused by a run in the other (and `pull` unpacks it again). The shared test user (who has ranges) falls back to
# the single-id mode when newuidmap/newgidmap are hidden. Root is not affected by --userns=single.

registry_start plain || { fail "run_single: registry_start" "did not start"; exit 0; }
fixture_push busybox single/busybox:1 || { fail "run_single: push busybox" "push failed"; exit 0; }
IMG=$REG/single/busybox:1

SUSER=qimgsingle
single_user_setup() {
	if ! id -u "$SUSER" >/dev/null 2>&1; then
		useradd -M -d / -s /bin/sh -c "qimg single-id test user" "$SUSER" || return 1
	fi
	sed -i "/^$SUSER:/d" /etc/subuid /etc/subgid
}
single_user_remove() {
	pkill -KILL -u "$SUSER" 2>/dev/null
	userdel "$SUSER" 2>/dev/null
	:
}

# as_user for SUSER: the shared as_user with TUSER and its dirs swapped for this user's.
as_suser() {
	TUSER=$SUSER TUSER_UID=$(id -u "$SUSER") TUSER_GID=$(id -g "$SUSER") USER_HOME=$TMPD/suser/home \
		USER_RUNTIME=$TMPD/suser/run QIMG_STORE=$TMPD/suser/store as_user "$@"
}

layer_of() { # STORE: the first layer id of the image's spec
	awk '$1 == "layer" { print $2; exit }' "$1/specs/$(ls "$1/specs" | grep -v tmp | head -n1)"
}

WARN="warning: single-id mode"

t_single_basic() {
	local st=$TMPD/suser/store id uid gid
	uid=$(id -u "$SUSER") gid=$(id -g "$SUSER")
	t_ok "single: qimg -q pull" $Q -q pull -q --tls-verify=false "$IMG"
	t_eq "single: qimg -q pull says nothing" "" "$(cat "$T_ERR")"
	id=$(layer_of "$st")
	t_eq "single: the layer records the single-id map" "u0:$uid:1 g0:$gid:1" "$(readlink "$st/layers/$id.idmap")"
	t_eq "single: every file of the layer is the user's" "" \
		"$(find "$st/layers/$id" \( ! -uid "$uid" -o ! -gid "$gid" \) -print | head -n 3)"
	t_ok "single: run -q id" $Q -q run "$IMG" id -u
	t_eq "single: -q run says nothing" "" "$(cat "$T_ERR")"
	t_eq "single: uid 0 inside" 0 "$(cat "$T_OUT")"
	t_ok "single: run id -g" $Q run "$IMG" id -g
	t_eq "single: gid 0 inside" 0 "$(cat "$T_OUT")"
	t_contains "single: the first run without -q warns" "$WARN" "$(cat "$T_ERR")"
	t_contains "single: ... says why" "there is no /etc/subuid and /etc/subgid range for you" "$(cat "$T_ERR")"
	t_contains "single: ... and how to get the full map" "usermod --add-subuids 100000-165535 --add-subgids 100000-165535 $SUSER" "$(cat "$T_ERR")"
	t_ok "single: run again" $Q run "$IMG" true
	t_eq "single: the warning comes once per store" "" "$(cat "$T_ERR")"
	# The root emulation: the calls succeed, nothing changes (there is no other id, and no device is made).
	t_ok "single: chown, mknod of devices succeed" $Q run "$IMG" sh -c \
		'touch /f && chown 1000:1000 /f && chown -h 5:5 /f && mknod /c c 1 3 && mknod /b b 7 0 && echo ok; stat -c %u:%g /f; test ! -e /c && test ! -e /b && echo nodev'
	t_eq "single: owner stays 0, no device node" "ok 0:0 nodev" "$(tr '\n' ' ' <"$T_OUT" | sed 's/ $//')"
	t_ok "single: a FIFO is made for real" $Q run "$IMG" sh -c 'mkfifo /p && test -p /p && mknod /p2 p && test -p /p2 && echo fifo'
	t_eq "single: fifo" fifo "$(cat "$T_OUT")"
	t_ok "single: seccomp=unconfined keeps the emulation" $Q run --security-opt seccomp=unconfined "$IMG" sh -c \
		'touch /f && chown 1000 /f && mknod /c c 1 3 && echo ok'
	t_eq "single: unconfined: chown and mknod succeed" ok "$(cat "$T_OUT")"
	t_ok "single: -u 1000 runs (the switch is emulated)" $Q run -u 1000 "$IMG" id -u
	t_eq "single: -u: still 0" 0 "$(cat "$T_OUT")"
	# Writes vanish with the run.
	t_ok "single: write" $Q run "$IMG" sh -c 'echo x >/marker'
	t_ok "single: the next run does not see it" $Q run "$IMG" sh -c 'test ! -e /marker && echo clean'
	t_eq "single: clean" clean "$(cat "$T_OUT")"
	t_eq "single: nothing left in the store's tmp/" "" "$(ls -A "$st/tmp")"
}

t_single_store() {
	local st=$TMPD/suser/store
	t_ok "single: --keep" $Q run --keep box "$IMG" sh -c 'echo kept >/k && chown 7:7 /k'
	t_ok "single: --from sees it" $Q run --from box "$IMG" cat /k
	t_eq "single: --from" kept "$(cat "$T_OUT")"
	t_ok "single: export" $Q export "$IMG" "$TMPD/suser/export"
	t_eq "single: the export has the image, owned by the user" "$(id -u "$SUSER")" "$(stat -c %u "$TMPD/suser/export/bin/busybox")"
	t_ok "single: save" $Q save -o "$TMPD/suser/img.tar" "$IMG"
	t_ok "single: load" $Q load -q -i "$TMPD/suser/img.tar" --tag single/loaded:1
	t_ok "single: run the loaded image" $Q run single/loaded:1 id -u
	t_eq "single: loaded image runs as 0" 0 "$(cat "$T_OUT")"
	# ps and kill: a run that waits, seen by ps, ended by kill.
	$Q run --name waiter "$IMG" sleep 60 >/dev/null 2>&1 &
	local i waiter=$!
	for i in $(seq 50); do $Q ps -q 2>/dev/null | grep -q . && break; sleep 0.1; done
	t_ok "single: ps" $Q ps
	t_contains "single: ps shows the run" waiter "$(cat "$T_OUT")"
	t_ok "single: kill" $Q kill waiter
	wait "$waiter" # not a bare wait: lib.sh's registry runs in the background too
	t_ok "single: system df" $Q system df
	t_ok "single: system check" $Q system check
	t_ok "single: rm the kept container" $Q rm box
	t_ok "single: gc" $Q gc
	t_ok "single: still runs after gc" $Q run "$IMG" true
	t_ok "single: rmi" $Q rmi "$IMG" single/loaded:1
	t_ok "single: gc after rmi" $Q gc
	t_eq "single: no layer left" "" "$(ls -A "$st/layers")"
	t_ok "single: pull again" $Q pull -q --tls-verify=false "$IMG"
}

t_root() {
	t_ok "root: pull" $Q pull -q --tls-verify=false "$IMG"
	t_ok "root: --userns=single is the host's ids for root" $Q run --userns=single "$IMG" sh -c \
		'touch /f && chown 1000:1000 /f && stat -c %u /f'
	t_eq "root: chown is real" 1000 "$(cat "$T_OUT")"
	t_eq "root: no warning" "" "$(cat "$T_ERR")"
	t_fail "run --userns with a bad mode" $Q run --userns=bogus "$IMG" true
	t_contains "run --userns bogus: says what is expected" "--userns bogus: expected auto, subuid or single" "$(cat "$T_ERR")"
}

# The debian fixture, unchanged: apt-get update + install (against Debian's mirror, as run_debian does), dpkg -i of
# a .deb built here, useradd, chown -R, su -c.
t_single_debian() {
	fixture_push debian single/debian:12 >/dev/null 2>&1 || { fail "single: push debian" "push failed (debootstrap?)"; return; }
	local DEB=$REG/single/debian:12 pkg=$TMPD/suser/deb
	mkdir -p "$pkg/hello/DEBIAN" "$pkg/hello/usr/share/qimg-hello"
	printf 'Package: qimg-hello\nVersion: 1.0\nArchitecture: all\nMaintainer: qimg tests <t@example.invalid>\nDescription: test\n' \
		>"$pkg/hello/DEBIAN/control"
	echo hello >"$pkg/hello/usr/share/qimg-hello/greeting"
	t_ok "single: build a tiny .deb" dpkg-deb --root-owner-group --build "$pkg/hello" "$pkg/qimg-hello.deb"
	chown -R "$(id -u "$SUSER"):$(id -g "$SUSER")" "$pkg"
	t_ok "single: pull debian" $Q pull -q --tls-verify=false "$DEB"
	t_ok "single: dpkg -i" $Q run -v "$pkg:/deb:ro" "$DEB" sh -c 'dpkg -i /deb/qimg-hello.deb && cat /usr/share/qimg-hello/greeting'
	t_contains "single: the package is installed" hello "$(cat "$T_OUT")"
	t_ok "single: useradd, chown -R, su -c" $Q run "$DEB" sh -c \
		'useradd -m -u 1500 alice && mkdir -p /srv/a/b && touch /srv/a/b/f && chown -R alice:alice /srv/a && su alice -c "echo su-ok" && stat -c %u /srv/a/b/f'
	t_eq "single: su ran, owners stay 0" "su-ok 0" "$(tr '\n' ' ' <"$T_OUT" | sed 's/ $//')"
	t_ok "single: the apt snippet is only in the run's stub" $Q run "$DEB" cat /etc/apt/apt.conf.d/00qimg-single-id
	t_contains "single: apt stays root" 'APT::Sandbox::User "root";' "$(cat "$T_OUT")"
	# Why the snippet: with apt's sandbox user forced back, apt's own check of the (emulated) drop stops it.
	t_fail "single: apt with APT::Sandbox::User=_apt fails" $Q run --net host "$DEB" apt-get -o APT::Sandbox::User=_apt update
	t_contains "single: ... on its check of the drop to _apt" "Could not switch" "$(cat "$T_OUT" "$T_ERR")"
	t_ok "single: apt-get update + install cowsay" $Q run --net host "$DEB" sh -c \
		'apt-get update && apt-get install -y cowsay && /usr/games/cowsay ok'
	t_contains "single: cowsay speaks" "< ok >" "$(cat "$T_OUT")"
	t_ok "single: the next run does not see cowsay" $Q run "$DEB" sh -c 'test ! -e /usr/games/cowsay && echo clean'
	t_eq "single: clean image" clean "$(cat "$T_OUT")"
	t_ok "single: the snippet is not in a full-map run's image" as_root "$QIMG" run --pull always --tls-verify=false "$DEB" sh -c 'test ! -e /etc/apt/apt.conf.d/00qimg-single-id && echo absent'
	t_eq "single: root has no snippet" absent "$(tail -n 1 "$T_OUT")"
}

# The shared test user has ranges: --userns=single, then the default (the full map), on a store of its own.
as_user_sw() { QIMG_STORE=$TMPD/user/switch as_user "$@"; }
t_switch() {
	local st=$TMPD/user/switch Q="as_user_sw $QIMG"
	t_ok "switch: pull in single-id mode" as_user_sw env QIMG_USERNS=single "$QIMG" pull -q --tls-verify=false "$IMG"
	t_contains "switch: the warning says it was asked for" "QIMG_USERNS=single or --userns=single was asked for" "$(cat "$T_ERR")"
	t_ok "switch: run --userns=single" $Q run --userns=single "$IMG" id -u
	t_eq "switch: uid 0" 0 "$(cat "$T_OUT")"
	t_fail "switch: the full-map run refuses the single-id layer" $Q run "$IMG" true
	t_contains "switch: ... naming the modes" "was unpacked in the single-id mode" "$(cat "$T_ERR")"
	t_contains "switch: ... and the fix" "\`QIMG_USERNS=subuid qimg pull $IMG\` unpacks it again for this mode" "$(cat "$T_ERR")"
	t_ok "switch: pull (full map) unpacks it again" $Q pull --tls-verify=false "$IMG"
	t_contains "switch: pull says so" "unpacking it again" "$(cat "$T_ERR")"
	t_ok "switch: full-map run" $Q run "$IMG" stat -c %u /home/app
	t_eq "switch: the full map's owners" 1000 "$(cat "$T_OUT")"
	t_fail "switch: a single-id run refuses the full-map layer" $Q run --userns=single "$IMG" true
	t_contains "switch: ... naming the modes" "was unpacked in the full-map mode" "$(cat "$T_ERR")"
	t_ok "switch: run --pull always --userns=single unpacks for its mode" $Q run --pull always --tls-verify=false --userns=single "$IMG" stat -c %u /home/app
	t_eq "switch: single-id owners" 0 "$(tail -n 1 "$T_OUT")"
	t_ok "switch: --userns=subuid: the full map again" $Q run --pull always --tls-verify=false --userns=subuid "$IMG" stat -c %u /home/app
	t_eq "switch: full-map owners" 1000 "$(tail -n 1 "$T_OUT")"
	t_ok "switch: gc" $Q gc
	t_ok "switch: keeper stop" $Q system keeper stop
}

# newuidmap/newgidmap hidden (bound over by a non-executable file in a private mount namespace; qimg looks in
# $PATH and then the usual dirs, so taking them out of $PATH alone would not hide them): the user with ranges
# (no keeper running) falls back, with the warning saying why; --userns=subuid fails clearly.
hidden_user() { # CMD...: CMD as TUSER (as_user's environment) where newuidmap and newgidmap cannot be executed
	_t_pass_env
	unshare -m --propagation private -- bash -c \
		'for h in newuidmap newgidmap; do mount --bind "$0" "$(command -v $h)" || exit 99; done; exec "$@"' \
		"$TMPD/notexec" env -i "${_T_ENV[@]}" HOME="$USER_HOME" PATH="$_T_PATH" USER="$TUSER" \
		XDG_RUNTIME_DIR="$TMPD/user/fallback-run" QIMG_STORE="$TMPD/user/fallback" timeout -k 5 "$T_TIMEOUT" \
		setpriv --reuid="$TUSER_UID" --regid="$TUSER_GID" --init-groups -- "$@"
}
t_fallback() {
	local st=$TMPD/user/fallback
	: >"$TMPD/notexec" && chmod 0644 "$TMPD/notexec"
	mkdir -p "$TMPD/user/fallback-run" && chmod 0700 "$TMPD/user/fallback-run" && chown "$TUSER_UID:$TUSER_GID" "$TMPD/user/fallback-run"
	t_ok "fallback: pull with the helpers hidden" hidden_user "$QIMG" pull --tls-verify=false "$IMG"
	t_contains "fallback: the warning says why" "single-id mode (newuidmap/newgidmap are not installed)" "$(cat "$T_ERR")"
	t_eq "fallback: the layer is single-id" "u0:$TUSER_UID:1 g0:$TUSER_GID:1" "$(readlink "$st/layers/$(layer_of "$st").idmap")"
	t_ok "fallback: run" hidden_user "$QIMG" run "$IMG" id -u
	t_eq "fallback: uid 0" 0 "$(cat "$T_OUT")"
	t_fail "fallback: --userns=subuid fails clearly" hidden_user "$QIMG" run --userns=subuid "$IMG" true
	t_contains "fallback: ... naming the helper" "newuidmap not found (install the uidmap package; or QIMG_USERNS=single)" "$(cat "$T_ERR")"
	t_ok "fallback: with the helpers back, --userns=subuid" as_user env QIMG_STORE="$st" XDG_RUNTIME_DIR="$TMPD/user/fallback-run" "$QIMG" run --pull always --tls-verify=false --userns=subuid "$IMG" stat -c %u /home/app
	t_eq "fallback: full map" 1000 "$(tail -n 1 "$T_OUT")"
	t_ok "fallback: keeper stop" as_user env XDG_RUNTIME_DIR="$TMPD/user/fallback-run" "$QIMG" system keeper stop
}

[ "$(id -u)" = 0 ] || { skip "run_single" "needs root (it creates a user without /etc/subuid)"; exit 0; }
_t_locked /run/lock/qimg-test-user.lock single_user_setup || { fail "run_single: create $SUSER" "useradd failed"; exit 0; }
at_exit single_user_remove
_t_user_dirs suser "$(id -u "$SUSER"):$(id -g "$SUSER")"
MODE=root Q="as_root $QIMG" t_root
MODE=single Q="as_suser $QIMG" t_single_basic
MODE=single Q="as_suser $QIMG" t_single_store
MODE=single Q="as_suser $QIMG" t_single_debian
if [ -n "$TUSER" ]; then
	MODE=user t_switch
	MODE=user t_fallback
fi
