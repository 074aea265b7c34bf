# qimg load / save: docker-archive (skopeo's, podman's, the OCI layout inside newer docker save), OCI layout
# directory and tar, compressed and from stdin, multi-platform index, tampered archives (clear error, no image);
# qimg save -> skopeo inspect/copy, podman load, qimg load. Root and rootless.

BB=$(fixture_layout busybox) || { fail "eco_load: fixture busybox" "no layout"; exit 0; }
MA=$(fixture_layout multiarch) || { fail "eco_load: fixture multiarch" "no layout"; exit 0; }
S2=$(fixture_layout schema2) || { fail "eco_load: fixture schema2" "no layout"; exit 0; }
A=$TMPD/archives
OUT=$TMPD/out # written by both users
mkdir -p "$A" "$OUT"
chmod 1777 "$OUT"
SK=(skopeo --insecure-policy copy --quiet)

# The archives every mode loads.
make_archives() {

	"${SK[@]}" "oci:$BB:busybox" "docker-archive:$A/docker.tar:example.com/bb:docker" &&
		"${SK[@]}" "oci:$BB:busybox" "oci-archive:$A/oci.tar:example.com/bb:oci" &&
		"${SK[@]}" "oci:$BB:busybox" "oci:$A/ocidir:example.com/bb:dir" &&
		"${SK[@]}" --format v2s2 "oci:$S2:schema2" "oci:$A/s2dir:example.com/s2:latest" &&
		cp -r "$MA" "$A/multi" || return 1
	gzip -c "$A/docker.tar" >"$A/docker.tar.gz"
	# The layout newer `docker save` writes: an OCI layout with plain-tar layers, plus manifest.json/repositories.
	mkdir -p "$TMPD/dx" && tar -C "$TMPD/dx" -xf "$A/docker.tar" && docker25 "$TMPD/dx" "$A/d25" || return 1
	tar -C "$A/d25" -cf "$A/docker25.tar" . || return 1
	# The same without index.json: only manifest.json pointing into blobs/.
	mkdir -p "$A/d25m" && cp -r "$A/d25/blobs" "$A/d25/manifest.json" "$A/d25m/" &&
		sed -i 's/bb:d25/bb:d25m/' "$A/d25m/manifest.json" && tar -C "$A/d25m" -cf "$A/docker25m.tar" . || return 1
	make_tampered "$(jq -r '.[0].Layers[0]' "$A/d25/manifest.json")"
}

docker25() { # EXTRACTED-DOCKER-ARCHIVE OUT-DIR: what docker 25+ `docker save` writes (digests computed here)
	"$PY" - "$1" "$2" <<'PYEOF'
import hashlib, json, os, sys
src, dst = sys.argv[1], sys.argv[2]
m = json.load(open(f"{src}/manifest.json"))[0]
os.makedirs(f"{dst}/blobs/sha256")
def put(data):
    h = hashlib.sha256(data).hexdigest()
    open(f"{dst}/blobs/sha256/{h}", "wb").write(data)
    return {"digest": "sha256:" + h, "size": len(data)}
cfg = put(open(f"{src}/{m['Config']}", "rb").read())
layers = [put(open(f"{src}/{p}", "rb").read()) for p in m["Layers"]]
man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
       "config": dict(cfg, mediaType="application/vnd.oci.image.config.v1+json"),
       "layers": [dict(l, mediaType="application/vnd.oci.image.layer.v1.tar") for l in layers]}
md = put(json.dumps(man).encode())
ann = {"io.containerd.image.name": "example.com/bb:d25", "org.opencontainers.image.ref.name": "d25"}
json.dump({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
           "manifests": [dict(md, mediaType=man["mediaType"], annotations=ann)]}, open(f"{dst}/index.json", "w"))
open(f"{dst}/oci-layout", "w").write('{"imageLayoutVersion": "1.0.0"}')
json.dump([{"Config": "blobs/sha256/" + cfg["digest"][7:], "RepoTags": ["example.com/bb:d25"],
            "Layers": ["blobs/sha256/" + l["digest"][7:] for l in layers]}], open(f"{dst}/manifest.json", "w"))
json.dump({"example.com/bb": {"d25": cfg["digest"][7:]}}, open(f"{dst}/repositories", "w"))
PYEOF
}

