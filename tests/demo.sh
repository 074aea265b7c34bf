#!/usr/bin/env bash
# `make demo`: a loopback registry, the busybox fixture pushed to it, then qimg pull and run against it, each
# command printed before it runs, with a throw-away store; everything is stopped and removed at the end.
set -u
exec </dev/null
export QIMG_RESULTS=/dev/null # lib.sh's result bookkeeping is not wanted here
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[ -x "$QIMG" ] || { echo "demo: no qimg binary at $QIMG (run make first)" >&2 && exit 1; }
failed=0

show() { # CMD...: print CMD as typed, run it, note a failure and go on
	local a line=""
	for a in "$@"; do
		[[ $a =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]] || a="'${a//\'/\'\\\'\'}'" # shell-quote for reading
		line+="${line:+ }$a"
	done
	echo
	echo "\$ $line"
	"$@" || { echo "(exit status $?)" && failed=1; }
}

echo "== starting a registry on loopback and pushing the busybox test image to it"
registry_start plain || exit 1
fixture_push busybox demo/busybox:latest || exit 1
IMG=$REG/demo/busybox:latest
echo "registry: $REG_URL   image: $IMG ($FIXTURE_DIGEST)"

echo
echo "== as $(id -un), store $ROOT_STORE"
export QIMG_STORE=$ROOT_STORE
show "$QIMG" pull --tls-verify=false "$IMG"
show "$QIMG" images
show "$QIMG" run "$IMG" cat /etc/os-release
show "$QIMG" run "$IMG" sh -c 'echo "hello from $(hostname), pid $$, as $(id -un)"; ls /'
show "$QIMG" run "$IMG" sh -c 'echo scratch >/tmp/x && cat /tmp/x'
show "$QIMG" run "$IMG" sh -c 'cat /tmp/x 2>&1 || echo "(/tmp/x is gone: every run starts from the image)"'
unset QIMG_STORE

if [ -n "$TUSER" ]; then
	echo
	echo "== rootless, as $TUSER (uid $TUSER_UID, subuids $TUSER_SUBUID+65536), store $USER_STORE"
	show as_user "$QIMG" pull --tls-verify=false "$IMG"
	show as_user "$QIMG" run "$IMG" sh -c 'id; cat /proc/self/uid_map'
	show as_user "$QIMG" run "$IMG" sh -c 'touch /etc/owned && stat -c "%n %u:%g" /etc/owned /home/app'
fi

echo
if [ "$failed" -eq 0 ]; then echo "demo: all commands succeeded"; else echo "demo: some commands failed"; fi
exit "$failed"
