# qimg pull when things go wrong: unreachable registries, tampered blobs and manifests, interrupted downloads
# (resumed with Range), concurrent pulls of one image, and the progress display on a terminal.

fresh() { echo "$TMPD/$MODE/s-$1"; } # a store of its own, in a dir the mode's user owns
blob_path() { local h=${1#sha256:}; echo "$REG_DATA/docker/registry/v2/blobs/sha256/${h:0:2}/$h/data"; }

registry_start plain || { fail "pull_errors: registry_start plain" "did not start"; exit 0; }
fixture_push busybox test/busybox:latest || { fail "pull_errors: push busybox" "push failed"; exit 0; }
BB=$FIXTURE_DIGEST
MANIFEST=$(cat "$(blob_path "$BB")")
LAYER=$(printf '%s' "$MANIFEST" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["layers"][0]["digest"])')
LSIZE=$(stat -c %s "$(blob_path "$LAYER")")
cp "$(blob_path "$LAYER")" "$TMPD/layer.blob"

# A store with tmp/partial-<layer hex> holding the given bytes (as a killed pull would leave it).
store_with_partial() { # NAME FILE
	local s
	s=$(fresh "$1")
	$Q --store "$s" images >/dev/null 2>&1 # creates the layout as the mode's user
	cp "$2" "$s/tmp/partial-${LAYER#sha256:}"
	chown "$(mode_ids)" "$s/tmp/partial-${LAYER#sha256:}"
	echo "$s"
}

t_unreachable() {
	local port
	port=$(free_port)
	t_fail "unreachable registry fails" $Q pull --tls-verify=false "127.0.0.1:$port/x/y:latest"
	t_contains "unreachable: says it could not connect" "onnect" "$(cat "$T_ERR")"
	t_contains "unreachable: retried" "tries" "$(cat "$T_ERR")"
	t_eq "unreachable: one line on stderr" 1 "$(wc -l <"$T_ERR")"
	t_fail "unresolvable host fails" $Q pull "no-such-host.invalid/x/y:latest"
}

# A legal repository name (~246 bytes) whose escaped form (every '/' becomes %2F) exceeds NAME_MAX: stored under a
# hashed directory with the name inside; pulled, listed, run, removed like any other.
LONG_REPO=$("$PY" -c "print('/'.join(['abcdefghij'] * 21))")
fixture_push busybox "$LONG_REPO:latest" || fail "pull_errors: push to a long repository name" "push failed"
t_long_name() {
	local long=$REG/$LONG_REPO:latest
	t_ok "a name longer than NAME_MAX once escaped: pull" $Q pull -q --tls-verify=false "$long"
	t_ok "long name: images" $Q images --format json
	t_contains "long name: listed with its full name" "$REG/$LONG_REPO" "$(cat "$T_OUT")"
	t_ok "long name: run" $Q run "$long" echo long
	t_eq "long name: run output" long "$(cat "$T_OUT")"
	t_ok "long name: inspect" $Q inspect "$long"
	t_ok "long name: pull again (warm)" $Q pull -q --tls-verify=false "$long"
	local store
	store=$(store_dir)
	t_eq "long name: one hashed directory holding the name" "$REG/$LONG_REPO" "$(cat "$store"/images/%h-*/.name 2>/dev/null)"
	t_ok "long name: rmi" $Q rmi "$long"
	t_fail "long name: gone after rmi" $Q run --pull never "$long" true
	t_eq "long name: no directory left under images/" "" "$(find "$store/images" -maxdepth 1 -name '%h-*' 2>/dev/null)"
}

t_resume() {
	local s
	head -c $((LSIZE / 2)) "$TMPD/layer.blob" >"$TMPD/half"
	s=$(store_with_partial resume "$TMPD/half")
	t_ok "resume: pull with half a layer left by an earlier pull" $Q --store "$s" -vv pull --tls-verify=false "$REG/test/busybox:latest"
	t_contains "resume: resumed after the bytes held" "resuming after $((LSIZE / 2)) of $LSIZE bytes" "$(cat "$T_ERR")"
	t_contains "resume: asked for the rest with Range" "(from byte $((LSIZE / 2)))" "$(cat "$T_ERR")"
	t_ok "resume: the blob is complete and verified" cmp "$TMPD/layer.blob" "$s/blobs/sha256/${LAYER#sha256:}"
	t_ok "resume: the partial file is gone" test ! -e "$s/tmp/partial-${LAYER#sha256:}"

	head -c $((LSIZE / 2)) /dev/urandom >"$TMPD/junk"
	s=$(store_with_partial junk "$TMPD/junk")
	t_ok "resume: a corrupt partial download is fetched again" $Q --store "$s" -vv pull --tls-verify=false "$REG/test/busybox:latest"
	t_contains "resume: says the resumed blob did not verify" "does not verify" "$(cat "$T_ERR")"
	t_ok "resume: the refetched blob is right" cmp "$TMPD/layer.blob" "$s/blobs/sha256/${LAYER#sha256:}"

	s=$(store_with_partial complete "$TMPD/layer.blob")
	t_ok "resume: a complete partial download is only verified" $Q --store "$s" -vv pull --tls-verify=false "$REG/test/busybox:latest"
	t_eq "resume: no GET for a complete partial" 0 "$(grep -c "/blobs/$LAYER" "$T_ERR")"

	cat "$TMPD/layer.blob" "$TMPD/junk" >"$TMPD/long"
	s=$(store_with_partial long "$TMPD/long")
	t_ok "resume: an over-long partial download is dropped" $Q --store "$s" pull --tls-verify=false "$REG/test/busybox:latest"
}

t_concurrent() {
	local s p1 p2 n
	s=$(fresh concurrent)
	$Q --store "$s" -vv pull --tls-verify=false "$REG/test/busybox:latest" >"$TMPD/c1.out" 2>"$TMPD/c1.err" &
	p1=$!
	$Q --store "$s" -vv pull --tls-verify=false "$REG/test/busybox:latest" >"$TMPD/c2.out" 2>"$TMPD/c2.err" &
	p2=$!
	wait "$p1" && wait "$p2" && pass "concurrent: two pulls into one store both succeed" ||
		fail "concurrent: two pulls into one store both succeed" "$(tail -n 3 "$TMPD/c1.err" "$TMPD/c2.err")"
	t_eq "concurrent: both print the digest" "$BB $BB" "$(cat "$TMPD/c1.out") $(cat "$TMPD/c2.out")"
	n=$(cat "$TMPD/c1.err" "$TMPD/c2.err" | grep -c "GET .*/blobs/$LAYER")
	t_eq "concurrent: the layer was downloaded once" 1 "$n"
}

t_wait_for_other() {
	local s lk fp i
	s=$(fresh waiting)
	$Q --store "$s" images >/dev/null 2>&1
	lk=$s/locks/blob-${LAYER#sha256:}.lock
	touch "$lk" && chown "$(mode_ids)" "$lk"
	rm -f "$TMPD/locked"
	flock -x "$lk" sh -c "touch $TMPD/locked; sleep 2" &
	fp=$!
	for ((i = 0; i < 100; i++)); do [ -e "$TMPD/locked" ] && break; sleep 0.05; done
	t_ok "lock: a blob another pull holds is waited for" $Q --store "$s" -vv pull --tls-verify=false "$REG/test/busybox:latest"
	wait "$fp"
	t_contains "lock: says it waits" "another pull is fetching it; waiting" "$(cat "$T_ERR")"
	t_ok "lock: then fetched it" test -f "$s/blobs/sha256/${LAYER#sha256:}"
}

t_progress() {
	local s
	s=$(fresh progress)
	t_ok "progress: pull on a terminal" ${Q%% *} script -qec "$QIMG --store $s pull --tls-verify=false $REG/test/busybox:latest" /dev/null
	t_contains "progress: a line per blob" "Copying blob ${LAYER:7:12}" "$(cat "$T_OUT")"
	t_contains "progress: the config line" "Copying config" "$(cat "$T_OUT")"
	t_contains "progress: blobs end as done" "done" "$(cat "$T_OUT")"
	t_contains "progress: the digest at the end" "$BB" "$(cat "$T_OUT")"
	s=$(fresh progress-q)
	t_ok "progress: -q on a terminal" ${Q%% *} script -qec "$QIMG --store $s pull -q --tls-verify=false $REG/test/busybox:latest" /dev/null
	t_eq "progress: -q prints only the digest" "$BB" "$(tr -d '\r' <"$T_OUT")"
}

both t_unreachable
both t_long_name
both t_resume
both t_concurrent
both t_wait_for_other
both t_progress

# ---- tampering: a separate registry whose storage we corrupt ----
t_tampered() {
	local s
	s=$(fresh tampered-$1)
	t_fail "tampered $1: pull fails" $Q --store "$s" pull --tls-verify=false "$REG/test/busybox:latest"
	t_contains "tampered $1: names the blob" "$2" "$(cat "$T_ERR")"
	t_ok "tampered $1: the bad blob is not in the store" test ! -e "$s/blobs/sha256/${LAYER#sha256:}"
	t_eq "tampered $1: no image ref" "" "$(ls "$s/images")"
	t_eq "tampered $1: no partial download left" "" "$(ls "$s/tmp")"
}

registry_stop
registry_start plain || { fail "pull_errors: registry_start plain (tampering)" "did not start"; exit 0; }
fixture_push busybox test/busybox:latest || { fail "pull_errors: push busybox (tampering)" "push failed"; exit 0; }
# same size, other bytes: the registry serves it; the digest check must catch it
"$PY" -c 'import sys; p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[len(b) // 2] ^= 0xff; open(p, "wb").write(b)' \
	"$(blob_path "$LAYER")"
both t_tampered flipped "blob $LAYER: digest mismatch"
head -c $((LSIZE - 100)) "$TMPD/layer.blob" >"$(blob_path "$LAYER")"
both t_tampered short "blob $LAYER: got $((LSIZE - 100)) bytes, the manifest says $LSIZE"
cat "$TMPD/layer.blob" "$TMPD/layer.blob" >"$(blob_path "$LAYER")"
both t_tampered long "blob $LAYER: more than the $LSIZE bytes the manifest says"
cp "$TMPD/layer.blob" "$(blob_path "$LAYER")"

# the manifest itself: served for the tag with the original Docker-Content-Digest; by digest, hashed
printf '%s' "$MANIFEST" | sed 's/"schemaVersion": *2/"schemaVersion":2 /' >"$(blob_path "$BB")"
t_manifest_tampered() {
	local s
	s=$(fresh manifest)
	t_fail "tampered manifest: pull by tag fails" $Q --store "$s" pull --tls-verify=false "$REG/test/busybox:latest"
	t_contains "tampered manifest: Docker-Content-Digest checked" "does not match the content" "$(cat "$T_ERR")"
	t_fail "tampered manifest: pull by digest fails" $Q --store "$s" pull --tls-verify=false "$REG/test/busybox@$BB"
	t_contains "tampered manifest: digest checked" "manifest $BB: digest mismatch" "$(cat "$T_ERR")"
	t_eq "tampered manifest: no image ref" "" "$(ls "$s/images")"
}
both t_manifest_tampered
