# gc never frees what it could not prove unused (issue 13 item 2): a spec, ref, kept record (runs/NAME/image),
# lease or run record (live/slot-N) that cannot be read or parsed stops gc before it removes anything, with one
# line naming the object; so does running out of file descriptors (prlimit) mid-mark. `gc --max-size` whose LRU
# ref cannot be removed stops instead of choosing it forever. After the repair the message names, the image runs.
# Root and rootless (unreadable: a directory in the file's place for root, root-owned mode 000 for the user).

registry_start plain || { fail "gc_mark_errors: registry_start plain" "did not start"; exit 0; }
fixture_push busybox gcm/bb:latest || { fail "gc_mark_errors: push bb" "push failed"; exit 0; }
BB_DIGEST=$FIXTURE_DIGEST
fixture_push multilayer gcm/other:latest || { fail "gc_mark_errors: push other" "push failed"; exit 0; }
OTHER_DIGEST=$FIXTURE_DIGEST
BB=$REG/gcm/bb:latest
OTHER=$REG/gcm/other:latest
SAVED=$TMPD/saved

counts() { # layers, blobs and specs in the current mode's store
	local s
	s=$(store_dir)
	echo "layers $(ls "$s/layers" | grep -vc '\.json$') blobs $(ls "$s/blobs/sha256" | wc -l) specs $(ls "$s/specs" | wc -l)"
}
ref_rel() { # DIGEST: the store-relative path of the (first) ref file holding DIGEST
	local s f
	s=$(store_dir)
	f=$(grep -rlx "$1" "$s/images" | head -1)
	echo "${f#"$s"/}"
}

save() { rm -rf "$SAVED" && cp -a "$(store_dir)/$1" "$SAVED"; }           # REL
restore() { rm -rf "$(store_dir)/${1:?}" && cp -a "$SAVED" "$(store_dir)/$1"; } # REL
spoil() { # REL HOW: corrupt, truncate or make unreadable (a dir for root, root-owned 000 for the user)
	local f
	f=$(store_dir)/$1
	case $2 in
	corrupt) printf 'not what qimg wrote\n' >"$f" ;;
	truncate) head -c 20 "$SAVED" >"$f" ;;
	unreadable)
		if [ "$MODE" = root ]; then rm -f "$f" && mkdir "$f"; else chown 0:0 "$f" && chmod 000 "$f"; fi
		;;
	esac
}

# gc_stops LABEL REL: gc fails with one line naming REL and frees nothing.
gc_stops() {
	local label=$1 rel=$2 before
	before=$(counts)
	t_fail "$label: gc stops" $Q gc
	t_contains "$label: the error names $rel" "$rel" "$(cat "$T_ERR")"
	t_eq "$label: the error is one line" 1 "$(wc -l <"$T_ERR")"
	t_contains "$label: the error says nothing was removed" "nothing was removed" "$(cat "$T_ERR")"
	t_eq "$label: nothing was freed" "$before" "$(counts)"
}

t_specs() {
	local rel="specs/${BB_DIGEST#sha256:}" how
	t_ok "specs: pull" $Q pull -q --tls-verify=false "$BB"
	save "$rel"
	for how in corrupt truncate unreadable; do
		spoil "$rel" "$how"
		gc_stops "spec $how" "$rel"
		restore "$rel"
		t_ok "spec $how: gc after the repair" $Q gc
		t_ok "spec $how: the image runs" $Q run "$BB" true
	done
	spoil "$rel" truncate
	gc_stops "spec truncated, repaired by pull" "$rel"
	t_contains "spec: the message says to pull again" "pull $BB again" "$(cat "$T_ERR")"
	t_ok "spec: pull again as the message says" $Q pull -q --tls-verify=false "$BB"
	t_ok "spec: gc after pulling again" $Q gc
	t_ok "spec: the image runs after pulling again" $Q run "$BB" true
}

t_refs() {
	local rel how
	t_ok "refs: pull" $Q pull -q --tls-verify=false "$BB"
	rel=$(ref_rel "$BB_DIGEST")
	t_ok "refs: found the ref file" test -n "$rel"
	save "$rel"
	for how in corrupt truncate unreadable; do
		spoil "$rel" "$how"
		gc_stops "ref $how" "$rel"
		restore "$rel"
		t_ok "ref $how: gc after the repair" $Q gc
		t_ok "ref $how: the image runs" $Q run "$BB" true
	done
	spoil "$rel" corrupt
	gc_stops "ref corrupt, repaired by pull" "$rel"
	t_ok "ref: pull again as the message says" $Q pull -q --tls-verify=false "$BB"
	t_ok "ref: gc after pulling again" $Q gc
	t_ok "ref: the image runs after pulling again" $Q run "$BB" true
}

# A kept container's image, its ref removed: only runs/NAME/image keeps it.
t_kept() {
	local rel=runs/box/image how
	t_ok "kept: pull" $Q pull -q --tls-verify=false "$OTHER"
	t_ok "kept: run --keep box" $Q run --keep box "$OTHER" true
	t_ok "kept: rmi" $Q rmi "$OTHER"
	t_ok "kept: gc keeps the container's image" $Q gc
	save "$rel"
	for how in corrupt truncate unreadable; do
		spoil "$rel" "$how"
		gc_stops "kept record $how" "$rel"
		restore "$rel"
		t_ok "kept record $how: gc after the repair" $Q gc
		t_ok "kept record $how: the container's image runs" $Q run --from box "$OTHER_DIGEST" true
	done
	t_ok "kept: rm box" $Q rm box
	t_ok "kept: gc frees the image" $Q gc
	t_contains "kept: gc freed it" "Freed 1 images" "$(cat "$T_OUT")"
}

