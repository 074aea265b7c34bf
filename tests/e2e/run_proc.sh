# qimg run as a process, root and rootless: signal forwarding, kill -9 of qimg leaves nothing behind, 50 runs at
# once, no fd leaks, stdin (-i) and -t, and the rootless keeper (one per user, small, verified, restartable).

registry_start plain || { fail "run_proc: registry_start" "did not start"; exit 0; }
fixture_push busybox run/busybox:1 || { fail "run_proc: push busybox" "push failed"; exit 0; }
BB=$REG/run/busybox:1


# wait_for FILE PATTERN: up to 10 s for PATTERN to appear in FILE.
wait_for() {
	local i
	for i in $(seq 100); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# The pid of qimg itself running a command line that contains MARK (PID 1 of the container is a younger fork of it;
# `timeout`/`setpriv` of as_root/as_user do not start with $QIMG).
qimg_pid() { pgrep -o -f "^$QIMG run .*$1"; }

# Live keepers of the test user that belong to this file's XDG_RUNTIME_DIR.
keepers() {
	local pid n=0
	for pid in $(pgrep -u "$TUSER" -x qimg-keeper); do
		[ "$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null)" = S ] || continue
		tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "XDG_RUNTIME_DIR=$USER_RUNTIME" && n=$((n + 1))
	done
	echo "$n"
}

t_setup() {
	t_ok "pull busybox" $Q pull -q --tls-verify=false "$BB"
}

t_signals() {
	local out=$TMPD/sig-$MODE.out sig bg rc
	for sig in TERM INT HUP USR1; do
		$Q run "$BB" sh -c "trap 'echo got $sig; exit 7' $sig; echo ready; while :; do sleep 0.05; done # mark-$sig" >"$out" 2>&1 &
		bg=$!
		wait_for "$out" ready || fail "SIG$sig: container started" "$(cat "$out")"
		kill -"$sig" "$(qimg_pid "mark-$sig")"
		wait "$bg"
		rc=$?
		t_eq "SIG$sig to qimg reaches the command" "ready got $sig" "$(tr '\n' ' ' <"$out" | sed 's/ $//')"
		t_eq "SIG$sig: the command's exit status" 7 "$rc"
	done
	$Q run "$BB" sh -c 'echo ready; exec sleep 100 # mark-nohandler' >"$out" 2>&1 &
	bg=$!
	wait_for "$out" ready
	kill -TERM "$(qimg_pid mark-nohandler)"
	wait "$bg"
	t_eq "SIGTERM to a command without a handler: 143" 143 "$?"
}

t_kill9() {
	local out=$TMPD/k9-$MODE.out s pids left
	s=$(store_dir)
	$Q run "$BB" sh -c 'echo ready; sleep 4242' >"$out" 2>&1 &
	wait_for "$out" ready || fail "kill -9: container started" "$(cat "$out")"
	# The oldest process running our command line is qimg itself (PID 1 of the container is its fork).
	pids=$(pgrep -u "$(mode_user)" -f "sleep 4242")
	t_ok "kill -9 of qimg" kill -9 "$(qimg_pid "sleep 4242")"
	local i # the container dies with qimg (PDEATHSIG, then its pid namespace): wait for that, 10 s at most
	for ((i = 0; i < 200; i++)); do
		left=$(pgrep -u "$(mode_user)" -f "sleep 4242")
		[ -n "$left" ] || break
		sleep 0.05
	done
	t_eq "kill -9: no process of the container is left" "" "$left"
	t_eq "kill -9: nothing in the store's tmp/" "" "$(ls -A "$s/tmp")"
	t_eq "kill -9: nothing in the store's runs/" "" "$(ls -A "$s/runs")"
	t_eq "kill -9: no mount of the store is visible" "" "$(grep -F "$s" /proc/self/mountinfo)"
	[ -n "$pids" ] || fail "kill -9: found the container's processes" "pgrep found nothing"
}

t_parallel() {
	local i pids=() bad=0 out=$TMPD/par-$MODE
	mkdir -p "$out"
	if [ "$MODE" = user ]; then
		$Q system keeper stop >/dev/null 2>&1 # the first runs race to create the keeper
	fi
	for i in $(seq 50); do
		$Q run "$BB" sh -c "echo run-$i" >"$out/$i" 2>&1 &
		pids+=($!)
	done
	local why=
	for i in "${!pids[@]}"; do
		wait "${pids[$i]}" || { bad=$((bad + 1)) && why=$(cat "$out/$((i + 1))"); }
	done
	t_eq "50 parallel runs all succeed${why:+ (one said: $why)}" 0 "$bad"
	local good=0
	for i in $(seq 50); do
		[ "$(cat "$out/$i")" = "run-$i" ] && good=$((good + 1))
	done
	t_eq "50 parallel runs: each printed its own line" 50 "$good"
	if [ "$MODE" = user ]; then
		t_eq "one keeper for the user, however many first runs raced" 1 "$(keepers)"
	fi
	t_eq "50 parallel runs: store tmp/ empty" "" "$(ls -A "$(store_dir)/tmp")"
}

t_fds() {
	exec 7>"$TMPD/fd7-$MODE" # an fd without O_CLOEXEC that qimg inherits
	t_ok "only 0, 1, 2 reach the command" $Q run "$BB" ls /proc/self/fd
	exec 7>&-
	# 3 is ls's own handle on the directory it lists.
	t_eq "fds of the command" "0 1 2 3" "$(tr '\n' ' ' <"$T_OUT" | sed 's/ $//')"
}

t_stdin() {
	local got
	got=$(echo data | $Q run "$BB" cat)
	t_eq "without -i: stdin is /dev/null" "" "$got"
	got=$(echo data | $Q run -i "$BB" cat)
	t_eq "-i passes stdin" "data" "$got"
}

t_tty() {
	if ! command -v script >/dev/null; then
		skip "-t" "no script(1) to provide a terminal"
		return
	fi
	local qimg_cmd
	if [ "$MODE" = root ]; then
		qimg_cmd="env QIMG_STORE=$ROOT_STORE $QIMG"
	else
		qimg_cmd="env XDG_RUNTIME_DIR=$USER_RUNTIME QIMG_STORE=$USER_STORE setpriv --reuid=$TUSER_UID --regid=$TUSER_GID --init-groups -- $QIMG"
	fi
	local out
	out=$(script -qec "$qimg_cmd run -t $BB sh -c 'tty; echo TERM=\$TERM; test -t 0 && echo stdin-tty'" /dev/null </dev/null 2>&1 | tr -d '\r\000^@')
	t_contains "-t: the command has a terminal on the container's devpts" "/dev/pts/0" "$out"
	t_contains "-t: TERM=xterm" "TERM=xterm" "$out"
	t_contains "-t: stdin is the terminal" "stdin-tty" "$out"
	out=$(script -qec "$qimg_cmd run -t $BB sh -c 'exit 3'" /dev/null </dev/null >/dev/null 2>&1; echo $?)
	t_eq "-t: exit status passes through script" 3 "$out"
	out=$( (sleep 1; printf 'echo hel""lo\nexit 5\n'; sleep 1) | script -qec "$qimg_cmd run -it $BB sh" /dev/null 2>&1; echo "rc=${PIPESTATUS[1]}")
	t_contains "-it: typed input reaches the shell" "hello" "$(tr -d '\r' <<<"$out")"
	t_contains "-it: its exit status comes back" "rc=5" "$out"
	# Without -t, on a terminal: the container gets no controlling terminal, so no TIOCSTI (CVE-2017-5226).
	out=$(script -qec "$qimg_cmd run $BB sh -c 'echo tty_nr=\$(cut -d\" \" -f7 /proc/self/stat); (: >/dev/tty) 2>/dev/null || echo no-ctty'" /dev/null </dev/null 2>&1 | tr -d '\r\000^@')
	t_contains "no -t: no controlling terminal (tty_nr 0)" "tty_nr=0" "$out"
	t_contains "no -t: /dev/tty cannot be opened" "no-ctty" "$out"
}

t_keeper() {
	if [ "$MODE" = root ]; then
		t_ok "keeper status as root" $Q system keeper status
		t_contains "root needs no keeper" "not running" "$(cat "$T_OUT")"
		return
	fi
	t_ok "a run starts the keeper" $Q run "$BB" true
	t_ok "keeper status" $Q system keeper status
	t_contains "keeper running" "running: pid" "$(cat "$T_OUT")"
	local pid rss
	pid=$(sed -n 's/^running: pid \([0-9]*\),.*/\1/p' "$T_OUT")
	rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
	if [ -n "${ASAN_OPTIONS-}" ]; then skip "keeper RSS under 1 MB" "sanitizer build (${rss} kB with its shadow memory)"
	elif [ -n "$rss" ] && [ "$rss" -lt 1024 ]; then pass "keeper RSS under 1 MB (${rss} kB)"; else
		fail "keeper RSS under 1 MB" "VmRSS ${rss:-?} kB"; fi
	t_eq "keeper: own session, cwd /" "/" "$(readlink "/proc/$pid/cwd")"
	t_eq "keeper holds no fd" "0" "$(ls "/proc/$pid/fd" | wc -l)"
	t_ok "a second run joins the same keeper" $Q run "$BB" true
	t_eq "still one keeper" 1 "$(keepers)"
	t_ok "keeper stop" $Q system keeper stop
	t_contains "keeper stopped" "stopped" "$(cat "$T_OUT")"
	sleep 0.2
	t_eq "keeper gone" 0 "$(keepers)"
	t_ok "the next run restarts it" $Q run "$BB" cat /proc/self/uid_map
	t_eq "restarted keeper maps the full range" 2 "$(wc -l <"$T_OUT")"
	# A stale record (dead pid, or a pid now used by another process) must not be trusted.
	pid=$(sed -n 's/^running: pid \([0-9]*\),.*/\1/p' <($Q system keeper status))
	kill -9 "$pid"
	sleep 0.2
	t_ok "a dead keeper is replaced" $Q run "$BB" true
	local rec=$TMPD/user/run/qimg/keeper
	sleep 30 &
	local other=$!
	# Point the record at a live process that is not the keeper.
	echo "$other 1 1" >"$rec" && chown "$TUSER_UID:$TUSER_GID" "$rec"
	t_ok "a record naming another process is ignored" $Q run "$BB" true
	kill "$other" 2>/dev/null
	t_ok "the keeper dir is private" test "$(stat -c %a "$TMPD/user/run/qimg")" = 700
	# A keeper started by qimg-pull (its heap, threads and libcurl/libcrypto pages) is as small.
	$Q system keeper stop >/dev/null 2>&1
	QIMG_STORE=$USER_HOME/fresh-store t_ok "pull starts the keeper (to unpack)" $Q pull -q --tls-verify=false "$BB"
	pid=$(sed -n 's/^running: pid \([0-9]*\),.*/\1/p' <($Q system keeper status))
	rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
	if [ -n "${ASAN_OPTIONS-}" ]; then skip "keeper from pull: RSS under 1 MB" "sanitizer build"
	elif [ -n "$rss" ] && [ "$rss" -lt 1024 ]; then pass "keeper from pull: RSS under 1 MB (${rss} kB)"; else
		fail "keeper from pull: RSS under 1 MB" "VmRSS ${rss:-?} kB"; fi
	t_ok "runs join the keeper pull started" $Q run "$BB" true
	t_eq "still one keeper" 1 "$(keepers)"
}

t_keeper_dir() {
	[ "$MODE" = user ] || return 0
	# Without XDG_RUNTIME_DIR: /tmp/qimg-<uid>, refused when it is not ours.
	local d=/tmp/qimg-$TUSER_UID
	if [ -e "$d" ] && [ "$(stat -c %U "$d")" != "$TUSER" ]; then
		skip "keeper in /tmp" "$d exists and is not the test user's"
		return
	fi
	t_ok "keeper without XDG_RUNTIME_DIR" env -u XDG_RUNTIME_DIR QIMG_STORE="$USER_STORE" HOME="$USER_HOME" \
		setpriv --reuid="$TUSER_UID" --regid="$TUSER_GID" --init-groups -- "$QIMG" run "$BB" true
	t_eq "its dir is /tmp/qimg-UID, mode 700" "700 $TUSER" "$(stat -c '%a %U' "$d")"
	env -u XDG_RUNTIME_DIR setpriv --reuid="$TUSER_UID" --regid="$TUSER_GID" --init-groups -- "$QIMG" system keeper stop >/dev/null 2>&1
	rm -rf "$d"
	mkdir -m 0755 "$d" # owned by root, not private: a trap
	t_fail "a /tmp/qimg-UID that is not ours is refused" env -u XDG_RUNTIME_DIR QIMG_STORE="$USER_STORE" \
		HOME="$USER_HOME" setpriv --reuid="$TUSER_UID" --regid="$TUSER_GID" --init-groups -- "$QIMG" run "$BB" true
	t_contains "refusal says why" "not a private directory" "$(cat "$T_ERR")"
	rmdir "$d"
}

t_no_subuid() {
	[ "$MODE" = user ] || return 0
	# A uid with no /etc/subuid entry (and no passwd entry): with the full map forced, a clear error, not a
	# half-mapped namespace; by default the single-id mode (issue 15), which refuses the copied store's layers
	# (unpacked for another map) and says how to unpack them again.
	local d=$TMPD/nosub uid=4321
	grep -q "^$uid:" /etc/subuid && { skip "no subuid entry" "uid $uid has one here"; return; }
	mkdir -p "$d" && cp -a "$USER_STORE" "$d/store" && chown -R "$uid:$uid" "$d"
	t_fail "run without a subuid range, full map forced" env -i PATH=/usr/bin:/bin XDG_RUNTIME_DIR="$d" \
		QIMG_STORE="$d/store" QIMG_USERNS=subuid setpriv --reuid=$uid --regid=$uid --clear-groups -- "$QIMG" run "$BB" true
	t_contains "names the missing entry" "no /etc/subuid entry for user uid $uid" "$(cat "$T_ERR")"
	t_eq "exit status 125" 125 "$T_RC"
	t_fail "run without a subuid range: another map's layers refused" env -i PATH=/usr/bin:/bin XDG_RUNTIME_DIR="$d" \
		QIMG_STORE="$d/store" setpriv --reuid=$uid --regid=$uid --clear-groups -- "$QIMG" run "$BB" true
	t_contains "says the single-id mode and the fix" "but this run is in the single-id mode" "$(cat "$T_ERR")"
}

both t_setup
both t_signals
both t_kill9
both t_parallel
both t_fds
both t_stdin
both t_tty
both t_keeper
both t_keeper_dir
both t_no_subuid
