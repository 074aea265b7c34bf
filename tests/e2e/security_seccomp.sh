# The default seccomp filter (run/seccomp.c, docker's default profile), root and rootless: each denied family
# answers the profile's errno inside the container (tests/tools/sysprobe.c, static, makes the calls), the same
# calls behave as the kernel decides with --security-opt seccomp=unconfined, capability-guarded calls are let
# through with --cap-add, and ordinary work still runs (threads, fork+exec, fchmodat2; in the debian fixture:
# apt-get install of a compiler, compiling and running a threaded program, useradd + su).

registry_start plain || { fail "security_seccomp: registry_start" "did not start"; exit 0; }

PROBE=$TMPD/sysprobe
cc -static -O2 -pthread -o "$PROBE" "$QIMG_TESTS_DIR/tools/sysprobe.c" 2>"$TMPD/sysprobe.err" ||
	{ fail "security_seccomp: build sysprobe" "$(head -n 3 "$TMPD/sysprobe.err")"; exit 0; }
"$PY" - "$TMPD" "$PROBE" <<'EOF_PY'
import json, subprocess, sys
tmp, probe = sys.argv[1], sys.argv[2]
applets = sorted(set(subprocess.run(["/bin/busybox", "--list"], stdout=subprocess.PIPE, text=True).stdout.split()) - {"busybox"})
base = [{"path": "bin", "type": "dir", "mode": "0755"}, {"path": "tmp", "type": "dir", "mode": "1777"},
        {"path": "etc", "type": "dir", "mode": "0755"},
        {"path": "etc/passwd", "content": "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/:/bin/sh\n", "mode": "0644"},
        {"path": "etc/group", "content": "root:x:0:\napp:x:1000:\n", "mode": "0644"},
        {"path": "bin/busybox", "from": "/bin/busybox", "mode": "0755"},
        {"path": "bin/sysprobe", "from": probe, "mode": "0755"}]
