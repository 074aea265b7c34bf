# Error text (issue 13 §4): no error may print "(null)", and each names what was wrong. Every input of the
# fuzz_unpack corpus (hand-made hostile tars, the e2e fixtures' layers, inputs the fuzzer kept) is loaded as the
# layer of a one-image OCI layout (the unpacker's messages; root and rootless) and, as root, as the archive `load`
# reads itself (load's own tar reader). A failure must print one non-empty reason and never "(null)". A PAX header cut inside its
# records (libarchive 3.6 fails there without a message: bsdtar prints "bsdtar: (null)") is refused on pull and
# on load naming the damage. Root and rootless stores.

registry_start plain || { fail "security_error_text: registry_start plain" "did not start"; exit 0; }

C=$TMPD/corpus
mkdir -p "$C"
shopt -s nullglob
"$PY" "$QIMG_TESTS_DIR/tools/corpus_layouts.py" "$C" "$QIMG_TESTS_DIR"/fuzz/corpus/unpack/* \
	"$QIMG_TESTS_DIR"/fuzz/regress/unpack/* >"$C.names" 2>"$C.err" ||
	{ fail "security_error_text: corpus layouts" "$(tail -3 "$C.err")"; exit 0; }
chmod -R a+rX "$C"
shopt -u nullglob
mapfile -t NAMES <"$C.names"
CUT=pax-cut-in-records

# The cut PAX header as an image on the registry (layer used as is).
printf '{"config": {"Cmd": ["/x"]}, "layers": [{"tar_file": "%s.tar", "compression": "gzip"}]}\n' "$CUT" >"$C/cut.json"
fixture_custom errtext-cut "$C/cut.json" errtext/cut:latest >"$C/cut.log" 2>&1 ||
	fail "cut PAX header: fixture builds and pushes" "$(tail -3 "$C/cut.log")"

# Every failing load of the corpus says why, without "(null)"; counts go to the test names.
t_corpus() {
	local n what bad=0 empty=0 failed=0 ok=0 input out
	for n in "${NAMES[@]}"; do
		for what in layer archive; do
			[ "$what" = archive ] && [ "$MODE" = user ] && continue # (load's own reader: the same code as root)
			if [ "$what" = layer ]; then input=$C/$n; else input=$C/$n.tar; fi
			if out=$($Q load -q -i "$input" 2>&1 >/dev/null); then
				ok=$((ok + 1))
				continue
			fi
			failed=$((failed + 1))
			case $out in *"(null)"*) bad=$((bad + 1)) && echo "# $what $n: $out" ;; esac
			[ -n "${out#qimg: }" ] || { empty=$((empty + 1)) && echo "# $what $n: empty error"; }
		done
	done
	echo "# corpus [$MODE]: ${#NAMES[@]} inputs, $ok loads succeeded, $failed failed"
	t_ok "corpus: some loads fail (the corpus is hostile)" test "$failed" -gt 0
	t_eq "corpus: no error prints (null)" 0 "$bad"
	t_eq "corpus: no error is empty" 0 "$empty"
}

t_cut() {
	t_fail "cut PAX header: pull fails" $Q pull -q --tls-verify=false "$REG/errtext/cut:latest"
	t_contains "cut PAX header: pull names the damage" "read tar: damaged or truncated tar data" "$(cat "$T_ERR")"
	t_fail "cut PAX header: load of the layout fails" $Q load -q -i "$C/$CUT"
	t_contains "cut PAX header: load names the damage" "read tar: damaged or truncated tar data" "$(cat "$T_ERR")"
	t_fail "cut PAX header as the archive: load fails" $Q load -q -i "$C/$CUT.tar"
	t_contains "cut PAX header as the archive: load names the file and the damage" \
		"$CUT.tar: damaged or truncated tar data" "$(cat "$T_ERR")"
	t_eq "cut PAX header: never (null)" "" "$(grep -F '(null)' "$T_ERR")"
}

both t_cut
both t_corpus
