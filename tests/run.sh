#!/usr/bin/env bash
# Runs qimg's tests: the unit binaries in $QIMG_UNIT_DIR, then every tests/e2e/*.sh in its own bash process.
# usage: tests/run.sh [FILTER...]   (or TESTS="a b"): run only unit binaries and e2e files whose name contains
# one of the filters; the filter "unit" selects every unit binary. Prints "PASS name", "FAIL name: why" or "SKIP name: why" per test ("#" lines are notes)
# and ends with "N passed, N failed, N skipped"; exits 1 when anything failed. Needs no TTY and no stdin.
# Env: QIMG_BIN (qimg under test), QIMG_UNIT_DIR, QIMG_TEST_FILE_TIMEOUT (900 s), QIMG_UNIT_TIMEOUT (300 s),
# QIMG_TEST_JOBS (e2e files run at once; default the number of cores, at most 4),
# QIMG_TEST_VERBOSE=1 (show every file's whole output, not only the tail of a failing one),
# QIMG_E2E_DIR (where the e2e files are; tests/e2e; the harness's own self-test points it elsewhere).
set -u
exec </dev/null
TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$(dirname "$TESTS_DIR")" || exit 2
FILE_TIMEOUT=${QIMG_TEST_FILE_TIMEOUT:-900}
UNIT_TIMEOUT=${QIMG_UNIT_TIMEOUT:-300}
FILTERS=("$@")
[ ${#FILTERS[@]} -gt 0 ] || read -ra FILTERS <<<"${TESTS:-}"
unset QIMG_STORE QIMG_RESULTS QIMG_TEST_TAG QIMG_TEST_TMPROOT
export QIMG_BIN=${QIMG_BIN:-$PWD/qimg}
RUNROOT=$(mktemp -d /tmp/qimg-run.XXXXXX) || exit 2
chmod 0755 "$RUNROOT"
npass=0 nfail=0 nskip=0

cleanup() {
	/usr/bin/python3 "$TESTS_DIR/registry/reap.py" --umount "$RUNROOT" >/dev/null 2>&1
	rm -rf "$RUNROOT"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

report() { # STATUS NAME [WHY]
	case $1 in
	PASS) npass=$((npass + 1)) && echo "PASS $2" ;;
	SKIP) nskip=$((nskip + 1)) && echo "SKIP $2: ${3:-skipped}" ;;
	*) nfail=$((nfail + 1)) && echo "FAIL $2: ${3:-failed}" ;;
	esac
}

selected() { # NAME: no filters, or one of them is a substring of NAME
	local f
	[ ${#FILTERS[@]} -eq 0 ] && return 0
	for f in "${FILTERS[@]}"; do
		case $1 in *"$f"*) return 0 ;; esac
	done
	return 1
}

selected_unit() { # NAME of a unit binary: selected, or the filter "unit" was given
	local f
	for f in "${FILTERS[@]}"; do [ "$f" = unit ] && return 0; done
	selected "$1"
}

note_tail() { # FILE [N]: the last lines of FILE as "#" notes, without the result lines already reported
	[ -s "$1" ] && grep -Ev '^(PASS|FAIL|SKIP) ' "$1" | tail -n "${2:-25}" | sed 's/^/#   /'
}

status_text() { # RC TIMEOUT ELAPSED-MS: how a process run under `timeout -k` ended, in words
	if { [ "$1" -eq 124 ] || [ "$1" -eq 137 ]; } && [ "$3" -ge $(($2 * 1000)) ]; then
		echo "timed out after ${2}s"
	elif [ "$1" -gt 128 ]; then
		echo "killed by signal $(($1 - 128)) ($(kill -l $(($1 - 128)) 2>/dev/null))"
	else
		echo "exited with status $1"
	fi
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# A unit binary prints "ok NAME", "FAIL NAME: why" or "skip NAME: why" per case.
run_unit() { # BINARY
	local bin=$1 base out err rc line name why nres=0 nfails=0 start ms
	base=$(basename "$bin")
	out=$RUNROOT/$base.out err=$RUNROOT/$base.err
	start=$(now_ms)
	timeout -k 10 "$UNIT_TIMEOUT" "$bin" >"$out" 2>"$err"
	rc=$?
	ms=$(($(now_ms) - start))
	while IFS= read -r line; do
		case $line in
		"ok "*) report PASS "$base:${line#ok }" ;;
		"FAIL "* | "skip "*)
			name=${line#* } why=
			case $name in *": "*) why=${name#*: } name=${name%%: *} ;; esac
			if [ "${line%% *}" = skip ]; then report SKIP "$base:$name" "$why"; else
				report FAIL "$base:$name" "$why"
				nfails=$((nfails + 1))
			fi
			;;
		*) continue ;;
		esac
		nres=$((nres + 1))
	done <"$out"
	if [ "$rc" -ne 0 ] && [ "$nfails" -eq 0 ]; then
		report FAIL "$base" "$(status_text "$rc" "$UNIT_TIMEOUT" "$ms") after $nres results"
	elif [ "$rc" -eq 0 ] && [ "$nres" -eq 0 ]; then
		report FAIL "$base" "printed no results"
	fi
	if [ "$rc" -ne 0 ] || [ "$nfails" -ne 0 ]; then note_tail "$err" 15; fi
}

