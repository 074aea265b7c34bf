# Self-tests of the fixtures (checked with umoci, skopeo, tar and chroot, not qimg) and of the test user.

BUILD=$QIMG_TESTS_DIR/fixtures/build.py

manifest_of() { # LAYOUT [PLATFORM-ARCH]: path of the image manifest blob (through the index for multiarch)
	"$PY" - "$1" "${2-}" <<-'EOF'
		import json, os, sys
		lay, arch = sys.argv[1], sys.argv[2]
		blob = lambda d: os.path.join(lay, "blobs", *d.split(":"))
		desc = json.load(open(os.path.join(lay, "index.json")))["manifests"][0]
		doc = json.load(open(blob(desc["digest"])))
		if "manifests" in doc:
		    desc = [m for m in doc["manifests"] if m["platform"]["architecture"] == arch][0]
		print(blob(desc["digest"]))
	EOF
}
jq_file() { jq -r "$1" "$2" 2>/dev/null; } # FILTER FILE

unpack() { # NAME: umoci unpack the fixture into $TMPD/NAME (rootfs in $TMPD/NAME/rootfs)
	rm -rf "${TMPD:?}/$1"
	umoci unpack --image "$(fixture_layout "$1"):$1" "$TMPD/$1" >"$TMPD/umoci-$1.log" 2>&1
}

test_layouts() {
	local n layout
	for n in busybox multilayer multiarch schema2 zstd; do
		layout=$(fixture_layout "$n")
		if [ -z "$layout" ] || [ ! -f "$layout/index.json" ]; then fail "$n: fixture_layout builds a layout" "no layout" && continue; fi
		pass "$n: fixture_layout builds a layout"
		t_eq "$n: fixture_layout is cached" "$layout" "$(fixture_layout "$n")"
		t_ok "$n: skopeo reads the layout" skopeo inspect --raw "oci:$layout:$n"
		rm -rf "$TMPD/rebuild"
		t_eq "$n: the build is reproducible" "$(jq_file '.manifests[0].digest' "$layout/index.json")" \
			"$("$PY" "$BUILD" build --builtin "$n" "$TMPD/rebuild" "$n")"
	done
}

test_busybox() {
	local root=$TMPD/busybox/rootfs m
	t_ok "busybox: umoci unpacks it" unpack busybox
	t_eq "busybox: /bin/sh is busybox" busybox "$(readlink "$root/bin/sh")"
	t_ok "busybox: it runs in a chroot" chroot "$root" /bin/sh -c 'id -u && ls /etc/passwd && cat /etc/qimg-fixture'
	t_eq "busybox: sh, id, cat work" $'0\n/etc/passwd\nbusybox' "$(cat "$T_OUT")"
	t_eq "busybox: passwd has root, app (1000) and nobody" "root:0 app:1000 nobody:65534" \
		"$(awk -F: '{ print $1 ":" $3 }' "$root/etc/passwd" | paste -sd ' ')"
	m=$(manifest_of "$(fixture_layout busybox)")
	local cfg
	cfg=$(fixture_layout busybox)/blobs/sha256/$(jq_file '.config.digest' "$m" | cut -d: -f2)
	t_eq "busybox: Cmd is [\"sh\"]" '["sh"]' "$(jq -c '.config.Cmd' "$cfg")"
	t_contains "busybox: Env has PATH" "PATH=/usr/local/sbin" "$(jq -c '.config.Env' "$cfg")"
	t_eq "busybox: diff_ids match the layers" 1 "$(jq '.rootfs.diff_ids | length' "$cfg")"
	local applet missing=""
	for applet in sh ls cat id echo true false sleep ps kill hostname mount env stat find sha256sum wc head touch \
		mkdir rm chown ln readlink; do
		[ -L "$root/bin/$applet" ] || missing="$missing $applet"
	done
	t_eq "busybox: the usual applets are linked" "" "$missing"
}

