# Sparse files (issue 13 §3): a layer holding one 2 GiB sparse file (a few KB of data) in every sparse tar
# dialect (GNU tar: gnu, oldgnu, posix sparse 0.0/0.1/1.0; bsdtar: pax) unpacks with its holes kept, and
# `qimg export` copies it with its holes kept (disk use ~ the data, not the apparent size). The apparent size of
# a layer's files is bounded (--max-apparent-size / QIMG_MAX_APPARENT_SIZE): a 60 GB sparse file is refused on
# pull and on load before anything is written. `load` keeps the holes of a sparse tar entry or a sparse file of a
# layout directory, and `save` writes the all-zero blocks of a sparse blob as holes (same bytes). Root and
# rootless stores. Disk use is asserted in blocks, never time.

registry_start plain || { fail "unpack_sparse: registry_start plain" "did not start"; exit 0; }

SPARSE=("$PY" "$QIMG_TESTS_DIR/tools/sparse.py")
W=$TMPD/sparse
mkdir -p "$W/src" "$W/huge" && chmod 0755 "$W"
BIG=$((2 << 30))
SLACK=$((1 << 20)) # disk use allowed for a file whose data is a few KB (extents, filesystem blocks)
"${SPARSE[@]}" make "$W/src/big" 2G && echo small >"$W/src/small" &&
	"${SPARSE[@]}" make "$W/huge/huge" 60G || { fail "unpack_sparse: make the sparse files" "sparse.py failed"; exit 0; }
touch -d @1577836800 "$W/src/big" "$W/src/small" "$W/huge/huge"

DIALECTS=(gnu oldgnu posix-0.0 posix-0.1 posix-1.0 bsdtar-pax)
# sparse_tar DIALECT SRCDIR OUT FILE...: a tar of FILEs written by that writer, with sparse entries.
sparse_tar() {
	local d=$1 src=$2 out=$3
	shift 3
	case $d in
	gnu | oldgnu) tar -C "$src" --sparse --format="$d" --numeric-owner -cf "$out" "$@" ;;
	posix-*) tar -C "$src" --sparse --format=posix --sparse-version="${d#posix-}" --numeric-owner -cf "$out" "$@" ;;
	bsdtar-pax) bsdtar -C "$src" --format pax --numeric-owner -cf "$out" "$@" ;;
	esac
}

# image NAME TAR: a one-layer image of TAR (gzip) pushed as sparse/NAME:latest; LAYOUT_NAME its layout.
image() {
	printf '{"config": {"Cmd": ["/x"]}, "layers": [{"tar_file": "%s", "compression": "gzip"}]}\n' "$2" \
		>"$W/$1.json"
	fixture_custom "sparse-$1" "$W/$1.json" "sparse/$1:latest" >"$W/$1.log" 2>&1 ||
		{ fail "$1: fixture builds and pushes" "$(tail -3 "$W/$1.log")"; return 1; }
}

for d in "${DIALECTS[@]}"; do
	sparse_tar "$d" "$W/src" "$W/$d.tar" big small || { fail "$d: tar writes it" "tar failed"; continue; }
	# The writer really wrote a sparse entry: the tar holds the data, not 2 GiB of zeros.
	t_ok "$d: the tar is small (a sparse entry)" test "$(stat -c %s "$W/$d.tar")" -lt "$SLACK"
	image "$d" "$d.tar"
done
sparse_tar posix-1.0 "$W/huge" "$W/huge.tar" huge && image huge huge.tar
# The same 2 GiB layer again under another name, for the limit refusals (its layer must not be present yet).
bsdtar -C "$W/src" --format pax -cf "$W/limit.tar" small big && image limit limit.tar
# Their layouts for `load`, readable by the test user.
for n in huge limit; do
	cp -r "$(fixture_layout "sparse-$n")" "$W/$n-oci" && chmod -R a+rX "$W/$n-oci" ||
		fail "$n: copy the layout" "cp failed"
done

# with_env K=V... CMD...: CMD (a shell function too, as $Q is) with the variables exported.
with_env() {
	local kv=()
	while [[ $1 == *=* ]]; do kv+=("$1") && shift; done
	(export "${kv[@]}" && "$@")
}