make_tampered() { # LAYER-PATH (of the d25 layout)
	local t=$TMPD/tamper blob
	# OCI dir: one byte of the layer changed, same size.
	cp -r "$A/ocidir" "$A/bad-ocidir"
	blob=$(jq -r '.layers[0].digest' "$A/bad-ocidir/blobs/sha256/$(jq -r '.manifests[0].digest' \
		"$A/bad-ocidir/index.json" | cut -d: -f2)" | cut -d: -f2)
	chmod u+w "$A/bad-ocidir/blobs/sha256/$blob"
	printf 'X' | dd of="$A/bad-ocidir/blobs/sha256/$blob" bs=1 seek=100 conv=notrunc status=none
	# docker-archive: the config changed (its name is its digest).
	mkdir -p "$t/cfg" && tar -C "$t/cfg" -xf "$A/docker.tar"
	chmod -R u+w "$t/cfg"
	for f in "$t"/cfg/*.json; do [ "$(basename "$f")" = manifest.json ] || sed -i 's/PATH=/PATH=\/evil:/' "$f"; done
	tar -C "$t/cfg" -cf "$A/bad-config.tar" .
	# docker-archive: a file appended to the plain layer tar (the config's diff_id no longer matches).
	mkdir -p "$t/layer" && tar -C "$t/layer" -xf "$A/docker25m.tar"
	chmod -R u+w "$t/layer"
	echo evil >"$t/evil" && tar -C "$t" -rf "$t/layer/$1" evil
	tar -C "$t/layer" -cf "$A/bad-layer.tar" .
	# a tar holding a path that leaves the archive
	tar -C "$A/ocidir" -cf "$A/escape.tar" --transform 's,^\./index.json,../index.json,' .
}

make_archives || { fail "eco_load: make archives" "skopeo/tar failed"; exit 0; }
chmod -R a+rX "$A"

images() { $Q images --format json; }

# A wrapper that makes openat2 fail with ENOSYS (seccomp), as on kernels before 5.6 and under valgrind 3.19.
NOOPENAT2=$TMPD/noopenat2
cc -o "$NOOPENAT2" "$QIMG_TESTS_DIR/tools/noopenat2.c" 2>"$TMPD/noopenat2.err" || NOOPENAT2=

t_load() {
	t_ok "load: docker-archive (skopeo)" $Q load -i "$A/docker.tar"
	t_eq "load: docker-archive name from RepoTags" "Loaded image: example.com/bb:docker" "$(cat "$T_OUT")"
	t_ok "load: docker-archive image runs" $Q run example.com/bb:docker echo hello
	t_eq "load: docker-archive run output" hello "$(cat "$T_OUT")"
	t_ok "load: oci-archive" $Q load -i "$A/oci.tar"
	t_eq "load: oci-archive name from ref.name" "Loaded image: example.com/bb:oci" "$(cat "$T_OUT")"
	t_ok "load: OCI layout directory with --tag" $Q load --tag localhost/mine:1 -i "$A/ocidir"
	t_eq "load: --tag names it" "Loaded image: localhost/mine:1" "$(cat "$T_OUT")"
	t_ok "load: --tag image runs" $Q run localhost/mine:1 cat /etc/os-release
	if [ -n "$NOOPENAT2" ]; then
		local fresh
		fresh=$(mktemp -d "$TMPD/noopenat2-$MODE.XXXXXX") && chmod 0777 "$fresh"
		QIMG_STORE="$fresh/store" t_ok "load: OCI layout directory without openat2 (ENOSYS)" ${Q% *} \
			"$NOOPENAT2" "${Q##* }" load --tag localhost/noopenat2:1 -i "$A/ocidir"
		QIMG_STORE="$fresh/store" t_ok "load: ... that image runs" $Q run localhost/noopenat2:1 true
	else
		skip "load: OCI layout directory without openat2" "cc failed: $(head -c 200 "$TMPD/noopenat2.err")"
	fi
	t_ok "load: newer docker save (OCI layout + manifest.json)" $Q load -i "$A/docker25.tar"
	t_eq "load: its name" "Loaded image: example.com/bb:d25" "$(cat "$T_OUT")"
	t_ok "load: docker-archive with blobs/ paths" $Q load -i "$A/docker25m.tar"
	t_ok "load: ... runs" $Q run example.com/bb:d25m true
	t_ok "load: same image, same manifest digest (docker-archive and its OCI twin)" test \
		"$($Q images --format json | jq -r '.[] | select(.tag == "d25m") | .digest')" != ""
	t_ok "load: gzip-compressed archive" $Q load -i "$A/docker.tar.gz"
	t_ok "load: Docker schema2 media types" $Q load -i "$A/s2dir"
	t_ok "load: multi-platform index" $Q load --tag localhost/multi:1 -i "$A/multi"
	t_contains "load: index -> this machine's platform" "\"Platform\": \"linux/amd64\"" "$($Q inspect localhost/multi:1)"
	local out
	out=$($Q load <"$A/oci.tar" 2>&1)
	t_eq "load: from stdin" "Loaded image: example.com/bb:oci" "$out"
}

t_tampered() {
	local before
	before=$(images)
	t_fail "tampered: OCI layer blob" $Q load --tag localhost/bad:1 -i "$A/bad-ocidir"
	t_contains "tampered: OCI says digest mismatch" "digest mismatch" "$(cat "$T_ERR")"
	t_contains "tampered: OCI names the blob" "blobs/sha256/" "$(cat "$T_ERR")"
	t_fail "tampered: docker-archive config" $Q load -i "$A/bad-config.tar"
	t_contains "tampered: config mismatch named" "digest mismatch" "$(cat "$T_ERR")"
	t_fail "tampered: docker-archive layer" $Q load --tag localhost/bad:2 -i "$A/bad-layer.tar"
	t_contains "tampered: layer vs diff_id named" "diff_id" "$(cat "$T_ERR")"
	t_fail "tampered: entry outside the archive" $Q load -i "$A/escape.tar"
	t_contains "tampered: escape named" "leaves the archive" "$(cat "$T_ERR")"
	t_fail "tampered: not an archive" $Q load -i /etc/passwd
	t_eq "tampered: no image ref added" "$before" "$(images)"
	t_eq "tampered: nothing left in tmp/" "" "$(ls -A "$(store_dir)/tmp" 2>/dev/null | grep '^load-')"
	t_fail "load: --tag with an invalid name" $Q load --tag 'UPPER/x' -i "$A/oci.tar"
	t_fail "load: missing file" $Q load -i "$A/nope.tar"
	t_contains "load: missing file named" "nope.tar" "$(cat "$T_ERR")"
}


t_save() {
	local f=$OUT/$MODE-save.tar
	t_ok "save: oci-archive" $Q save example.com/bb:docker -o "$f"
	t_ok "save: skopeo inspect reads it" skopeo inspect "oci-archive:$f"
	t_eq "save: skopeo sees the same manifest digest" \
		"$($Q images --format json | jq -r '.[] | select(.tag == "docker") | .digest')" "$(jq -r .Digest "$T_OUT")"
	t_contains "save: index.json names the image" '"org.opencontainers.image.ref.name":"example.com/bb:docker"' \
		"$(tar -xOf "$f" index.json)"
	t_ok "save: skopeo copy oci-archive -> docker-archive" "${SK[@]}" "oci-archive:$f" \
		"docker-archive:$OUT/$MODE-rt.tar:example.com/bb:roundtrip"
	chmod a+r "$OUT/$MODE-rt.tar"
	t_ok "save: ... which qimg loads" $Q load -i "$OUT/$MODE-rt.tar"
	t_ok "save: ... and runs" $Q run example.com/bb:roundtrip echo ok
	t_ok "save: qimg load of qimg save" $Q load --tag localhost/again:1 -i "$f"
	t_ok "save: Docker schema2 image keeps its manifest" $Q save example.com/s2:latest -o "$OUT/$MODE-s2.tar"
	t_ok "save: schema2 archive readable by skopeo" skopeo inspect --raw "oci-archive:$OUT/$MODE-s2.tar"
	t_contains "save: schema2 manifest byte for byte" "application/vnd.docker.distribution.manifest.v2+json" "$(cat "$T_OUT")"
	$Q save example.com/bb:oci >"$OUT/$MODE-stdout.tar" 2>"$TMPD/err"
	t_ok "save: to stdout" tar -tf "$OUT/$MODE-stdout.tar" index.json
	t_ok "save: two images in one archive" $Q save -o "$OUT/$MODE-two.tar" example.com/bb:oci example.com/s2:latest
	t_eq "save: two index entries" 2 "$(tar -xOf "$OUT/$MODE-two.tar" index.json | jq '.manifests | length')"
	t_fail "save: unknown image" $Q save -o "$OUT/$MODE-none.tar" example.com/none:1
	t_contains "save: unknown image named" "example.com/none" "$(cat "$T_ERR")"
	t_fail "save: no file left after a failure" test -e "$OUT/$MODE-none.tar"
	t_eq "save: no temporary file left" "" "$(ls -A "$OUT" | grep '\.tmp-')"
}

t_podman() {
	local pd p
	if ! command -v podman >/dev/null; then
		skip "podman: load of qimg save" "podman not installed (apt-get install podman)"
		return
	fi
	pd=$(mktemp -d /tmp/qimg-podman.XXXXXX) # podman wants a runroot path under 50 characters
	at_exit "rm -rf '$pd'"
	p=(podman --root "$pd/root" --runroot "$pd/run" --storage-driver vfs --cgroup-manager=cgroupfs)
	t_ok "podman: podman load of qimg save" "${p[@]}" load -i "$OUT/root-save.tar"
	t_contains "podman: named as saved" "example.com/bb:docker" "$(cat "$T_OUT")"
	t_ok "podman: podman save (docker-archive)" "${p[@]}" save -o "$TMPD/podman.tar" example.com/bb:docker
	t_ok "podman: qimg load of podman save" as_root "$QIMG" load --tag localhost/frompodman:1 -i "$TMPD/podman.tar"
	t_ok "podman: podman save --format oci-archive" "${p[@]}" save --format oci-archive -o "$TMPD/podman-oci.tar" \
		example.com/bb:docker
	t_ok "podman: qimg load of it" as_root "$QIMG" load -i "$TMPD/podman-oci.tar"
	t_ok "podman: ... runs" as_root "$QIMG" run example.com/bb:docker true
}

both t_load
both t_tampered
both t_save
t_podman