test_multilayer() {
	local root=$TMPD/multilayer/rootfs expected=$QIMG_TESTS_DIR/fixtures/multilayer.expected
	t_ok "multilayer: umoci unpacks it" unpack multilayer
	t_ok "multilayer: umoci's merged tree matches multilayer.expected" tree_compare "$expected" "$root"
	t_eq "multilayer: has 3 layers" 3 "$(jq '.layers | length' "$(manifest_of "$(fixture_layout multilayer)")")"
	echo changed >"$root/a/keep.txt"
	rm "$root/opq/new"
	touch "$root/a/gone.txt"
	tree_compare "$expected" "$root" >"$TMPD/cmp.out"
	t_eq "multilayer: tree_compare reports each difference" "+ /a/gone.txt|~ /a/keep.txt:|- /opq/new" \
		"$(awk '{ print $1, $2 }' "$TMPD/cmp.out" | paste -sd '|')"
	local names
	names=$("$PY" - "$(fixture_layout multilayer)" "$(manifest_of "$(fixture_layout multilayer)")" <<-'EOF'
		import json, os, sys, tarfile
		lay, man = sys.argv[1], sys.argv[2]
		for i, l in enumerate(json.load(open(man))["layers"]):
		    with tarfile.open(os.path.join(lay, "blobs", *l["digest"].split(":"))) as t:
		        for m in t.getmembers():
		            tag = ("opq" if m.name.endswith(".wh..wh..opq") else "wh" if "/.wh." in "/" + m.name
		                   else "hl" if m.islnk() else "xattr" if any(k.startswith("SCHILY.xattr.") for k in m.pax_headers)
		                   else "fifo" if m.isfifo() else "")
		            if tag:
		                print("%d:%s:%s" % (i + 1, tag, m.name))
	EOF
	)
	t_eq "multilayer: the layers carry whiteouts, an opaque dir, hardlinks, a fifo, a PAX xattr" \
		"1:hl:hl/link1 1:hl:hl/link2 1:fifo:special/fifo 1:xattr:special/xattr 2:wh:a/.wh.gone.txt 2:wh:a/.wh.recreate.txt 2:opq:opq/.wh..wh..opq 2:wh:.wh.wdir 3:hl:hl3/b 3:wh:layer2/.wh.file 3:wh:special/.wh.dangling" \
		"$(echo $names)"
}

test_multiarch() {
	local layout idx
	layout=$(fixture_layout multiarch)
	idx=$layout/blobs/sha256/$(jq_file '.manifests[0].digest' "$layout/index.json" | cut -d: -f2)
	t_eq "multiarch: an index of linux/amd64, linux/arm64/v8, linux/arm/v7" "linux/amd64 linux/arm64/v8 linux/arm/v7" \
		"$(jq -r '[.manifests[].platform | [.os, .architecture, .variant // empty] | join("/")] | join(" ")' "$idx")"
	t_eq "multiarch: three distinct images" 3 "$(jq -r '.manifests[].digest' "$idx" | sort -u | wc -l)"
	fixture_push multiarch || { fail "multiarch: push" "failed" && return; }
	t_eq "multiarch: the registry serves the index" "application/vnd.oci.image.index.v1+json" \
		"$(skopeo inspect --raw --tls-verify=false "docker://$REG/multiarch:latest" | jq -r .mediaType)"
	t_eq "multiarch: arm64 resolves to its own image" "arm64" "$(skopeo --override-arch arm64 inspect \
		--tls-verify=false --config "docker://$REG/multiarch:latest" | jq -r .architecture)"
	t_eq "multiarch: pushed digest is the layout's" "$(jq_file '.manifests[0].digest' "$layout/index.json")" "$FIXTURE_DIGEST"
}

test_schema2() {
	fixture_push schema2 || { fail "schema2: push" "failed" && return; }
	skopeo inspect --raw --tls-verify=false "docker://$REG/schema2:latest" >"$TMPD/s2.json"
	t_eq "schema2: the registry holds a Docker v2s2 manifest" "application/vnd.docker.distribution.manifest.v2+json" \
		"$(jq -r .mediaType "$TMPD/s2.json")"
	t_eq "schema2: with Docker layer media types" "application/vnd.docker.image.rootfs.diff.tar.gzip" \
		"$(jq -r '[.layers[].mediaType] | unique | join(" ")' "$TMPD/s2.json")"
	t_eq "schema2: FIXTURE_DIGEST is the pushed manifest's" "sha256:$(sha256sum <"$TMPD/s2.json" | cut -c1-64)" \
		"$FIXTURE_DIGEST"
}