work_dir() { if [ "$MODE" = root ]; then echo "$TMPD/out-root"; else echo "$USER_HOME/out"; fi; }

layer_dir() { # IMAGE: the (single) layer dir of sparse/IMAGE, pulled already
	local s d
	s=$(store_dir)
	d=$($Q pull -q --tls-verify=false "$REG/sparse/$1:latest" 2>/dev/null)
	awk -v s="$s" '$1 == "layer" { print s "/layers/" $2; exit }' "$s/specs/${d#sha256:}"
}

small_on_disk() { # FILE: apparent size 2 GiB, disk use under SLACK
	local a
	a=$("${SPARSE[@]}" alloc "$1") || return 1
	[ "$(stat -c %s "$1")" = "$BIG" ] || { echo "size $(stat -c %s "$1"), want $BIG"; return 1; }
	[ "$a" -lt "$SLACK" ] || { echo "$a bytes on disk"; return 1; }
}

t_dialects() {
	local d l out
	out=$(work_dir)
	as_root mkdir -p "$out" && as_root chmod 0777 "$out"
	for d in "${DIALECTS[@]}"; do
		t_ok "$d: pull" $Q pull -q --tls-verify=false "$REG/sparse/$d:latest" || continue
		l=$(layer_dir "$d")
		t_ok "$d: the layer's file keeps its holes" small_on_disk "$l/big"
		t_ok "$d: the layer's file has the source's bytes" "${SPARSE[@]}" same "$W/src/big" "$l/big"
		t_eq "$d: the small file" small "$(cat "$l/small" 2>&1)"
		t_ok "$d: export" $Q export --own "$REG/sparse/$d:latest" "$out/$d" || continue
		t_ok "$d: the exported file keeps its holes" small_on_disk "$out/$d/big"
		t_ok "$d: the exported file has the source's bytes" "${SPARSE[@]}" same "$W/src/big" "$out/$d/big"
		t_eq "$d: the exported small file" small "$(cat "$out/$d/small" 2>&1)"
	done
}

# refused NAME CMD...: CMD fails with one line naming the file, its apparent size and the limit's knobs; nothing
# new in layers/ and nothing in tmp/.
refused() {
	local name=$1 s before
	shift
	s=$(store_dir)
	before=$(ls "$s/layers" 2>/dev/null | sort | paste -sd' ')
	t_fail "$name: refused" "$@"
	t_contains "$name: the error says why" "apparent size" "$(cat "$T_ERR")"
	t_contains "$name: the error says how to raise the limit" "--max-apparent-size or QIMG_MAX_APPARENT_SIZE" \
		"$(cat "$T_ERR")"
	t_eq "$name: one line" 1 "$(grep -c . "$T_ERR")"
	t_eq "$name: nothing new in layers/" "$before" "$(ls "$s/layers" 2>/dev/null | sort | paste -sd' ')"
	t_eq "$name: nothing left in tmp/" "" "$(ls -A "$s/tmp" 2>/dev/null)"
}

t_limits() {
	local huge=$W/huge-oci limit=$W/limit-oci
	refused "60 GB apparent: pull" $Q pull -q --tls-verify=false "$REG/sparse/huge:latest"
	t_contains "60 GB apparent: pull names the file and its size" "huge: apparent size 64424509440 bytes" \
		"$(cat "$T_ERR")"
	t_contains "60 GB apparent: pull names the default limit" "limit of 17179869184 bytes" "$(cat "$T_ERR")"
	refused "60 GB apparent: load" $Q load -q -i "$huge"
	t_contains "60 GB apparent: load names the file" "huge: apparent size 64424509440 bytes" "$(cat "$T_ERR")"
	refused "pull --max-apparent-size 1G" $Q pull -q --tls-verify=false --max-apparent-size 1G \
		"$REG/sparse/limit:latest"
	t_contains "pull --max-apparent-size 1G: the limit" "limit of 1073741824 bytes" "$(cat "$T_ERR")"
	refused "QIMG_MAX_APPARENT_SIZE=1G pull" with_env QIMG_MAX_APPARENT_SIZE=1G $Q pull -q --tls-verify=false \
		"$REG/sparse/limit:latest"
	refused "load --max-apparent-size 1G" $Q load -q --max-apparent-size 1G -i "$limit"
	refused "QIMG_MAX_APPARENT_SIZE=1G load" with_env QIMG_MAX_APPARENT_SIZE=1G $Q load -q -i "$limit"
	t_fail "bad value: usage error" $Q pull -q --max-apparent-size 2X "$REG/sparse/limit:latest"
	t_eq "bad value: exit 2" 2 "$T_RC"
	t_contains "bad value: says which" 'invalid size "2X"' "$(cat "$T_ERR")"
	t_ok "within the limit: pulled" $Q pull -q --tls-verify=false --max-apparent-size 3G "$REG/sparse/limit:latest"
}

