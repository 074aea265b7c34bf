# The fuzz targets (tests/fuzz/fuzz_*.c) built with the C compiler and tests/fuzz/driver.c under ASan+UBSan (no
# clang or libFuzzer needed) and run once over every seed (tests/fuzz/corpus/<name>) and every input that once
# crashed (tests/fuzz/regress/<name>): `make fuzz-regress`, one result per target. fuzz_unpack also sends each
# layer through the public ovl_unpack_layers (forked workers) and checks both paths agree.

if ! make -C "$QIMG_ROOT" --no-print-directory fuzz-regress-build >"$TMPD/build.log" 2>&1; then
	fail "fuzz-regress: build the targets" "$(grep -E ' error: |undefined reference|\*\*\*' "$TMPD/build.log" | head -n 5)"
	exit 0
fi
pass "fuzz-regress: build the targets"
make -C "$QIMG_ROOT" --no-print-directory fuzz-regress >"$TMPD/run.log" 2>&1
n=0
while IFS= read -r line; do
	case $line in
	"ok fuzz-regress "*)
		name=${line#ok } && pass "${name%%:*} (${name#*: })" && n=$((n + 1)) ;;
	"FAIL fuzz-regress "*)
		name=${line#FAIL } && fail "${name%%:*}" "${name#*: } $(grep -A3 -E 'ERROR|runtime error|fuzz_' "$TMPD/run.log" | head -n 6)"
		n=$((n + 1)) ;;
	esac
done <"$TMPD/run.log"
t_eq "fuzz-regress: every target ran" "$(ls "$QIMG_ROOT"/tests/fuzz/fuzz_*.c | wc -l)" "$n"
