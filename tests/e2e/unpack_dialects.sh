# Tar dialects (issue 13 §4): layers written by the tar writers real images come from: Go's archive/tar (docker,
# buildah, BuildKit, ko, apko: tests/tools/gotar, formats auto/PAX/GNU, PAX global records), GNU tar (gnu,
# oldgnu, posix, incremental), bsdtar (pax, gnutar), Python's tarfile (PAX with a global header, GNU), Apache
# Commons Compress (jib: PAX long names and numbers; GNU long names and star base-256 numbers), and
# hand-made edge headers (tests/tools/dialects.py: two PAX headers in a row, a PAX global header, NULs and
# non-UTF-8 bytes in names, links and user names, GNU long names and long links on a hard link). The entries
# carry long names and links, base-256 numbers (ids 3000000, a 1960 mtime), non-UTF-8 and UTF-8 names, a
# setuid file, a fifo, a hard link to a long name. Each is loaded as a one-layer image and exported; the tree
# must equal the one podman 4.3 (containers/storage, Go's reader) unpacks from the same tar (`podman import`,
# `podman image mount`, vfs storage in a temp dir), except where docs/SECURITY.md ("Tar dialects") decides
# otherwise; those cases assert qimg's documented result. Root compares with podman; rootless loads each layer
# too: the same tree (owners mapped back), or, for layers with ids beyond the subuid range, a refusal naming
# the file. star is not covered (not in Debian 12).

command -v podman >/dev/null || { skip "unpack_dialects" "podman not installed (make deps)"; exit 0; }
command -v go >/dev/null || { skip "unpack_dialects" "go not installed (make deps)"; exit 0; }
CC_JAR=/usr/share/java/commons-compress.jar
command -v java >/dev/null && [ -f "$CC_JAR" ] ||
	{ skip "unpack_dialects" "java or commons-compress not installed (make deps)"; exit 0; }

D=$TMPD/dialects
TARS=$D/tars
mkdir -p "$TARS" "$D/src" "$D/go"
TOOLS=$QIMG_TESTS_DIR/tools

# gotar, built once per source version into the cache
GOTAR=$QIMG_TEST_CACHE/gotar-$(sha256sum <"$TOOLS/gotar/main.go" | cut -c1-16)
if [ ! -x "$GOTAR" ]; then
	mkdir -p "$QIMG_TEST_CACHE"
	GOCACHE=$D/go/cache GOPATH=$D/go/path GO111MODULE=off go build -o "$GOTAR.tmp" "$TOOLS/gotar/main.go" \
		>"$D/go.log" 2>&1 && mv "$GOTAR.tmp" "$GOTAR" || { fail "unpack_dialects: build gotar" "$(tail -3 "$D/go.log")"; exit 0; }
fi