base += [{"path": "bin/" + a, "type": "symlink", "target": "busybox"} for a in applets]
json.dump({"config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]}, "layers": [{"entries": base}]}, open(tmp + "/probe.json", "w"))
EOF_PY
fixture_custom sysprobe "$TMPD/probe.json" sec/sysprobe:1 >"$TMPD/push.log" 2>&1 ||
	{ fail "security_seccomp: push sysprobe" "$(tail -n 3 "$TMPD/push.log")"; exit 0; }
IMG=$REG/sec/sysprobe:1

# Each probe with the errno the default profile gives it (EPERM: docker's default; ENOSYS: clone3, which libc
# then retries as clone; a number above the profile's table; the x32 ABI).
DENIED="keyctl=EPERM add_key=EPERM request_key=EPERM kexec_load=EPERM kexec_file_load=EPERM
open_by_handle_at=EPERM bpf=EPERM perf_event_open=EPERM userfaultfd=EPERM unshare_user=EPERM clone_newns=EPERM
clone3=ENOSYS mount=EPERM personality_norandom=EPERM vsock=EPERM io_uring_setup=EPERM mseal=ENOSYS
x32_getpid=ENOSYS"
ALLOWED="getpid threads fork_exec personality_query unix_socket"

probe() { # PROBE-ARGS...: run sysprobe in the container with the run options in $OPTS; `result PROBE` reads it
	# shellcheck disable=SC2086 # OPTS is a word list
	t_ok "run sysprobe ${OPTS:-(default)}" $Q run $OPTS "$IMG" sysprobe "$@"
	cp "$T_OUT" "$TMPD/probe.out"
}
result() { awk -v p="$1" '$1 == p { $1 = ""; sub(/^ /, ""); print; exit }' "$TMPD/probe.out"; }

t_setup() {
	t_ok "pull sysprobe" $Q pull -q --tls-verify=false "$IMG"
}

t_denied() {
	local kv names=""
	for kv in $DENIED; do names="$names ${kv%=*}"; done
	# shellcheck disable=SC2086
	OPTS= probe $names
	for kv in $DENIED; do
		t_eq "${kv%=*}: ${kv#*=} from the filter" "${kv#*=}" "$(result "${kv%=*}")"
	done
}

t_allowed() {
	# shellcheck disable=SC2086
	OPTS= probe $ALLOWED fchmodat2
	local p
	for p in $ALLOWED; do t_eq "$p: allowed" ok "$(result "$p")"; done
	t_eq "fchmodat2 (Linux 6.6, in docker's list): the kernel's ENOENT" ENOENT "$(result fchmodat2)"
}

t_unconfined() {
	OPTS="--security-opt seccomp=unconfined" probe keyctl perf_event_open bpf clone3 mseal personality_norandom \
		io_uring_setup
	# The kernel's own answers: a keyring id (or its own refusal, never our EPERM), EFAULT for a NULL attr,
	# EINVAL for an unknown bpf command, a clone3 without args or an mseal with unknown flags.
	local k
	k=$(result keyctl)
	t_ok "keyctl: the kernel's answer without the filter ($k)" test -n "$k" -a "$k" != EPERM
	t_eq "perf_event_open: the kernel's EFAULT" EFAULT "$(result perf_event_open)"
	t_eq "bpf: the kernel's EINVAL" EINVAL "$(result bpf)"
	t_eq "clone3: the kernel's EINVAL" EINVAL "$(result clone3)"
	t_eq "mseal: the kernel's EINVAL" EINVAL "$(result mseal)"
	t_eq "personality(ADDR_NO_RANDOMIZE): allowed" ok "$(result personality_norandom)"
	if [ "$(cat /proc/sys/kernel/io_uring_disabled 2>/dev/null || echo 0)" = 0 ]; then
		t_eq "io_uring_setup: allowed by the kernel" ok "$(result io_uring_setup)"
	fi
}

t_caps() {
	# A capability the container holds lets its calls through, as docker's "includes: caps".
	OPTS="--cap-add SYS_ADMIN" probe bpf mount clone_newns unshare_user keyctl
	t_eq "bpf with CAP_SYS_ADMIN: the kernel's EINVAL" EINVAL "$(result bpf)"
	t_eq "mount with CAP_SYS_ADMIN: the kernel's ENODEV" ENODEV "$(result mount)"
	t_eq "clone(CLONE_NEWNS) with CAP_SYS_ADMIN" ok "$(result clone_newns)"
	t_eq "keyctl stays denied with CAP_SYS_ADMIN" EPERM "$(result keyctl)"
	OPTS="--cap-add PERFMON" probe perf_event_open
	t_eq "perf_event_open with CAP_PERFMON: the kernel's EFAULT" EFAULT "$(result perf_event_open)"
	# The filter is built for the command's set: a dropped capability is no key.
	OPTS="--cap-drop ALL" probe getpid threads keyctl
	t_eq "--cap-drop ALL: getpid" ok "$(result getpid)"
	t_eq "--cap-drop ALL: keyctl" EPERM "$(result keyctl)"
}

t_i386() {
	OPTS="--security-opt seccomp=unconfined" probe i386_getpid
	if [ "$(result i386_getpid)" != ok ]; then
		skip "i386 int 0x80 refused" "this kernel has no IA32 emulation (unconfined: $(result i386_getpid))"
		return
	fi
	OPTS= probe i386_getpid
	t_eq "i386 int 0x80: ENOSYS (foreign ABI)" ENOSYS "$(result i386_getpid)"
}

t_nonroot_user() {
	# A non-root command keeps its setuid path (no no_new_privs forced) and gets the same filter.
	t_ok "-u app: keyctl denied, NoNewPrivs 0" $Q run -u app "$IMG" sh -c \
		'sysprobe keyctl getpid; grep NoNewPrivs /proc/self/status; grep Seccomp: /proc/self/status'
	t_eq "-u app: filter on, no_new_privs off" "keyctl EPERM getpid ok NoNewPrivs: 0 Seccomp: 2" \
		"$(tr '\n\t' '  ' <"$T_OUT" | tr -s ' ' | sed 's/ $//')"
}

t_options() {
	t_fail "seccomp=PROFILE.json is refused" $Q run --security-opt seccomp=/etc/profile.json "$IMG" true
	t_contains "names the option" "--security-opt seccomp=/etc/profile.json: custom seccomp profiles are not supported" "$(cat "$T_ERR")"
	t_eq "exit status 125" 125 "$T_RC"
	t_ok "seccomp=unconfined: Seccomp 0" $Q run --security-opt seccomp=unconfined "$IMG" grep Seccomp: /proc/self/status
	t_eq "no filter" "Seccomp: 0" "$(tr '\t' ' ' <"$T_OUT" | tr -s ' ')"
}

both t_setup
both t_denied
both t_allowed
both t_unconfined
both t_caps
both t_i386
both t_nonroot_user
both t_options

# Ordinary work in a real distribution under the filter (rootless, one run; run_debian.sh runs more of it):
# apt-get install of a compiler, a threaded program compiled and run, useradd + su.
t_debian() {
	fixture_push debian sec/debian:12 >"$TMPD/deb.log" 2>&1 || { fail "push debian" "$(tail -n 3 "$TMPD/deb.log")" && return; }
	t_ok "pull debian" $Q pull -q --tls-verify=false "$REG/sec/debian:12" || return
	t_ok "apt-get install tcc, compile + run a threaded program, useradd + su" $Q run --net host \
		"$REG/sec/debian:12" sh -c '
		apt-get update -qq && apt-get install -y -qq --no-install-recommends tcc libc6-dev >/dev/null &&
		printf "%s\n" "#include <pthread.h>" "#include <stdio.h>" "static void *f(void *a) { return a; }" \
			"int main(void) { pthread_t t; void *r; pthread_create(&t, 0, f, \"threads-ok\");" \
			"pthread_join(t, &r); puts(r); return 0; }" >/tmp/t.c &&
		tcc -pthread -o /tmp/t /tmp/t.c && /tmp/t &&
		useradd -m -u 1500 alice && su alice -c "id -u" && grep Seccomp: /proc/self/status'
	t_eq "compiled, ran, su worked, under the filter" "threads-ok 1500 Seccomp: 2" \
		"$(tr '\n\t' '  ' <"$T_OUT" | tr -s ' ' | sed 's/ $//')"
}
MODE=user Q="as_user $QIMG" t_debian
