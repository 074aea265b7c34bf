# qimg run in podman's ways: local images found by registries.conf alias, unqualified-search registries (in
# order, then docker.io), manifest digest and unique digest prefix (ambiguous prefix refused); --pull
# missing|always|never against a local registry; --name (unique among live runs), --cidfile, ps (table, json),
# kill (KILL: 137, TERM: 143), stale records after kill -9 of qimg hidden by ps and removed by gc. Root and rootless.

CONF=$TMPD/conf
mkdir -p "$CONF"
chmod 0755 "$CONF"

registry_start plain || { fail "eco_run: registry_start" "did not start"; exit 0; }
fixture_push busybox eco/busybox:latest || { fail "eco_run: push busybox" "push failed"; exit 0; }
BB_DIGEST=$FIXTURE_DIGEST
fixture_push schema2 eco/other:latest || { fail "eco_run: push schema2" "push failed"; exit 0; }
S2_DIGEST=$FIXTURE_DIGEST
for r in pullme:1 never:1 always:1; do
	fixture_push busybox "eco/$r" || { fail "eco_run: push $r" "push failed"; exit 0; }
done
BB=$REG/eco/busybox:latest
PORT=${REG##*:}
BB_LAYOUT=$(fixture_layout busybox)

slot_hold() { # SLOT: flock it as a run's qimg would, from a background process (HOLDER), until slot_release
	# The holder waits for the lock (not -n): the probe below holds it for an instant and must not make it give up.
	$(runas) flock -x "$1" sleep 60 &
	HOLDER=$!
	local n=0
	while flock -n "$1" true && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
}
slot_release() { # SLOT
	kill "$HOLDER" 2>/dev/null
	pkill -f "flock -x $1" 2>/dev/null
	wait "$HOLDER" 2>/dev/null
	rm -f "$1"
}
conf() { # NAME TEXT: write $CONF/NAME.conf
	printf '%s\n' "$2" >"$CONF/$1.conf"
	chmod 0644 "$CONF/$1.conf"
}
manifest_gets() { grep -c "\"GET /v2/eco/$1/manifests/[^ ]* HTTP/1.1\" 200 .*\"qimg/" "$REG_LOG"; }
digest_of() { sed -n 's/^"Digest": "\(sha256:[0-9a-f]*\)",$/\1/p' "$T_OUT"; } # from an inspect in $T_OUT

# wait_ps NAME: until `qimg ps` lists NAME (10 s at most)
wait_ps() {
	local i
	for ((i = 0; i < 100; i++)); do
		$Q ps --format json 2>/dev/null | grep -q "\"Name\":\"$1\"" && return 0
		sleep 0.1
	done
	return 1
}
held() { grep -l '^id ' "$1"/live/slot-* 2>/dev/null | wc -l; } # STORE: slots holding a record
json_field() { # NAME FIELD: FIELD of the ps --format json entry named NAME
	$Q ps --format json | "$PY" -c 'import json, sys; print(next(r[sys.argv[2]] for r in json.load(sys.stdin) if r["Name"] == sys.argv[1]))' "$1" "$2"
}

conf alias "[aliases]
\"bbx\" = \"$REG/eco/busybox\""
conf search "unqualified-search-registries = [\"localhost:$PORT\", \"127.0.0.1:$PORT\"]"
conf search_rev "unqualified-search-registries = [\"127.0.0.1:$PORT\", \"localhost:$PORT\"]"
conf nohit "unqualified-search-registries = [\"127.0.0.1:$PORT\"]"

t_setup() {
	t_ok "setup: pull busybox" $Q pull -q --tls-verify=false "$BB"
	# the same repository name on two "registries" (one registry, two host names), holding different images
	t_ok "setup: pull localhost:PORT/eco/pick" $Q pull -q --tls-verify=false "localhost:$PORT/eco/busybox:latest"
	t_ok "setup: pull 127.0.0.1:PORT/eco/pick" $Q pull -q --tls-verify=false "127.0.0.1:$PORT/eco/other:latest"
	t_ok "setup: load a docker.io image" $Q load -i "$BB_LAYOUT" --tag docker.io/library/ecobox:latest
}

t_short_names() {
	t_ok "alias: run bbx" withconf "$CONF/alias.conf" $Q run bbx echo via-alias
	t_eq "alias: the aliased image ran" "via-alias" "$(cat "$T_OUT")"
	t_ok "alias: inspect bbx" withconf "$CONF/alias.conf" $Q inspect bbx
	t_eq "alias: inspect names the aliased image" "$BB_DIGEST" "$(digest_of)"
	t_fail "no conf: bbx is docker.io/library/bbx" $Q run --pull never bbx true
	t_contains "no conf: says what it looked for" "image not found: bbx" "$(cat "$T_ERR")"

	# eco/busybox exists under localhost:PORT and 127.0.0.1:PORT (busybox both); eco/other only under 127.0.0.1
	t_ok "search: inspect eco/busybox" withconf "$CONF/search.conf" $Q inspect eco/busybox
	t_eq "search: eco/busybox found" "$BB_DIGEST" "$(digest_of)"
	t_ok "search: run eco/other (second registry)" withconf "$CONF/search.conf" $Q inspect eco/other
	t_eq "search: the second registry's image" "$S2_DIGEST" "$(digest_of)"
	# one name, two images: tag localhost:PORT/eco/pick = busybox, 127.0.0.1:PORT/eco/pick = schema2
	$(runas) sh -c "d=\$QIMG_STORE/images; mkdir -p \"\$d/localhost%3A$PORT%2Feco%2Fpick\" \"\$d/127.0.0.1%3A$PORT%2Feco%2Fpick\" &&
		echo $BB_DIGEST >\"\$d/localhost%3A$PORT%2Feco%2Fpick/latest\" && echo $S2_DIGEST >\"\$d/127.0.0.1%3A$PORT%2Feco%2Fpick/latest\""
	t_ok "search order: first registry wins" withconf "$CONF/search.conf" $Q inspect eco/pick
	t_eq "search order: localhost first -> busybox" "$BB_DIGEST" "$(digest_of)"
	t_ok "search order reversed" withconf "$CONF/search_rev.conf" $Q inspect eco/pick
	t_eq "search order: 127.0.0.1 first -> schema2" "$S2_DIGEST" "$(digest_of)"
	t_ok "search: then docker.io" withconf "$CONF/nohit.conf" $Q run ecobox echo from-docker-io
	t_eq "search: docker.io's image ran" "from-docker-io" "$(cat "$T_OUT")"
	t_fail "search: not found anywhere" withconf "$CONF/search.conf" $Q run --pull never eco/nothere true
	t_eq "search: not found is qimg's error (125)" 125 "$T_RC"
	t_contains "search: names the names it tried" "localhost:$PORT/eco/nothere, 127.0.0.1:$PORT/eco/nothere" "$(cat "$T_ERR")"

	# ids: the manifest digest, a 12-digit prefix (images' DIGEST column), ambiguous prefixes
	t_ok "digest: run by full digest" $Q run "$BB_DIGEST" echo by-digest
	t_eq "digest: ran" "by-digest" "$(cat "$T_OUT")"
	local hex=${BB_DIGEST#sha256:}
	t_ok "prefix: run by 12 hex digits" $Q run "${hex:0:12}" echo by-prefix
	t_eq "prefix: ran" "by-prefix" "$(cat "$T_OUT")"
	mkdir -p "$TMPD/exp" && chmod 0777 "$TMPD/exp"
	t_ok "prefix: export by prefix" $Q export "${hex:0:12}" "$TMPD/exp/$MODE"
	t_ok "prefix: export has busybox" test -e "$TMPD/exp/$MODE/bin/busybox"
	t_fail "prefix: 11 digits are a name, not an id" $Q run --pull never "${hex:0:11}" true
	# a second (fabricated) ref whose digest shares the first 12 digits
	local fake="${hex:0:12}$(printf '%s' "${hex:12}" | tr '0-9a-f' '1-9a-f0')"
	$(runas) sh -c "mkdir -p \"\$QIMG_STORE/images/localhost%2Ffake\" && echo sha256:$fake >\"\$QIMG_STORE/images/localhost%2Ffake/latest\""
	t_fail "prefix: ambiguous" $Q run "${hex:0:12}" true
	t_eq "prefix: ambiguous is qimg's error (125)" 125 "$T_RC"
	t_contains "prefix: ambiguous says so" "image id ${hex:0:12} is ambiguous" "$(cat "$T_ERR")"
	t_ok "prefix: more digits pick one" $Q run "${hex:0:20}" echo longer
	t_eq "prefix: the longer prefix ran" "longer" "$(cat "$T_OUT")"
	t_ok "rmi: the fake ref by name" $Q rmi localhost/fake
	t_contains "rmi: says what it untagged" "Untagged: localhost/fake:latest" "$(cat "$T_OUT")"
	t_ok "rmi: short name via alias" withconf "$CONF/alias.conf" $Q rmi bbx
	t_fail "rmi: the aliased ref is gone" $Q inspect "$BB"
	t_ok "rmi: pull it back" $Q pull -q --tls-verify=false "$BB"
}

t_pull_policy() {
	local before
	before=$(manifest_gets pullme)
	t_ok "--pull missing: pulls, then runs" $Q run --pull missing --tls-verify=false "$REG/eco/pullme:1" echo pulled-ran
	t_eq "--pull missing: stdout is the command's only" "pulled-ran" "$(cat "$T_OUT")"
	t_eq "--pull missing: the registry served the manifest" "$((before + 1))" "$(manifest_gets pullme)"
	t_ok "--pull missing: the image is in the store" $Q images
	t_contains "--pull missing: images lists it" "$REG/eco/pullme" "$(cat "$T_OUT")"
	t_ok "default policy: present image runs" $Q run --tls-verify=false "$REG/eco/pullme:1" true
	t_eq "default policy: no pull when present" "$((before + 1))" "$(manifest_gets pullme)"

	before=$(manifest_gets never)
	t_fail "--pull never: missing image" $Q run --pull never "$REG/eco/never:1" true
	t_eq "--pull never: 125" 125 "$T_RC"
	t_contains "--pull never: image not found" "image not found: $REG/eco/never:1" "$(cat "$T_ERR")"
	t_eq "--pull never: no request" "$before" "$(manifest_gets never)"

	t_ok "--pull always: first" $Q run --pull always --tls-verify=false "$REG/eco/always:1" echo a1
	before=$(manifest_gets always)
	t_ok "--pull always: again" $Q run --pull always --tls-verify=false "$REG/eco/always:1" echo a2
	t_eq "--pull always: output" "a2" "$(cat "$T_OUT")"
	t_eq "--pull always: asked the registry again" "$((before + 1))" "$(manifest_gets always)"

	t_fail "--pull missing: unreachable registry" $Q run --tls-verify=false "127.0.0.1:1/eco/x:1" true
	t_eq "--pull missing: failed pull is 125" 125 "$T_RC"
	t_contains "--pull missing: says the pull failed" "pull 127.0.0.1:1/eco/x:1 failed" "$(cat "$T_ERR")"
	t_fail "--pull bogus" $Q run --pull sometimes "$BB" true
	t_contains "--pull bogus: names the values" "expected missing, always or never" "$(cat "$T_ERR")"
}

t_names_ps_kill() {
	local out=$TMPD/ps-$MODE bg bg2 rc id
	$Q run --name web-1 "$BB" sleep 300 >"$out.1" 2>&1 &
	bg=$!
	wait_ps web-1 || fail "name: run started" "$(cat "$out.1")"
	t_fail "name: taken by a live run" $Q run --name web-1 "$BB" true
	t_eq "name: taken is 125" 125 "$T_RC"
	t_contains "name: says it is in use" "name web-1 is already in use by a running container" "$(cat "$T_ERR")"
	t_fail "name: invalid" $Q run --name "-bad/name" "$BB" true
	t_contains "name: invalid says so" "invalid name" "$(cat "$T_ERR")"
	t_ok "ps" $Q ps
	t_contains "ps: header" "CONTAINER ID" "$(cat "$T_OUT")"
	t_contains "ps: the run's line" "web-1" "$(grep web-1 "$T_OUT")"
	t_contains "ps: its image" "$BB" "$(grep web-1 "$T_OUT")"
	t_contains "ps: its command" '"sleep 300"' "$(grep web-1 "$T_OUT")"
	$Q ps --format json >"$out.json"
	t_ok "ps --format json is JSON" "$PY" -m json.tool "$out.json"
	t_eq "ps json: image" "$BB" "$(json_field web-1 Image)"
	t_eq "ps json: command" "sleep 300" "$(json_field web-1 Command)"
	id=$(json_field web-1 Id)
	t_ok "ps json: id is 64 hex" sh -c "echo $id | grep -qxE '[0-9a-f]{64}'"
	t_ok "ps -q" $Q ps -q
	t_contains "ps -q: the short id" "${id:0:12}" "$(cat "$T_OUT")"
	t_ok "ps json: Pid is the run's qimg" sh -c "tr '\\0' ' ' </proc/$(json_field web-1 Pid)/cmdline | grep -q 'run --name web-1'"

	t_ok "kill web-1" $Q kill web-1
	t_eq "kill prints the container" "web-1" "$(cat "$T_OUT")"
	wait "$bg"
	t_eq "kill: the run ends with 137 (SIGKILL)" 137 "$?"
	t_ok "ps after kill" $Q ps
	t_eq "ps: web-1 gone" "" "$(grep web-1 "$T_OUT")"
	t_ok "name: free again after the run" $Q run --name web-1 "$BB" echo reused
	t_eq "name: reused run's output" "reused" "$(cat "$T_OUT")"
	t_fail "kill: no such container" $Q kill web-1
	t_contains "kill: says no such container" "no such container: web-1" "$(cat "$T_ERR")"

	# --cidfile, kill -s TERM by id prefix
	local cid=$TMPD/cid/$MODE.cid
	mkdir -p "$TMPD/cid" && chmod 0777 "$TMPD/cid"
	$Q run --cidfile "$cid" --name term-1 "$BB" sleep 300 >"$out.2" 2>&1 &
	bg2=$!
	wait_ps term-1 || fail "cidfile: run started" "$(cat "$out.2")"
	t_eq "cidfile: holds the run's id" "$(json_field term-1 Id)" "$(cat "$cid" 2>/dev/null)"
	t_fail "cidfile: refused when the file exists" $Q run --cidfile "$cid" "$BB" true
	t_contains "cidfile: says it exists" "exists" "$(cat "$T_ERR")"
	t_ok "kill -s TERM by id prefix" $Q kill -s TERM "$(cut -c1-14 "$cid")"
	wait "$bg2"
	rc=$?
	t_eq "kill -s TERM: 143" 143 "$rc"
	t_ok "cidfile: removed with the container" test ! -e "$cid"
	t_fail "kill -s BOGUS" $Q kill -s BOGUS x
	t_contains "kill -s BOGUS: names the signals" "signal BOGUS is not supported" "$(cat "$T_ERR")"

	# kill -9 of qimg: its record stays on disk (a slot live/slot-N still starting "id "), but ps does not list it;
	# ps and gc mark such records free
	local s pid
	s=$(store_dir)
	for what in gc ps; do
		$Q run --name stale-$what "$BB" sleep 300 >"$out.3" 2>&1 &
		bg=$!
		wait_ps stale-$what || fail "stale: run started" "$(cat "$out.3")"
		pid=$(json_field stale-$what Pid)
		kill -9 "$pid"
		wait "$bg"
		t_eq "stale ($what): a record is left on disk" 1 "$(held "$s")"
		if [ $what = gc ]; then
			t_ok "stale: gc" $Q gc
			t_eq "stale: gc counts it as a leftover" 1 "$(sed -n 's/.* \([0-9]*\) leftovers.*/\1/p' "$T_OUT")"
		else
			t_ok "stale: ps" $Q ps
			t_eq "stale: ps does not list it" "" "$(grep stale-ps "$T_OUT")"
		fi
		t_eq "stale ($what): the record is marked free" 0 "$(held "$s")"
		t_ok "stale ($what): the name is free" $Q run --name stale-$what "$BB" true
	done

	# A record still being written (locked by its run, no "end" line yet) is neither listed nor marked free, and
	# reading it leaks nothing (make check: LeakSanitizer; gc under concurrent runs found this).
	local slot=$s/live/slot-4000
	$(runas) sh -c "printf 'id %064d\nname half\nimage some/image:tag\ncommand sleep 9\npid 1\n' 0 >$slot"
	slot_hold "$slot"
	t_ok "half-written record: ps" $Q ps
	t_eq "half-written record: not listed" "" "$(grep half "$T_OUT")"
	t_ok "half-written record: ps --format json" $Q ps --format json
	t_ok "half-written record: gc" $Q gc
	t_eq "half-written record: not a leftover" 0 "$(sed -n 's/.* \([0-9]*\) leftovers.*/\1/p' "$T_OUT")"
	t_eq "half-written record: left alone" "id" "$(head -c 2 "$slot")"
	slot_release "$slot"

	# A run whose PID 1 ended and whose pid was reused by an unrelated process (here: a live record naming a
	# process that is not its qimg's child): kill KILL leaves that process alone.
	local other
	sleep 60 &
	other=$!
	$(runas) sh -c ": >$slot"
	slot_hold "$slot"
	$(runas) sh -c "printf 'id %064d\nname reused\nimage some/image:tag\npid %d\ninit %d\ncreated 1\ncommand sleep\nend\n' 7 $(pgrep -n -f "flock -x $slot") $other >>$slot"
	t_ok "reused pid: ps lists the run" $Q ps
	t_contains "reused pid: listed" reused "$(cat "$T_OUT")"
	t_ok "reused pid: kill" $Q kill reused
	sleep 0.2
	t_ok "reused pid: the unrelated process is not signalled" kill -0 "$other"
	kill "$other" 2>/dev/null
	wait "$other" 2>/dev/null
	slot_release "$slot"
}

both t_setup
both t_short_names
both t_pull_policy
both t_names_ps_kill
