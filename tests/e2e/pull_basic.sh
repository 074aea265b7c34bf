# qimg pull from a plain-HTTP registry: by tag, digest and tag+digest; what lands in the store; second pulls
# download nothing; shared blobs; references and options refused cleanly.

registry_start plain || { fail "pull_basic: registry_start plain" "did not start"; exit 0; }
fixture_push busybox test/busybox:latest || { fail "pull_basic: push busybox" "push failed"; exit 0; }
BB=$FIXTURE_DIGEST
fixture_push busybox other/copy:v1 || { fail "pull_basic: push busybox again" "push failed"; exit 0; }
ZERO=sha256:0000000000000000000000000000000000000000000000000000000000000000

blob_gets() { grep -c '/blobs/sha256:' "$T_ERR"; }

t_pull_tag() {
	local s out
	t_ok "pull by tag" $Q -vv pull --tls-verify=false "$REG/test/busybox:latest"
	out=$(cat "$T_OUT")
	t_eq "prints the manifest digest (one line)" "$BB" "$out"
	t_eq "first pull GETs config and layer once each" 2 "$(blob_gets)"
	s=$(store_dir)
	t_ok "manifest kept as a blob" test -f "$s/blobs/sha256/${BB#sha256:}"
	t_ok "run spec written" grep -q '^layer ' "$s/specs/${BB#sha256:}"
	t_ok "config digest in the spec is a stored blob" test -f "$s/blobs/sha256/$(awk '$1 == "config" { sub("sha256:", "", $2); print $2 }' "$s/specs/${BB#sha256:}")"
	t_ok "layer unpacked" test -x "$s/layers/$(awk '$1 == "layer" { print $2; exit }' "$s/specs/${BB#sha256:}")/bin/busybox"
	t_ok "no partial downloads left" test -z "$(ls "$s/tmp")"
	t_ok "second pull" $Q -vv pull --tls-verify=false "$REG/test/busybox:latest"
	t_eq "second pull downloads no blob" 0 "$(blob_gets)"
	t_eq "second pull prints the same digest" "$BB" "$(cat "$T_OUT")"
	t_ok "images lists the pulled image" $Q images
	t_contains "images shows the name" "$REG/test/busybox" "$(cat "$T_OUT")"
	t_ok "same blobs under another name" $Q -vv pull --tls-verify=false "$REG/other/copy:v1"
	t_eq "shared blobs are not downloaded again" 0 "$(blob_gets)"
}

t_pull_digest() {
	t_ok "pull by digest" $Q pull -q --tls-verify=false "$REG/test/busybox@$BB"
	t_eq "by digest prints that digest" "$BB" "$(cat "$T_OUT")"
	t_ok "pull by tag+digest" $Q pull --tls-verify=false "$REG/test/busybox:latest@$BB"
	t_eq "tag+digest prints that digest" "$BB" "$(cat "$T_OUT")"
	t_fail "unknown digest fails" $Q pull --tls-verify=false "$REG/test/busybox@$ZERO"
	t_contains "unknown digest: 404 named" "404 Not Found" "$(cat "$T_ERR")"
	t_fail "unknown tag fails" $Q pull --tls-verify=false "$REG/test/busybox:nope"
	t_contains "unknown tag: says what was asked" "GET /v2/test/busybox/manifests/nope: 404 Not Found" "$(cat "$T_ERR")"
	t_eq "unknown tag: one line on stderr" 1 "$(wc -l <"$T_ERR")"
	t_eq "unknown tag: exit status 1" 1 "$T_RC"
	t_fail "unknown repository fails" $Q pull --tls-verify=false "$REG/no/such:latest"
}

t_pull_refs() {
	t_fail "bad reference (uppercase repository)" $Q pull --tls-verify=false "$REG/Test/BusyBox:latest"
	t_eq "bad reference: exit status 1" 1 "$T_RC"
	t_fail "bad reference (invalid digest)" $Q pull --tls-verify=false "$REG/test/busybox@sha256:../../etc"
	t_fail "bad reference (empty tag)" $Q pull --tls-verify=false "$REG/test/busybox:"
	t_ok "no blob was fetched for bad references" test -z "$(ls "$(store_dir)/tmp")"
}

t_pull_cli() {
	t_ok "pull --help" $Q pull --help
	t_contains "help shows usage" "Usage: qimg pull" "$(cat "$T_OUT")"
	t_contains "help shows examples" "Examples:" "$(cat "$T_OUT")"
	t_fail "pull without a reference" $Q pull
	t_eq "missing reference: usage exit status" 2 "$T_RC"
	t_fail "pull with two references" $Q pull a b
	t_fail "unknown option" $Q pull --frobnicate x
	t_eq "unknown option: usage exit status" 2 "$T_RC"
	t_fail "--tls-verify=maybe refused" $Q pull --tls-verify=maybe "$REG/test/busybox:latest"
	t_fail "bad --platform refused" $Q pull --tls-verify=false --platform linux "$REG/test/busybox:latest"
	t_contains "bad --platform: says why" "invalid platform" "$(cat "$T_ERR")"
	t_ok "-q prints only the digest" $Q pull -q --tls-verify=false "$REG/test/busybox:latest"
	t_eq "-q: nothing on stderr" "" "$(cat "$T_ERR")"
}

t_default_https() {
	t_fail "plain-HTTP registry refused without --tls-verify=false" $Q pull "$REG/test/busybox:latest"
	t_contains "says TLS failed and how to allow plain HTTP" "tls-verify=false" "$(cat "$T_ERR")"
}

both t_pull_tag
both t_pull_digest
both t_pull_refs
both t_pull_cli
both t_default_https
