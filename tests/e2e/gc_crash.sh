# Crash safety (issue 5): kill -9 a pull at several points (download, unpack, publish); then `system check`
# is clean or repairs, gc removes the leftovers, and a new pull completes and runs. Root and rootless.

registry_start plain || { fail "gc_crash: registry_start plain" "did not start"; exit 0; }
fixture_push debian crash/debian:latest || { fail "gc_crash: push debian" "push failed"; exit 0; }


# Wait until no process of this test's store is left (orphaned unpack workers finish or die on their own).
wait_store_idle() {
	local n=0
	while pgrep -f "qimg.*pull.*$REG/crash" >/dev/null && [ $n -lt 150 ]; do sleep 0.2; n=$((n + 1)); done
}

t_crash_at() { # DELAY (seconds after the pull starts)
	local delay=$1 s
	s=$(store_dir)
	$Q gc -q >/dev/null 2>&1
	$Q rmi "$REG/crash/debian:latest" >/dev/null 2>&1
	$Q gc -q >/dev/null 2>&1
	# as_root/as_user run the command under `timeout`; kill -9 the qimg-pull process itself.
	$Q pull -q --tls-verify=false "$REG/crash/debian:latest" >/dev/null 2>&1 &
	local bg=$! pid="" n=0
	# The delay counts from the moment the pull process exists (the shell, env and timeout come first).
	while [ -z "$pid" ] && [ $n -lt 100 ]; do
		pid=$(pgrep -n -f "^[^ ]*/qimg(-pull)? pull -q --tls-verify=false $REG/crash/debian" || true)
		[ -n "$pid" ] || sleep 0.02
		n=$((n + 1))
	done
	sleep "$delay"
	[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
	[ "$delay" = 0.05 ] && t_ok "kill -9 after ${delay}s: the pull was running and got killed" test -n "$pid"
	wait "$bg" 2>/dev/null
	wait_store_idle
	t_ok "kill -9 after ${delay}s: system check --repair" $Q system check --repair
	t_ok "kill -9 after ${delay}s: system check is clean afterwards" $Q system check
	t_ok "kill -9 after ${delay}s: gc" $Q gc -q
	t_eq "kill -9 after ${delay}s: gc left nothing in tmp/" "" "$(ls "$s/tmp" 2>/dev/null)"
	t_ok "kill -9 after ${delay}s: a new pull completes" $Q pull -q --tls-verify=false "$REG/crash/debian:latest"
	t_ok "kill -9 after ${delay}s: the image runs" $Q run "$REG/crash/debian:latest" test -x /usr/bin/apt-get
	t_ok "kill -9 after ${delay}s: system check is clean after the pull" $Q system check

}

t_crash() {
	local d
	for d in 0.05 0.3 0.8 1.5; do t_crash_at "$d"; done
}

both t_crash
