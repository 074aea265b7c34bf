# Self-tests of tests/run.sh and the result helpers of lib.sh, on fake unit binaries and fake e2e files.

fake=$TMPD/fake
mkdir -p "$fake/unit" "$fake/e2e"

# Unit binaries: one good, one with a failing case, one that crashes half-way, one that prints nothing.
printf '#!/bin/sh\necho "ok alpha"\necho "skip beta: not here"\necho "noise line"\n' >"$fake/unit/test_good"
printf '#!/bin/sh\necho "ok one"\necho "FAIL two: wrong answer"\nexit 1\n' >"$fake/unit/test_bad"
printf '#!/bin/sh\necho "ok before"\nkill -SEGV $$\n' >"$fake/unit/test_crash"
printf '#!/bin/sh\nexit 0\n' >"$fake/unit/test_silent"
printf 'not executable\n' >"$fake/unit/test_data.txt"
chmod +x "$fake/unit"/test_good "$fake/unit"/test_bad "$fake/unit"/test_crash "$fake/unit"/test_silent

cat >"$fake/e2e/a_results.sh" <<'EOF'
pass "p1"
fail "f1" "because"
skip "s1" "not today"
t_ok "ok-true" true
t_ok "ok-false" sh -c 'echo oops >&2; exit 3'
t_fail "fail-false" false
t_fail "fail-true" true
t_fail "fail-crash" sh -c 'kill -SEGV $$'
t_fail "fail-asan" sh -c 'echo "==1==ERROR: AddressSanitizer: heap-use-after-free" >&2; exit 1'
t_eq "eq-same" "a b" "a b"
t_eq "eq-diff" "a" "b"
t_contains "contains" "ell" "hello"
pass "$(printf 'multi\nline\tname')"
probe() { pass "in both"; }
both probe
EOF
cat >"$fake/e2e/b_timeout.sh" <<'EOF'
pass "before the hang"
sleep 600
EOF
cat >"$fake/e2e/c_leak.sh" <<'EOF'
registry_start plain
echo "$REG" >"$FAKE_OUT/leaked-reg"
trap - EXIT # a careless test file: its registry outlives it unless run.sh steps in
pass "started"
EOF
cat >"$fake/e2e/d_syntax.sh" <<'EOF'
pass "first"
if then
EOF
printf '' >"$fake/e2e/e_empty.sh"
printf 'pass "filtered"\n' >"$fake/e2e/zz_other.sh"

FAKE_OUT=$fake QIMG_UNIT_DIR=$fake/unit QIMG_E2E_DIR=$fake/e2e QIMG_TEST_FILE_TIMEOUT=5 \
	bash "$QIMG_TESTS_DIR/run.sh" test_ _results _timeout _leak _syntax _empty >"$TMPD/run.out" 2>&1
rc=$?
out=$(grep -v '^#' "$TMPD/run.out")

t_eq "run.sh exits 1 when something failed" 1 "$rc"
t_eq "run.sh ends with the summary line" "14 passed, 13 failed, 2 skipped" "$(tail -n 1 "$TMPD/run.out")"
expect_line() { # NAME LINE: LINE is among run.sh's result lines
	if grep -qxF -- "$2" <<<"$out"; then pass "$1"; else fail "$1" "no line '$2' in: $(tr '\n' ';' <<<"$out")"; fi
}
expect_line "unit ok" "PASS test_good:alpha"
expect_line "unit skip" "SKIP test_good:beta: not here"
expect_line "unit FAIL" "FAIL test_bad:two: wrong answer"
expect_line "unit crash counts as a failure" "FAIL test_crash: killed by signal 11 (SEGV) after 1 results"
expect_line "unit cases before a crash count" "PASS test_crash:before"
expect_line "unit with no results fails" "FAIL test_silent: printed no results"
t_eq "non-executable files are not run" "" "$(grep test_data <<<"$out")"
expect_line "pass" "PASS p1"
expect_line "fail" "FAIL f1: because"
expect_line "skip" "SKIP s1: not today"
expect_line "t_ok true" "PASS ok-true"
expect_line "t_ok false shows stderr" "FAIL ok-false: exit 3: oops"
expect_line "t_fail false" "PASS fail-false"
expect_line "t_fail true" "FAIL fail-true: unexpectedly succeeded"
expect_line "t_fail on a crash" "FAIL fail-crash: crashed (exit 139)"
expect_line "t_fail on a sanitizer report" \
	"FAIL fail-asan: crashed (exit 1): ==1==ERROR: AddressSanitizer: heap-use-after-free"
expect_line "t_eq same" "PASS eq-same"
expect_line "t_eq diff" "FAIL eq-diff: expected 'a', got 'b'"
expect_line "t_contains" "PASS contains"
expect_line "names stay on one line" "PASS multi | line | name"
expect_line "both: root suffix" "PASS in both[root]"
expect_line "both: user suffix" "PASS in both[user]"
expect_line "a hanging file is stopped at its timeout" "FAIL b_timeout: timed out after 5s"
expect_line "results before the hang count" "PASS before the hang"
expect_line "a file with a syntax error fails" "FAIL d_syntax: exited with status 2"
expect_line "an empty file fails" "FAIL e_empty: reported no results"
expect_line "filters select files" "PASS started"
t_eq "filters leave other files out" "" "$(grep filtered <<<"$out")"
t_contains "a process that outlives its file is reported" "FAIL c_leak:no-leftover-processes: still running" "$out"
t_contains "... and named" "docker-registry" "$(grep no-leftover-processes <<<"$out")"
t_fail "... and stopped" curl -sf --max-time 3 "http://$(cat "$fake/leaked-reg")/v2/"
t_eq "e2e files are reported in file order (they run QIMG_TEST_JOBS at a time)" \
	"a_results b_timeout c_leak d_syntax e_empty" \
	"$(sed -n 's|^# [^ ]*/e2e/\([a-z_]*\)\.sh: [0-9.]*s$|\1|p' "$TMPD/run.out" | tr '\n' ' ' | sed 's/ $//')"
t_ok "run.sh runs with no TTY and stdin closed" bash -c \
	"QIMG_E2E_DIR=$fake/e2e bash '$QIMG_TESTS_DIR/run.sh' zz_other <&- >'$TMPD/notty.out' 2>&1 && tail -n 1 '$TMPD/notty.out' | grep -qx '1 passed, 0 failed, 0 skipped'"