# Each e2e file runs in its own bash with lib.sh sourced first, a results file of its own, a tag in its
# environment that marks every process it starts, and a temp root of its own; afterwards nothing tagged
# may still run and nothing may stay mounted.
run_e2e() { # N FILE
	local file=$2 base tag root res log rc start ms leaks mounts had_fail status name why
	base=$(basename "$file" .sh)
	tag=qimg-test-$$-$1-$RANDOM
	root=$RUNROOT/$1-$base res=$RUNROOT/$1-$base.results log=$RUNROOT/$1-$base.log
	mkdir -p "$root" && chmod 0755 "$root" && : >"$res"
	start=$(now_ms)
	QIMG_TEST_TAG=$tag QIMG_RESULTS=$res QIMG_TEST_TMPROOT=$root timeout -k 10 "$FILE_TIMEOUT" \
		bash -c '_qimg_lib=$1; shift; . "$_qimg_lib" && . "$0"' "$(realpath "$file")" "$TESTS_DIR/lib.sh" >"$log" 2>&1
	rc=$?
	ms=$(($(now_ms) - start))
	echo "# $file: $((ms / 1000)).$(printf '%03d' $((ms % 1000)))s"
	had_fail=0
	while IFS=$'\t' read -r status name why; do
		[ -n "$status" ] || continue
		report "$status" "$name" "$why"
		[ "$status" = FAIL ] && had_fail=1
	done <"$res"
	if [ "$rc" -ne 0 ] && { [ "$had_fail" -eq 0 ] || [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; }; then
		report FAIL "$base" "$(status_text "$rc" "$FILE_TIMEOUT" "$ms")"
		had_fail=1
	elif [ ! -s "$res" ]; then
		report FAIL "$base" "reported no results"
		had_fail=1
	fi
	leaks=$(/usr/bin/python3 "$TESTS_DIR/registry/reap.py" --tag "$tag" --kill 2>&1)
	if [ -n "$leaks" ]; then
		report FAIL "$base:no-leftover-processes" "still running after the file ended: $(echo "$leaks" | tr '\n' ';')"
	fi
	mounts=$(/usr/bin/python3 "$TESTS_DIR/registry/reap.py" --umount "$root" 2>&1)
	if [ -n "$mounts" ]; then
		report FAIL "$base:no-leftover-mounts" "still mounted after the file ended: $(echo "$mounts" | tr '\n' ';')"
	fi
	if [ "${QIMG_TEST_VERBOSE:-0}" = 1 ]; then note_tail "$log" 100000; elif [ "$had_fail" -ne 0 ]; then note_tail "$log"; fi
	rm -rf "$root"
}

if [ -n "${QIMG_UNIT_DIR-}" ] && [ -d "$QIMG_UNIT_DIR" ]; then
	for bin in "$QIMG_UNIT_DIR"/test_*; do
		[ -f "$bin" ] && [ -x "$bin" ] && selected_unit "$(basename "$bin")" && run_unit "$bin"
	done
fi

# E2e files run QIMG_TEST_JOBS at a time (default: the number of cores, at most 4): each is isolated (own temp
# root, store, registry ports, process tag). A file's report goes to a file of its own and is printed, and counted,
# in file order as soon as it and every file before it have ended.
JOBS=${QIMG_TEST_JOBS:-$(nproc 2>/dev/null || echo 2)}
[ "$JOBS" -ge 1 ] 2>/dev/null || JOBS=1
[ "$JOBS" -le 4 ] || JOBS=4
files=()
for file in "${QIMG_E2E_DIR:-tests/e2e}"/*.sh; do
	[ -f "$file" ] && selected "$(basename "$file")" && files+=("$file")
done

flush_reports() { # print and count the reports of files next_out.. that have ended, in order
	local line
	while [ "$next_out" -lt "${#files[@]}" ] && [ -e "$RUNROOT/$next_out.done" ]; do
		while IFS= read -r line; do
			case $line in
			"PASS "*) npass=$((npass + 1)) ;;
			"FAIL "*) nfail=$((nfail + 1)) ;;
			"SKIP "*) nskip=$((nskip + 1)) ;;
			esac
			printf '%s\n' "$line"
		done <"$RUNROOT/$next_out.report"
		next_out=$((next_out + 1))
	done
}

next_out=0 running=0
for i in "${!files[@]}"; do
	while [ "$running" -ge "$JOBS" ]; do
		wait -n
		running=$((running - 1))
		flush_reports
	done
	(
		npass=0 nfail=0 nskip=0
		run_e2e "$((i + 1))" "${files[$i]}" >"$RUNROOT/$i.report" 2>&1
		: >"$RUNROOT/$i.done"
	) &
	running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
	wait -n
	running=$((running - 1))
	flush_reports
done
flush_reports

echo "$npass passed, $nfail failed, $nskip skipped"
[ "$nfail" -eq 0 ]