test_zstd() {
	local layout m l
	layout=$(fixture_layout zstd)
	m=$(manifest_of "$layout")
	t_eq "zstd: layer media types" "application/vnd.oci.image.layer.v1.tar+zstd application/vnd.oci.image.layer.v1.tar+gzip application/vnd.oci.image.layer.v1.tar+zstd" \
		"$(jq -r '[.layers[].mediaType] | join(" ")' "$m")"
	l=$layout/blobs/sha256/$(jq -r '.layers[0].digest' "$m" | cut -d: -f2)
	t_eq "zstd: the first layer is zstd and holds the fixture" "etc/qimg-fixture" \
		"$(zstd -dc <"$l" | tar -t 2>/dev/null | grep -x etc/qimg-fixture)"
	t_eq "zstd: diff_id is the sha256 of the uncompressed tar" \
		"$(jq -r '.rootfs.diff_ids[0]' "$layout/blobs/sha256/$(jq -r '.config.digest' "$m" | cut -d: -f2)")" \
		"sha256:$(zstd -dc <"$l" | sha256sum | cut -c1-64)"
	fixture_push zstd || { fail "zstd: push" "failed" && return; }
	t_eq "zstd: the registry keeps the zstd layer as is" "$(jq -c .layers "$m")" \
		"$(skopeo inspect --raw --tls-verify=false "docker://$REG/zstd:latest" | jq -c .layers)"
}

test_custom() {
	local spec=$TMPD/spec/hostile.json layout m want got
	mkdir -p "$TMPD/spec"
	head -c 3000 /dev/urandom >"$TMPD/spec/garbage.bin"
	cat >"$spec" <<-'EOF'
		{"config": {"Cmd": ["/x"]}, "layers": [
		  {"compression": "none", "entries": [
		    {"path": "../escape", "content": "x"}, {"path": "/abs", "type": "symlink", "target": "/etc"},
		    {"path_b64": "YS9i/w==", "content": "raw name"}, {"path": "cdev", "type": "char", "major": 1, "minor": 3},
		    {"path": "big", "size": 100000, "fill": "random", "seed": 7}]},
		  {"blob_file": "garbage.bin", "media_type": "application/vnd.oci.image.layer.v1.tar+gzip"}]}
	EOF
	fixture_custom hostile "$spec" evil/one:v1 || { fail "custom: fixture_custom pushes" "failed" && return; }
	layout=$(fixture_layout hostile)
	t_eq "custom: pushed verbatim (registry digest = layout digest)" "$(jq_file '.manifests[0].digest' "$layout/index.json")" \
		"$FIXTURE_DIGEST"
	m=$(manifest_of "$layout")
	t_eq "custom: an uncompressed layer keeps its media type" "application/vnd.oci.image.layer.v1.tar" \
		"$(skopeo inspect --raw --tls-verify=false "docker://$REG/evil/one:v1" | jq -r '.layers[0].mediaType')"
	want=$(sha256sum <"$TMPD/spec/garbage.bin" | cut -c1-64)
	got=$(curl -sf "$REG_URL/v2/evil/one/blobs/sha256:$want" | sha256sum | cut -c1-64)
	t_eq "custom: a garbage blob is served byte for byte" "$want" "$got"
	t_eq "custom: hostile names are kept byte for byte" '../escape|/abs|612f62ff|cdev|big' "$("$PY" - \
		"$layout/blobs/sha256/$(jq -r '.layers[0].digest' "$m" | cut -d: -f2)" <<-'EOF'
			import sys, tarfile
			t = tarfile.open(sys.argv[1], encoding="utf-8", errors="surrogateescape")
			n = [m.name for m in t.getmembers()]
			n[2] = n[2].encode("utf-8", "surrogateescape").hex()
			print("|".join(n))
		EOF
	)"
	echo '{"layers": [{"entries": [{"path": "changed", "content": "1"}]}]}' >"$spec"
	t_ok "custom: a changed spec is rebuilt" test "$(fixture_layout hostile)" != "$layout"
	t_fail "custom: builtin names are refused" fixture_custom busybox "$spec"
}

