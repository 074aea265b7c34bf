# Configurable unpack limits (docs/SECURITY.md, Limits): `pull` and `load` take --max-layer-size, --max-ratio and
# --max-entries, or QIMG_MAX_LAYER_SIZE / QIMG_MAX_RATIO / QIMG_MAX_ENTRIES (the option wins). One layer of ~6 MiB
# (1 MiB random, 5 MiB zeros, 40 small files; ~1 MiB compressed, ratio ~6:1) is refused under each lowered limit
# with an error naming the limit and how to raise it, leaving nothing half-written in the store, and accepted with
# the limit raised. Bad values are usage errors. Root and rootless stores (the rootless unpacker runs in the
# user namespace).

registry_start plain || { fail "unpack_limits: registry_start plain" "did not start"; exit 0; }

SPEC=$TMPD/limits.json
{
	printf '{"config": {"Cmd": ["/x"]}, "layers": [{"compression": "gzip", "entries": ['
	for i in $(seq 40); do printf '{"path": "small/f%d", "content": "%d\\n"}, ' "$i" "$i"; done
	printf '{"path": "big-random", "size": 1048576, "fill": "random", "seed": 1}, '
	printf '{"path": "big-zero", "size": 5242880, "fill": "zero"}]}]}\n'
} >"$SPEC"
fixture_custom limits "$SPEC" limits/big:latest >"$TMPD/limits.log" 2>&1 ||
	{ fail "unpack_limits: fixture builds and pushes" "$(tail -3 "$TMPD/limits.log")"; exit 0; }
IMG=$REG/limits/big:latest
# The same image as an OCI layout for `load`, readable by the test user.
LAYOUT=$TMPD/limits-oci
cp -r "$(fixture_layout limits)" "$LAYOUT" && chmod -R a+rX "$LAYOUT" ||
	{ fail "unpack_limits: copy the layout" "cp failed"; exit 0; }

# with_env K=V... CMD...: CMD (a shell function too, as $Q is) with the variables exported.
with_env() {
	local kv=()
	while [[ $1 == *=* ]]; do kv+=("$1") && shift; done
	(export "${kv[@]}" && "$@")
}


