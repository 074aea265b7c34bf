# Hostile layers (peers-asks-cves.md §3): names with "..", symlinks and hardlinks pointing out of the layer, a
# symlinked or poisoned parent, bad whiteouts, NUL and over-long names, a truncated tar, a gzip bomb, a wrong
# diffID. Each pull fails cleanly (or, where tar semantics allow, succeeds with everything inside the layer):
# canary files outside stay unchanged, and nothing is left in layers/ or tmp/. Root and rootless stores.

registry_start plain || { fail "unpack_hostile: registry_start plain" "did not start"; exit 0; }

CANARY=$TMPD/canary
mkdir -p "$CANARY" && echo canary >"$CANARY/file" && chmod 0777 "$CANARY" && chmod 0666 "$CANARY/file"
HOST_LINKS=$(stat -c %h /etc/hostname)
SPECS=$TMPD/hostile-specs
mkdir -p "$SPECS"
CASES=()


canary_intact() {
	[ "$(cat "$CANARY/file")" = canary ] && [ "$(ls -A "$CANARY")" = file ] && [ ! -e "$TMPD/escape" ] &&
		[ "$(stat -c %h /etc/hostname)" = "$HOST_LINKS" ] && [ ! -e /tmp/qimg-hostile-escape ]
}

# hostile NAME fail|ok NEEDLE LAYER-JSON: one single-layer image; `fail` cases must fail naming NEEDLE.
hostile() {
	local name=$1
	printf '{"config": {"Cmd": ["/x"]}, "layers": [%s]}\n' "$4" >"$SPECS/$name.json"
	if fixture_custom "h-$name" "$SPECS/$name.json" "hostile/$name:latest" >"$SPECS/$name.log" 2>&1; then
		CASES+=("$name|$2|$3")
	else
		fail "$name: fixture builds and pushes" "$(tail -3 "$SPECS/$name.log")"
	fi
}

entries() { printf '{"compression": "gzip", "entries": [%s]}' "$1"; }

hostile dotdot fail '".." in path' "$(entries '{"path": "../../../../../../../../../tmp/qimg-hostile-escape", "content": "x"}')"
hostile dotdot-mid fail '".." in path' "$(entries '{"path": "a/../../escape", "content": "x"}')"
hostile absolute ok '' "$(entries "{\"path\": \"$CANARY/file\", \"content\": \"pwned\\n\"}")"
hostile symlink-abs fail 'path goes through symlink' "$(entries "{\"path\": \"evil\", \"type\": \"symlink\", \"target\": \"$CANARY\"}, {\"path\": \"evil/file\", \"content\": \"pwned\\n\"}")"
hostile symlink-rel fail 'path goes through symlink' "$(entries "{\"path\": \"a\", \"type\": \"dir\"}, {\"path\": \"a/up\", \"type\": \"symlink\", \"target\": \"../../../../../../../../../..\"}, {\"path\": \"a/up$CANARY/file\", \"content\": \"pwned\\n\"}")"
hostile symlink-dot fail 'names the layer root' "$(entries "{\"path\": \".\", \"type\": \"symlink\", \"target\": \"$CANARY\"}, {\"path\": \"file\", \"content\": \"pwned\\n\"}")"
hostile dir-then-symlink fail 'path goes through symlink' "$(entries "{\"path\": \"d\", \"type\": \"dir\"}, {\"path\": \"d/ok\", \"content\": \"ok\"}, {\"path\": \"d\", \"type\": \"symlink\", \"target\": \"$CANARY\"}, {\"path\": \"d/file\", \"content\": \"pwned\\n\"}")"
hostile hardlink-host fail 'not in this layer' "$(entries '{"path": "h", "type": "hardlink", "target": "/etc/hostname"}')"
hostile hardlink-dotdot fail '".." in path' "$(entries '{"path": "h", "type": "hardlink", "target": "../../../../../../../../etc/hostname"}')"
hostile hardlink-via-symlink fail 'path goes through symlink' "$(entries "{\"path\": \"s\", \"type\": \"symlink\", \"target\": \"$CANARY\"}, {\"path\": \"h\", \"type\": \"hardlink\", \"target\": \"s/file\"}")"
hostile symlink-then-file ok '' "$(entries "{\"path\": \"s\", \"type\": \"symlink\", \"target\": \"$CANARY/file\"}, {\"path\": \"s\", \"content\": \"replaced\\n\"}")"
hostile whiteout-dotdot fail 'invalid whiteout name' "$(entries '{"path": "a/.wh..", "content": ""}')"
hostile whiteout-escape fail '".." in path' "$(entries '{"path": "../.wh.canary", "content": ""}')"
hostile nul-name ok '' "$(entries '{"path_b64": "b2sALi4vLi4vLi4vLi4vZXNjYXBl", "content": "nul\n"}')"
hostile nul-pax ok '' "$(entries '{"path": "placeholder", "content": "nul\n", "pax": {"path": "ok\u0000/../../../../tmp/qimg-hostile-escape"}}')"
hostile long-component fail 'NAME_MAX' "$(entries "{\"path\": \"$(printf 'n%.0s' $(seq 300))\", \"content\": \"x\"}")"
hostile long-path fail 'PATH_MAX' "$(entries "{\"path\": \"$(printf 'd/%.0s' $(seq 2100))f\", \"content\": \"x\"}")"
hostile diffid-mismatch fail 'diffID mismatch' "{\"compression\": \"gzip\", \"diff_id\": \"sha256:$(printf '0%.0s' $(seq 64))\", \"entries\": [{\"path\": \"f\", \"content\": \"x\"}]}"
hostile devices ok '' "$(entries '{"path": "dev/sda", "type": "block", "major": 8, "minor": 0}, {"path": "dev/null", "type": "char", "major": 1, "minor": 3}, {"path": "f", "content": "x"}')"

