# Kept containers (run --keep / --from / rm) never make qimg follow on the host what a container wrote (issue 13
# item 1): the container rewrites its /etc (and more) as absolute and relative symlinks to host directories, as a
# symlinked parent directory, as files swapped for directories and back; the next runs, --from, rm and gc must
# leave the canary files outside the store as they were. Root and rootless (the canaries then belong to the test
# user, whom a followed unlink inside the user namespace could reach).

registry_start plain || { fail "security_kept: registry_start" "did not start"; exit 0; }
fixture_push busybox sec/kept:1 || { fail "security_kept: push busybox" "push failed"; exit 0; }
IMG=$REG/sec/kept:1

CANARY_NAMES="hosts hostname resolv.conf passwd group keep-me"

canary_make() { # DIR OWNER: a directory of files named like the ones the runner generates or reads
	local n
	rm -rf "$1" && mkdir -p "$1/sub"
	for n in $CANARY_NAMES; do echo "canary $n" >"$1/$n"; done
	echo "canary sub" >"$1/sub/file"
	chown -R "$2" "$1"
	chmod 0755 "$1" "$1/sub"
}
canary_state() { find "$1" -printf '%P %y %m %s\n' | sort && cat "$1"/* "$1"/sub/* 2>/dev/null; }

# NAME SETUP-SCRIPT: the first --keep run runs SETUP inside, then a second --keep run, a --from run and rm must
# leave the canary dir untouched; the container must still start (or fail with a message, never touch the host).
t_case() {
	local name=$1 setup=$2 c=$TMPD/canary-$MODE before after
	canary_make "$c" "$(mode_ids)"
	before=$(canary_state "$c")
	setup=${setup//@C@/$c}
	setup=${setup//@REL@/$(rel_to_canary "$c")}
	t_ok "$name: the container rewrites itself" $Q run --keep "k-$name" "$IMG" sh -c "$setup"
	$Q run --keep "k-$name" "$IMG" true >"$TMPD/second.out" 2>&1
	t_eq "$name: second --keep run: canaries untouched" "$before" "$(canary_state "$c")"
	$Q run --from "k-$name" "$IMG" true >"$TMPD/from.out" 2>&1
	t_eq "$name: --from run: canaries untouched" "$before" "$(canary_state "$c")"
	t_ok "$name: gc" $Q gc
	t_eq "$name: gc: canaries untouched" "$before" "$(canary_state "$c")"
	t_ok "$name: rm" $Q rm "k-$name"
	after=$(canary_state "$c")
	t_eq "$name: rm: canaries untouched" "$before" "$after"
	t_fail "$name: rm removed the container" $Q rm "k-$name"
	t_contains "$name: rm names the missing container" "no such container: k-$name" "$(cat "$T_ERR")"
}

# The relative path from a kept upper (where the container's /etc symlink lives on the host) to the canary.
rel_to_canary() { realpath -m --relative-to="$(store_dir)/runs/x/upper" "$1"; }

t_kept() {
	t_ok "pull" $Q pull -q --tls-verify=false "$IMG"
	# /etc itself an absolute symlink to a host dir (the reported case: the reset of hosts/hostname/resolv.conf)
	t_case etc-abs 'rm -rf /etc && ln -s @C@ /etc'
	# relative: resolved on the host from runs/NAME/upper/, it climbs out of the store into the canary dir
	t_case etc-rel 'rm -rf /etc && ln -s @REL@ /etc'
	# the generated files themselves as symlinks to host files
	t_case files-abs 'for f in hosts hostname resolv.conf; do rm -f /etc/$f; ln -s @C@/$f /etc/$f; done'
	# a symlinked parent two levels up: /etc a real dir, the files inside a symlinked subdir
	t_case parent 'rm -rf /etc && mkdir /etc && ln -s @C@ /etc/d && for f in hosts hostname resolv.conf; do ln -s d/$f /etc/$f; done'
	# a file replaced by a directory (with a symlink inside) and a directory by a file
	t_case file-to-dir 'for f in hosts hostname resolv.conf; do rm -f /etc/$f; mkdir /etc/$f; ln -s @C@ /etc/$f/link; done'
	t_case dir-to-file 'rm -rf /etc && echo not-a-dir >/etc'
	# symlinks elsewhere in the upper: the root's own entries and a deep tree
	t_case tree 'ln -s @C@ /hostdir && mkdir -p /a/b && ln -s @C@/sub /a/b/c && ln -s ../@REL@ /a/rel'

	# After a reset, the container sees freshly generated files, not its old copies (which stay its own business).
	t_ok "regen: first run writes its own hosts" $Q run --keep regen "$IMG" sh -c 'echo stale >/etc/hosts'
	t_ok "regen: second run" $Q run --keep regen "$IMG" cat /etc/hosts
	case $(cat "$T_OUT") in *stale*) fail "regen: /etc/hosts regenerated" "still the container's copy" ;; *) pass "regen: /etc/hosts regenerated" ;; esac
	t_ok "regen: file-to-dir container starts and sees a file" $Q run --keep regen "$IMG" sh -c \
		'rm -f /etc/hosts && mkdir /etc/hosts && touch /etc/hosts/x'
	t_ok "regen: /etc/hosts is a file again" $Q run --keep regen "$IMG" sh -c 'test -f /etc/hosts'
	t_ok "regen: rm" $Q rm regen
}

# A kept record (runs/NAME/image) that cannot be read, is damaged or is lost is an error naming the container
# and the way out, and is never rewritten (it was treated as absent and rewritten: issue 13 item 6).
t_record() {
	local d owner
	t_ok "record: make a container" $Q run --keep rec "$IMG" true
	d=$(store_dir)/runs/rec owner=$(stat -c %u:%g "$(store_dir)/runs/rec/image")
	mv "$d/image" "$d/image.real" && mkdir "$d/image" && chown "$owner" "$d/image"
	t_fail "record: an unreadable record refuses the run" $Q run --keep rec "$IMG" true
	t_contains "record: the error names the container and rm" "container rec: cannot read its record" "$(cat "$T_ERR")"
	t_eq "record: not rewritten" directory "$(stat -c %F "$d/image")"
	t_fail "record: --from refuses it too" $Q run --from rec "$IMG" true
	t_contains "record: --from names the record" "cannot read its record" "$(cat "$T_ERR")"
	rmdir "$d/image" && echo not-a-digest >"$d/image" && chown "$owner" "$d/image"
	t_fail "record: a damaged record refuses the run" $Q run --keep rec "$IMG" true
	t_contains "record: damaged is said" "its record runs/rec/image is damaged; remove it with \`qimg rm rec\`" "$(cat "$T_ERR")"
	t_eq "record: damaged record kept as it was" not-a-digest "$(cat "$d/image")"
	rm -f "$d/image"
	t_fail "record: a lost record (upper still there) refuses the run" $Q run --keep rec "$IMG" true
	t_contains "record: lost is said" "container rec has lost its image record" "$(cat "$T_ERR")"
	t_ok "record: rm removes the broken container" $Q rm rec
	t_ok "record: the name is free again" $Q run --keep rec "$IMG" true
	t_ok "record: rm" $Q rm rec
}

# rm racing run --keep on one name: every command succeeds or fails with one of the two expected messages, never
# anything else, and the store ends clean. (The lost-lock race itself is shown deterministically by test_store's
# "lock race" cases: a waiter on an unlinked lock file moves to the new file.)
t_race() {
	local i f p1 p2 p3
	for i in $(seq 1 15); do
		$Q run --keep racer "$IMG" true >"$TMPD/r1.$i" 2>&1 &
		p1=$!
		$Q run --keep racer "$IMG" true >"$TMPD/r2.$i" 2>&1 &
		p2=$!
		$Q rm racer >"$TMPD/rm.$i" 2>&1 &
		p3=$!
		wait "$p1" "$p2" "$p3" # not a bare wait: the registry is a child of this shell too
	done
	for f in "$TMPD"/r1.* "$TMPD"/r2.* "$TMPD"/rm.*; do
		[ -s "$f" ] && [ "$(cat "$f")" != racer ] || continue # rm prints the name it removed
		grep -qE 'container racer is in use by another run|no such container: racer' "$f" || cat "$f"
	done >"$TMPD/race.bad"
	t_eq "race: only 'in use' or 'no such container' errors" "" "$(cat "$TMPD/race.bad")"
	$Q rm racer >/dev/null 2>&1
	t_eq "race: no container directory left" "" "$(ls "$(store_dir)/runs")"
	rm -f "$TMPD"/r1.* "$TMPD"/r2.* "$TMPD"/rm.*
}

both t_kept
both t_record
both t_race