# Every blob hashes to its name (a refused unpack leaves verified blobs only), tmp/ is empty, no spec, no ref.
store_untouched() {
	local s=$1 f bad=""
	for f in "$s"/blobs/sha256/*; do
		[ -e "$f" ] || continue
		[ "$(sha256sum <"$f" | cut -d' ' -f1)" = "$(basename "$f")" ] || bad="$bad $(basename "$f")"
	done
	[ -z "$bad" ] || { echo "blobs that do not match their name:$bad"; return 1; }
	[ -z "$(ls -A "$s/tmp" 2>/dev/null)" ] || { echo "tmp/: $(ls -A "$s/tmp")"; return 1; }
	[ -z "$(ls -A "$s/specs" 2>/dev/null)" ] || { echo "specs/: $(ls -A "$s/specs")"; return 1; }
	[ -z "$(ls -A "$s/images" 2>/dev/null)" ] || { echo "images/: $(ls -A "$s/images")"; return 1; }
	[ -z "$(ls -A "$s/layers" 2>/dev/null)" ] || { echo "layers/: $(ls -A "$s/layers")"; return 1; }
}

# limit_refused NAME NEEDLE HINT CMD...: CMD fails naming NEEDLE and HINT (how to raise it); the store is left clean.
# The error stays in $LAST_ERR.
limit_refused() {
	local name=$1 needle=$2 hint=$3
	shift 3
	t_fail "$name: refused" "$@"
	t_contains "$name: the error says which limit" "$needle" "$(cat "$T_ERR")"
	t_contains "$name: the error says how to raise it" "$hint" "$(cat "$T_ERR")"
	t_eq "$name: one line" 1 "$(grep -c . "$T_ERR")"
	LAST_ERR=$(cat "$T_ERR")
	t_ok "$name: nothing half-written in the store" store_untouched "$(store_dir)"
}

t_limits() {
	local s
	s=$(store_dir)
	limit_refused "pull --max-layer-size 4M" "layer too large" "--max-layer-size" \
		$Q pull -q --tls-verify=false --max-layer-size 4M "$IMG"
	t_contains "pull --max-layer-size 4M: the error names the size" "more than 4194304 bytes" "$LAST_ERR"
	limit_refused "QIMG_MAX_LAYER_SIZE=4M pull" "layer too large" "QIMG_MAX_LAYER_SIZE" \
		with_env QIMG_MAX_LAYER_SIZE=4M $Q pull -q --tls-verify=false "$IMG"
	limit_refused "pull --max-ratio 2" "decompression bomb refused: ratio above 2:1" "--max-ratio" \
		$Q pull -q --tls-verify=false --max-ratio=2 "$IMG"
	limit_refused "QIMG_MAX_RATIO=2 pull" "ratio above 2:1" "QIMG_MAX_RATIO" \
		with_env QIMG_MAX_RATIO=2 $Q pull -q --tls-verify=false "$IMG"
	limit_refused "pull --max-entries 10" "more than 10 entries" "--max-entries" \
		$Q pull -q --tls-verify=false --max-entries 10 "$IMG"
	limit_refused "QIMG_MAX_ENTRIES=10 pull" "more than 10 entries" "QIMG_MAX_ENTRIES" \
		with_env QIMG_MAX_ENTRIES=10 $Q pull -q --tls-verify=false "$IMG"
	limit_refused "load --max-layer-size 4M" "layer too large" "--max-layer-size" \
		$Q load -q --max-layer-size 4M -i "$LAYOUT"
	limit_refused "QIMG_MAX_ENTRIES=10 load" "more than 10 entries" "QIMG_MAX_ENTRIES" \
		with_env QIMG_MAX_ENTRIES=10 $Q load -q -i "$LAYOUT"
	limit_refused "load --max-ratio 2" "ratio above 2:1" "--max-ratio" $Q load -q --max-ratio 2 -i "$LAYOUT"

	# Usage errors: exit 2, one line naming the option or variable and the value.
	local bad
	for bad in "--max-layer-size 0" "--max-layer-size -1G" "--max-layer-size 2X" "--max-layer-size nan" \
		"--max-ratio 0" "--max-ratio 1.5" "--max-entries -3" "--max-entries 99999999999999999999"; do
		# shellcheck disable=SC2086
		t_eq "pull $bad: usage error (2)" 2 "$($Q pull --tls-verify=false $bad "$IMG" >/dev/null 2>"$TMPD/err"; echo $?)"
		t_contains "pull $bad: says why" "${bad#* }\" (a positive" "$(cat "$TMPD/err")"
	done
	t_eq "QIMG_MAX_RATIO=abc: usage error (2)" 2 \
		"$(with_env QIMG_MAX_RATIO=abc $Q pull --tls-verify=false "$IMG" >/dev/null 2>"$TMPD/err"; echo $?)"
	t_contains "QIMG_MAX_RATIO=abc: names the variable" 'QIMG_MAX_RATIO: invalid number "abc"' "$(cat "$TMPD/err")"
	t_eq "load --max-entries x: usage error (2)" 2 \
		"$($Q load --max-entries x -i "$LAYOUT" >/dev/null 2>"$TMPD/err"; echo $?)"
	t_ok "the refusals and usage errors left the store clean" store_untouched "$s"

	# Raised: the option wins over a lower variable; the layer is unpacked whole.
	t_ok "load with the limits raised (option over variable)" with_env QIMG_MAX_LAYER_SIZE=4M QIMG_MAX_RATIO=2 \
		QIMG_MAX_ENTRIES=10 $Q load -q --max-layer-size 6.5M --max-ratio 10 --max-entries 50 --tag localhost/lim:1 \
		-i "$LAYOUT"
	t_eq "load raised: one layer" 1 "$(find "$s/layers" -mindepth 1 -maxdepth 1 -type d | wc -l)"
	$Q rmi localhost/lim:1 >/dev/null 2>&1
	$Q gc -q >/dev/null 2>&1
	t_eq "gc after rmi: no layer" 0 "$(find "$s/layers" -mindepth 1 -maxdepth 1 -type d | wc -l)"
	t_ok "pull with the limits raised (option over variable)" with_env QIMG_MAX_LAYER_SIZE=4M QIMG_MAX_ENTRIES=10 \
		$Q pull -q --tls-verify=false --max-layer-size 7M --max-entries 45 "$IMG"
	local l
	l=$(find "$s/layers" -mindepth 1 -maxdepth 1 -type d | head -n 1)
	t_eq "pull raised: the big files are whole" "1048576 5242880 40" \
		"$(stat -c %s "$l/big-random" "$l/big-zero" 2>/dev/null | paste -sd' ') $(ls "$l/small" 2>/dev/null | wc -l)"
	t_ok "pull raised: tmp/ empty" test -z "$(ls -A "$s/tmp" 2>/dev/null)"
}

both t_limits