# load and save with sparse blobs: an uncompressed layer of a 64 MiB file of zeros (dense in the tar), its blob
# made sparse on disk (fallocate --dig-holes), loaded from the directory and from a sparse tar of it.
DENSE=$W/dense
mkdir -p "$DENSE" && "${SPARSE[@]}" make "$DENSE/zeros" 64M && touch -d @1577836800 "$DENSE/zeros" &&
	tar -C "$DENSE" --numeric-owner -cf "$W/dense.tar" zeros &&
	printf '{"config": {"Cmd": ["/x"]}, "layers": [{"tar_file": "dense.tar", "compression": "none"}]}\n' \
		>"$W/dense.json" && fixture_custom sparse-dense "$W/dense.json" >"$W/dense.log" 2>&1 ||
	fail "dense: fixture builds" "$(tail -3 "$W/dense.log")"
HOLEY=$W/holey-layout
if cp -r "$(fixture_layout sparse-dense)" "$HOLEY"; then
	for b in "$HOLEY"/blobs/sha256/*; do fallocate --dig-holes "$b"; done
	chmod -R a+rX "$HOLEY"
	tar -C "$HOLEY" --sparse --format=posix -cf "$W/holey.tar" . && chmod a+r "$W/holey.tar"
fi
DENSE_BLOB=$(find "$HOLEY/blobs/sha256" -size +60M -printf '%f\n' | head -1)

t_load_save() {
	local s out b
	s=$(store_dir)
	out=$(work_dir)
	t_ok "the layout's layer blob is sparse on disk" test "$("${SPARSE[@]}" alloc "$HOLEY/blobs/sha256/$DENSE_BLOB")" -lt "$SLACK"
	t_ok "load a sparse oci-archive" $Q load -q -i "$W/holey.tar" --tag sparse/holey-tar:1
	b=$s/blobs/sha256/$DENSE_BLOB
	t_ok "load from a tar: the stored blob keeps its holes" test "$("${SPARSE[@]}" alloc "$b")" -lt "$SLACK"
	t_ok "load from a tar: the stored blob has the layout's bytes" "${SPARSE[@]}" same "$HOLEY/blobs/sha256/$DENSE_BLOB" "$b"
	as_root rm -f "$b" # (root removes it for either store; load must copy it again)
	t_ok "load a sparse layout directory" $Q load -q -i "$HOLEY" --tag sparse/holey-dir:1
	t_ok "load from a directory: the stored blob keeps its holes" test "$("${SPARSE[@]}" alloc "$b")" -lt "$SLACK"
	t_ok "load from a directory: the blob's digest" test "$(sha256sum <"$b" | cut -d' ' -f1)" = "$DENSE_BLOB"
	t_ok "save to a file" $Q save -o "$out/saved.tar" sparse/holey-dir:1
	t_ok "the saved archive keeps the blob's holes" test "$("${SPARSE[@]}" alloc "$out/saved.tar")" -lt $((8 << 20))
	t_ok "the saved archive is larger than its disk use" test "$(stat -c %s "$out/saved.tar")" -gt $((64 << 20))
	$Q save sparse/holey-dir:1 >"$W/saved-$MODE-pipe.tar" 2>"$W/save.err"
	# (standard output gets the last block padded to libarchive's 10240 bytes, as before)
	t_ok "saved to a file and to a pipe: the same bytes" cmp -n "$(stat -c %s "$out/saved.tar")" "$out/saved.tar" \
		"$W/saved-$MODE-pipe.tar"
	rm -f "$W/saved-$MODE-pipe.tar"
}

both t_limits
both t_dialects
both t_load_save