test_docker_media_types() {
	local spec=$TMPD/spec/docker.json
	mkdir -p "$TMPD/spec"
	echo '{"media_types": "docker", "layers": [{"entries": [{"path": "f", "content": "x"}]}]}' >"$spec"
	fixture_custom dockermt "$spec" || { fail "custom docker: pushes" "failed" && return; }
	t_eq "custom docker: media_types docker gives a v2s2 manifest, pushed verbatim" \
		"application/vnd.docker.distribution.manifest.v2+json application/vnd.docker.image.rootfs.diff.tar.gzip" \
		"$(skopeo inspect --raw --tls-verify=false "docker://$REG/dockermt:latest" | jq -r '[.mediaType, .layers[0].mediaType] | join(" ")')"
}

test_user() {
	local line others
	t_ok "user: $TUSER exists" id -u "$TUSER"
	t_ok "user: is not root" test "$TUSER_UID" -ne 0
	line=$(grep "^$TUSER:" /etc/subuid)
	t_eq "user: subuid range of 65536 at TUSER_SUBUID" "$TUSER:$TUSER_SUBUID:65536" "$line"
	t_eq "user: subgid range of 65536 at TUSER_SUBGID" "$TUSER:$TUSER_SUBGID:65536" "$(grep "^$TUSER:" /etc/subgid)"
	others=$(awk -F: -v u="$TUSER" -v b="$TUSER_SUBUID" '$1 != u && $2 < b + 65536 && $2 + $3 > b' /etc/subuid)
	t_eq "user: the range overlaps no other user's" "" "$others"
	t_eq "user: as_user runs as TUSER" "$TUSER_UID:$TUSER_GID" "$(as_user sh -c 'echo "$(id -u):$(id -g)"')"
	t_eq "user: as_user's environment" "HOME=$USER_HOME QIMG_STORE=$USER_STORE XDG_RUNTIME_DIR=$TMPD/user/run" \
		"$(as_user env | grep -E '^(HOME|QIMG_STORE|XDG_RUNTIME_DIR)=' | sort | tr '\n' ' ' | sed 's/ $//')"
	t_eq "user: XDG_RUNTIME_DIR is private" "700 $TUSER" "$(as_user sh -c 'stat -c "%a %U" "$XDG_RUNTIME_DIR"')"
	t_ok "user: HOME and the store's parent are writable" as_user sh -c 'touch "$HOME/x" && mkdir -p "$QIMG_STORE"'
	t_eq "user: no other variables leak in" "" "$(FOO_LEAK=1 as_user env | grep FOO_LEAK)"
	t_eq "user: QIMG_* and sanitizer options pass through" "ASAN_OPTIONS=a=1 QIMG_X=2" \
		"$(ASAN_OPTIONS=a=1 QIMG_X=2 as_user env | grep -E '^(ASAN_OPTIONS|QIMG_X)=' | sort | tr '\n' ' ' | sed 's/ $//')"
	t_eq "user: QIMG_STORE=x as_user overrides the store" "QIMG_STORE=/elsewhere" \
		"$(QIMG_STORE=/elsewhere as_user env | grep '^QIMG_STORE=')"
	t_eq "user: as_root runs as root with ROOT_STORE" "0 $ROOT_STORE" "$(as_root sh -c 'echo "$(id -u) $QIMG_STORE"')"
	T_TIMEOUT=1 as_user sleep 30
	t_eq "user: T_TIMEOUT bounds an as_user command" 124 "$?"
	if [ -x "$QIMG" ]; then
		t_ok "user: TUSER can execute \$QIMG" as_user test -x "$QIMG"
	else
		skip "user: TUSER can execute \$QIMG" "no qimg binary at $QIMG"
	fi
	check_both() { t_eq "both: Q runs as the mode's user" "$([ "$MODE" = root ] && echo 0 || echo "$TUSER_UID")" \
		"$(${Q%% *} id -u)"; }
	both check_both
}

registry_start plain || fail "registry_start plain" "did not start"
test_layouts
test_busybox
test_multilayer
test_multiarch
test_schema2
test_zstd
test_custom
test_docker_media_types
test_user