# The corpus: one tar per writer and dialect, from the same entries.
build_corpus() {
	"$PY" "$TOOLS/dialects.py" tree "$D/src" && "$PY" "$TOOLS/dialects.py" python "$TARS" &&
		"$PY" "$TOOLS/dialects.py" edge "$TARS" && "$GOTAR" write "$TARS" || return 1
	local f
	for f in gnu oldgnu; do tar -C "$D/src" --format="$f" --numeric-owner -cf "$TARS/gnutar-$f.tar" . || return 1; done
	tar -C "$D/src" --format=posix --numeric-owner -cf "$TARS/gnutar-posix.tar" . &&
		tar -C "$D/src" --format=gnu --numeric-owner -g "$D/snapshot" -cf "$TARS/gnutar-incremental.tar" . &&
		bsdtar -C "$D/src" --format pax --numeric-owner -cf "$TARS/bsdtar-pax.tar" . 2>/dev/null &&
		bsdtar -C "$D/src" --format gnutar --numeric-owner -cf "$TARS/bsdtar-gnutar.tar" . 2>/dev/null &&
		java -cp "$CC_JAR" "$TOOLS/ccompress/TarWrite.java" "$TARS"
}
build_corpus >"$D/corpus.log" 2>&1 || { fail "unpack_dialects: build the corpus" "$(tail -3 "$D/corpus.log")"; exit 0; }
"$PY" "$TOOLS/corpus_layouts.py" --plain "$D/layouts" "$TARS"/*.tar >"$D/names" 2>"$D/layouts.log" ||
	{ fail "unpack_dialects: layouts" "$(tail -3 "$D/layouts.log")"; exit 0; }
chmod -R a+rX "$D"
mapfile -t NAMES <"$D/names"

# podman's tree of each tar (or "REFUSED: why"), as root, with its storage under $D.
# (podman wants a runroot path of at most 50 characters)
PMRUN=$(mktemp -d /tmp/qimg-pm.XXXXXX) || { fail "unpack_dialects: podman runroot" "mktemp failed"; exit 0; }
PODMAN=(podman --root "$D/podman/root" --runroot "$PMRUN" --storage-driver vfs --cgroup-manager cgroupfs
	--events-backend none)
at_exit '"${PODMAN[@]}" image unmount --all >/dev/null 2>&1; rm -rf "$PMRUN"'
for n in "${NAMES[@]}"; do
	if "${PODMAN[@]}" import "$TARS/$n.tar" "localhost/dialect/$n:1" >/dev/null 2>"$D/$n.podman-err" &&
		m=$("${PODMAN[@]}" image mount "localhost/dialect/$n:1" 2>>"$D/$n.podman-err"); then
		tree_list "$m" >"$D/$n.podman"
		[ ! -e "$m/old-mtime" ] || stat -c %Y "$m/old-mtime" >"$D/$n.podman-mtime"
	else
		echo "REFUSED: $(tail -1 "$D/$n.podman-err")" >"$D/$n.podman"
	fi
done
t_ok "podman unpacks the GNU tar layer" grep -q '^/dir/setuid' "$D/gnutar-gnu.podman"

# Where qimg and podman differ, and what qimg does instead (docs/SECURITY.md, "Tar dialects"):
#   NUL in a PAX path/linkpath/uname record: Go refuses the layer ("invalid tar header"); qimg (libarchive) ends the
#     value at the NUL. Both keep everything inside the layer.
#   GNU incremental ('D' dumpdir entries): podman fails ("unlinkat .//: device or resource busy"); qimg reads them
#     as the directories they are (GNU tar's own reading): the same tree as the plain GNU tar.
#   a hard link entry with its own mode and owner (Go writer): podman applies them to the shared inode; qimg keeps
#     the linked file's (GNU tar and bsdtar do too).
#   an mtime before 1970 (base-256 in GNU headers, negative in PAX): podman sets 0 (the epoch); qimg the header's.
declare -A EXPECT=(
	[edge-nul-pax]=$'/ok\tf\t0644\t0:0'
	[edge-nul-linkpath]=$'/sym\tl\t0777\t0:0\t-\t-\ttarget'
	[edge-uname-nul]=$'/named\tf\t0644\t5:6'
)

# qimg_tree NAME OUT: load the layout of NAME and export it into OUT (the tree listed into OUT.list).
qimg_tree() {
	local opts=()
	$Q load -q -i "$D/layouts/$1" >/dev/null 2>"$2.err" && $Q export "localhost/corpus/$1:1" "$2" 2>>"$2.err" ||
		return 1
	if [ "$MODE" = user ] && [ -n "$TUSER" ]; then
		opts=(--uidmap "$TUSER_UID:$TUSER_SUBUID" --gidmap "$TUSER_GID:$TUSER_SUBGID")
	fi
	tree_list "$2" "${opts[@]}" >"$2.list"
}

# without_hardlink_meta LIST: the listing without the mode and owner of the hard-to-long inode's two names
without_hardlink_meta() { awk -F'\t' -v OFS='\t' '/^\/hard-to-long\t|^\/d+\/e+\/f+\t/ { $3 = "*"; $4 = "*" } 1' "$1"; }

t_dialects() {
	local n out ref pm qm
	out=$([ "$MODE" = root ] && echo "$D/out-root" || echo "$USER_HOME/dialects")
	as_root mkdir -p "$out" && as_root chmod 0777 "$out"
	for n in "${NAMES[@]}"; do
		ref=$D/$n.podman
		if [ "$MODE" = user ] && [ -n "$TUSER" ] && [[ $n != edge-* ]]; then # the writers' tars hold /bigid
			t_fail "$n: rootless load refuses ids beyond the subuid range" qimg_tree "$n" "$out/$n"
			t_contains "$n: the refusal names the file and its ids" "bigid: owner 3000000:3000001 is not mapped" \
				"$(cat "$out/$n.err")"
			continue
		fi
		t_ok "$n: load and export" qimg_tree "$n" "$out/$n" || continue
		t_eq "$n: never (null)" "" "$(grep -F '(null)' "$out/$n.err")"
		if [ -f "$D/$n.podman-mtime" ]; then # (tree.py lists no times)
			pm=$(cat "$D/$n.podman-mtime") qm=$(stat -c %Y "$out/$n/old-mtime")
			# podman clamps times before 1970 to 0; qimg keeps what the header says (bsdtar's gnutar writes 0)
			echo "# $n [$MODE]: old-mtime: qimg $qm, podman $pm"
			t_ok "$n: the 1960 mtime (base-256 or PAX) as the header says (podman: 0)" \
				test "$qm" = "$pm" -a "$n" = bsdtar-gnutar -o "$qm" = -315619200 -a "$pm" = 0
		fi
		case $n in
		edge-nul-pax | edge-nul-linkpath | edge-uname-nul)
			t_contains "$n: podman refuses the layer" "invalid tar header" "$(cat "$ref")"
			t_contains "$n: qimg ends the value at the NUL" "${EXPECT[$n]}" "$(cat "$out/$n.list")"
			;;
		gnutar-incremental)
			t_contains "$n: podman fails on the dumpdir entries" "REFUSED" "$(cat "$ref")"
			t_ok "$n: qimg's tree is the plain GNU tar's" tree_compare "$D/gnutar-gnu.podman" "$out/$n"
			;;
		go-*)
			without_hardlink_meta "$ref" >"$out/$n.expect"
			t_ok "$n: the same tree as podman's (but the hard link's metadata)" \
				"$PY" "$QIMG_ROOT/tests/fixtures/tree.py" "$out/$n" --expect "$out/$n.expect" \
				$([ "$MODE" = user ] && [ -n "$TUSER" ] && echo --uidmap "$TUSER_UID:$TUSER_SUBUID" --gidmap "$TUSER_GID:$TUSER_SUBGID")
			t_contains "$n: podman gave the inode the link entry's mode and owner" $'/hard-to-long\th\t0000\t0:0' "$(cat "$ref")"
			t_contains "$n: qimg keeps the linked file's" $'/hard-to-long\th\t0600\t33:33' "$(cat "$out/$n.list")"
			;;
		*)
			t_ok "$n: the same tree as podman's" diff -u "$ref" "$out/$n.list"
			;;
		esac
	done
}

# The non-UTF-8 PAX names Go writes for latin-1 file names were refused before ("Pathname can't be converted").
t_latin1() {
	t_contains "go-pax: the latin-1 name is kept as raw bytes" '/caf\xe9-latin1' "$(cat "$D/go-pax.podman")"
	t_ok "edge-pax-latin1: loads (warning, not an error)" $Q load -q -i "$D/layouts/edge-pax-latin1"
	t_contains "edge-pax-latin1: the warning names the entry" "caf" "$(cat "$T_ERR")"
}

MODE=root Q="as_root $QIMG" t_latin1
both t_dialects