# A tar cut in the middle of a file's data (its diffID is that of the cut tar, so only the reader can object).
/usr/bin/python3 - "$SPECS/trunc.tar" <<'EOF'
import io, sys, tarfile
b = io.BytesIO()
with tarfile.open(fileobj=b, mode="w", format=tarfile.PAX_FORMAT) as t:
    data = b"y" * 100000
    ti = tarfile.TarInfo("big"); ti.size = len(data); t.addfile(ti, io.BytesIO(data))
open(sys.argv[1], "wb").write(b.getvalue()[:60000])
EOF
hostile truncated fail 'runcated' '{"tar_file": "trunc.tar", "compression": "gzip"}'
# A gzip bomb: 256 MiB of zeros in 255 KB (ratio ~1030:1, over the 1000:1 limit).
/usr/bin/python3 - "$SPECS/bomb.gz" <<'EOF'
import sys, tarfile, zlib
ti = tarfile.TarInfo("zeros"); ti.size = 256 << 20
c = zlib.compressobj(9, zlib.DEFLATED, 31)
out = [c.compress(ti.tobuf(tarfile.PAX_FORMAT))]
z = bytes(1 << 20)
out += [c.compress(z) for _ in range(256)]
out += [c.compress(bytes(1024)), c.flush()]
open(sys.argv[1], "wb").write(b"".join(out))
EOF
hostile gzip-bomb fail 'bomb' "{\"blob_file\": \"bomb.gz\", \"media_type\": \"application/vnd.oci.image.layer.v1.tar+gzip\", \"diff_id\": \"sha256:$(printf '1%.0s' $(seq 64))\"}"

# An owner outside the subuid range: fine as root; rootless, a clear error naming the file.
printf '{"config": {"Cmd": ["/x"]}, "layers": [{"entries": [{"path": "etc", "type": "dir"}, %s]}]}\n' \
	'{"path": "etc/far", "content": "x", "uid": 200000, "gid": 200000}' >"$SPECS/unmapped.json"
fixture_custom h-unmapped "$SPECS/unmapped.json" hostile/unmapped:latest >"$SPECS/unmapped.log" 2>&1 ||
	fail "unmapped: fixture builds and pushes" "$(tail -3 "$SPECS/unmapped.log")"

t_unmapped() {
	local s
	s=$(store_dir)
	if [ "$MODE" = root ] || [ -z "$TUSER" ]; then
		t_ok "unmapped owner: root unpacks it" $Q pull --tls-verify=false "$REG/hostile/unmapped:latest"
		return
	fi
	t_fail "unmapped owner: rootless pull fails" $Q pull --tls-verify=false "$REG/hostile/unmapped:latest"
	t_contains "unmapped owner: the error names the file and the ids" "etc/far: owner 200000:200000 is not mapped" \
		"$(cat "$T_ERR")"
	t_eq "unmapped owner: nothing left in tmp/" "" "$(ls -A "$s/tmp" 2>/dev/null)"
}

t_hostile() {
	local c name want needle s before after
	s=$(store_dir)
	for c in "${CASES[@]}"; do
		IFS='|' read -r name want needle <<<"$c"
		before=$(ls "$s/layers" 2>/dev/null | sort | paste -sd' ')
		if [ "$want" = fail ]; then
			t_fail "$name: pull fails" $Q pull --tls-verify=false "$REG/hostile/$name:latest"
			t_contains "$name: error says why" "$needle" "$(cat "$T_ERR")"
			after=$(ls "$s/layers" 2>/dev/null | sort | paste -sd' ')
			t_eq "$name: nothing new in layers/" "$before" "$after"
		else
			t_ok "$name: pull succeeds" $Q pull --tls-verify=false "$REG/hostile/$name:latest"
		fi
		t_eq "$name: nothing left in tmp/" "" "$(ls -A "$s/tmp" 2>/dev/null)"
		t_ok "$name: canaries outside unchanged" canary_intact
	done
}

# What the cases that succeed left inside their layer.
layer_of() { # NAME: the layer dir of hostile/NAME (pulled already: this pull only prints its digest)
	local s d
	s=$(store_dir)
	d=$($Q pull -q --tls-verify=false "$REG/hostile/$1:latest" 2>/dev/null)
	awk -v s="$s" '$1 == "layer" { print s "/layers/" $2; exit }' "$s/specs/${d#sha256:}"
}

t_inside() {
	local l
	l=$(layer_of absolute)
	t_eq "absolute: the file lands inside the layer" pwned "$(cat "$l$CANARY/file" 2>&1)"
	l=$(layer_of symlink-then-file)
	t_ok "symlink-then-file: the file replaced the symlink" test -f "$l/s" -a ! -L "$l/s"
	t_eq "symlink-then-file: content" replaced "$(cat "$l/s" 2>&1)"
	l=$(layer_of nul-name)
	t_eq "nul-name: the name ends at the NUL (tar semantics)" "ok" "$(ls "$l")"
	l=$(layer_of devices)
	t_eq "devices: skipped, the rest unpacked" "f" "$(find "$l" -mindepth 1 ! -type d -printf '%P\n')"
}

both t_hostile
both t_inside
both t_unmapped
