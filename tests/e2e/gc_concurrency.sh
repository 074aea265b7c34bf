# qimg gc while runs and pull/rmi go on (issue 5): no run fails, the store stays consistent, and at the end it
# holds exactly what the refs reach. Root and rootless (gc must enter the user namespace to delete).

registry_start plain || { fail "gc_concurrency: registry_start plain" "did not start"; exit 0; }
fixture_push busybox gc/one:latest || { fail "gc_concurrency: push one" "push failed"; exit 0; }
fixture_push multilayer gc/two:latest || { fail "gc_concurrency: push two" "push failed"; exit 0; }
fixture_push zstd gc/three:latest || { fail "gc_concurrency: push three" "push failed"; exit 0; }

RUNS=${QIMG_GC_TEST_RUNS:-200}

t_gc_concurrency() {
	local dir=$TMPD/$MODE
	mkdir -p "$dir" && chmod 0777 "$dir"
	t_ok "pull one" $Q pull -q --tls-verify=false "$REG/gc/one:latest"
	t_ok "pull two" $Q pull -q --tls-verify=false "$REG/gc/two:latest"
	# gc in a loop, pull/rmi of a third image in a loop, and $RUNS runs of two images, 4 at a time.
	cat >"$dir/gcloop.sh" <<-EOS
		while [ ! -e "$dir/stop" ]; do "\$@" gc -q >>"$dir/gc.err" 2>&1 || echo gc-failed >>"$dir/gc.fail"; done
	EOS
	cat >"$dir/pullloop.sh" <<-EOS
		while [ ! -e "$dir/stop" ]; do
			"\$@" pull -q --tls-verify=false "$REG/gc/three:latest" >/dev/null 2>>"$dir/pull.err" || echo pull-failed >>"$dir/pull.fail"
			"\$@" rmi "$REG/gc/three:latest" >/dev/null 2>>"$dir/pull.err" || echo rmi-failed >>"$dir/pull.fail"
		done
	EOS
	cat >"$dir/runs.sh" <<-EOS
		run_one() { "\$@" run "$REG/gc/\$IMG:latest" true || echo "run \$IMG failed: \$?" >>"$dir/run.fail"; }
		i=0
		while [ \$i -lt $RUNS ]; do
			for IMG in one two one two; do run_one "\$@" & i=\$((i + 1)); done
			wait
		done
		echo \$i >"$dir/runs.done"
	EOS
	(${Q% *} bash "$dir/gcloop.sh" ${Q##* } &)
	(${Q% *} bash "$dir/pullloop.sh" ${Q##* } &)
	t_ok "runs under gc and pull/rmi" ${Q% *} bash "$dir/runs.sh" ${Q##* }
	touch "$dir/stop"
	local n=0
	while pgrep -f "$dir/(gcloop|pullloop).sh" >/dev/null && [ $n -lt 300 ]; do sleep 0.2; n=$((n + 1)); done
	t_eq "every run was started" "$RUNS" "$(cat "$dir/runs.done" 2>/dev/null)"
	t_eq "no run failed" "" "$(cat "$dir/run.fail" 2>/dev/null | head -3)"
	t_eq "no gc failed" "" "$(cat "$dir/gc.fail" 2>/dev/null | head -3; grep -m12 -E 'qimg|ERROR|SUMMARY|#[0-9] ' "$dir/gc.err" 2>/dev/null)"
	t_eq "no pull or rmi failed" "" "$(cat "$dir/pull.fail" 2>/dev/null | head -3)"
	t_ok "system check is clean" $Q system check
	t_ok "final gc" $Q gc -q
	t_ok "gc --dry-run after gc" $Q gc --dry-run --format json
	t_contains "nothing left to collect" '"images": 0, "layers": 0, "blobs": 0, "tmp": 0' "$(cat "$T_OUT")"
	t_ok "both images still run" $Q run "$REG/gc/two:latest" true
	t_ok "rmi one, gc" $Q rmi "$REG/gc/one:latest"
	t_ok "gc after rmi" $Q gc
	t_contains "gc freed the image" "Freed 1 images" "$(cat "$T_OUT")"
	t_fail "a removed image no longer runs" $Q run "$REG/gc/one:latest" true
	t_ok "the other image still runs" $Q run "$REG/gc/two:latest" true
	t_ok "store still clean" $Q system check
}

both t_gc_concurrency