# An unreferenced image whose lease gc cannot test; a run record gc cannot read.
t_lease_and_records() {
	local rel="locks/image-${OTHER_DIGEST#sha256:}.lock" slot=live/slot-99
	t_ok "lease: pull" $Q pull -q --tls-verify=false "$OTHER"
	t_ok "lease: rmi" $Q rmi "$OTHER"
	${Q% *} touch "$(store_dir)/$rel" # as the store's owner, like a run's lease
	save "$rel"
	spoil "$rel" unreadable
	gc_stops "lease unreadable" "$rel"
	restore "$rel"
	${Q% *} touch "$(store_dir)/$slot"
	save "$slot"
	spoil "$slot" unreadable
	gc_stops "run record unreadable" "$slot"
	rm -rf "$(store_dir)/${slot:?}"
	t_ok "lease and record repaired: gc" $Q gc
	t_contains "lease and record repaired: gc freed the image" "Freed 1 images" "$(cat "$T_OUT")"
	t_ok "lease and record repaired: the other image runs" $Q run "$BB" true
}

# Out of file descriptors: for every limit, gc either succeeds or fails having freed nothing, unless it had
# finished the sweep and only ran short emptying its trash (one descriptor per directory level; what is in the
# trash was proven unused, and the next gc empties it). The unit test test_gc makes EMFILE hit the mark itself.
t_nofile() {
	local n before early=0 trash=0 runner=${Q% *} s
	s=$(store_dir)
	t_ok "nofile: pull" $Q pull -q --tls-verify=false "$OTHER"
	t_ok "nofile: run (a run record to read)" $Q run "$OTHER" true
	t_ok "nofile: rmi" $Q rmi "$OTHER"
	for n in $(seq 4 64); do
		before=$(counts)
		_t_run $runner prlimit --nofile=$n "$QIMG" gc
		[ "$T_RC" -eq 0 ] && break
		if grep -q 'gc: empty tmp/gc-' "$T_ERR"; then
			trash=$((trash + 1))
			continue
		fi
		# glibc says "Too many open files", musl "No file descriptors available"
		grep -qE 'Too many open files|No file descriptors available' "$T_ERR" &&
			grep -q 'nothing was removed' "$T_ERR" && early=$((early + 1))
		[ "$before" = "$(counts)" ] || fail "nofile: gc under --nofile=$n failed and freed something" "$(cat "$T_ERR")"
	done
	local rc=$T_RC out
	out=$(cat "$T_OUT")
	t_eq "nofile: gc succeeds with enough descriptors" 0 "$rc"
	t_ok "nofile: some limit stopped gc before it removed anything, saying so" test "$early" -gt 0
	t_ok "nofile: the unreferenced image is gone" test ! -e "$s/specs/${OTHER_DIGEST#sha256:}"
	t_eq "nofile: nothing is left in tmp/" "" "$(ls "$s/tmp")"
	t_ok "nofile: the referenced image runs" $Q run "$BB" true
	echo "# nofile: $early limits stopped gc early, $trash stopped it emptying the trash; it succeeded with $n: $out"
}

# --max-size whose least recently used ref cannot be removed: stops with an error, does not loop.
t_max_size() {
	local s rel dir owner
	s=$(store_dir)
	t_ok "max-size: pull other" $Q pull -q --tls-verify=false "$OTHER"
	touch -d '2 days ago' "$s/specs/${OTHER_DIGEST#sha256:}"
	rel=$(ref_rel "$OTHER_DIGEST")
	dir=$(dirname "$rel")
	owner=$(stat -c %u:%g:%a "$s/$dir")
	# root: an immutable ref; the user: a directory it can read but not write (root's, outside its namespace)
	if [ "$MODE" = root ]; then chattr +i "$s/$rel"; else chown 0:0 "$s/$dir" && chmod 0755 "$s/$dir"; fi
	local before
	before=$(counts)
	T_TIMEOUT=60 t_fail "max-size: gc with an unremovable LRU ref stops" $Q gc --max-size 1k
	local rc=$T_RC msg
	msg=$(cat "$T_ERR")
	t_ok "max-size: it did not loop until the timeout" test "$rc" -ne 124
	t_contains "max-size: the error names the ref" "$REG/gcm/other:latest" "$msg"
	t_contains "max-size: the error says why" "--max-size" "$msg"
	t_eq "max-size: the error is one line" 1 "$(printf '%s\n' "$msg" | wc -l)"
	t_eq "max-size: nothing was freed" "$before" "$(counts)"
	if [ "$MODE" = root ]; then chattr -i "$s/$rel"; else chown "${owner%:*}" "$s/$dir" && chmod "${owner##*:}" "$s/$dir"; fi
	t_ok "max-size: the other image still runs" $Q run "$OTHER" true
	t_ok "max-size: the bb image still runs" $Q run "$BB" true
	t_ok "max-size: rmi other" $Q rmi "$OTHER"
	t_ok "max-size: gc" $Q gc
}

t_all() {
	t_specs
	t_refs
	t_kept
	t_lease_and_records
	t_nofile
	t_max_size
}

both t_all
