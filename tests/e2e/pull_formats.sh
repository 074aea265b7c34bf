# qimg pull of every manifest flavour: OCI index (platform selection), Docker schema2, zstd layers, multilayer.

registry_start plain || { fail "pull_formats: registry_start plain" "did not start"; exit 0; }
fixture_push multiarch test/multi:latest || { fail "pull_formats: push multiarch" "push failed"; exit 0; }
INDEX=$FIXTURE_DIGEST
fixture_push schema2 test/s2:latest || { fail "pull_formats: push schema2" "push failed"; exit 0; }
S2=$FIXTURE_DIGEST
fixture_push zstd test/zstd:latest || { fail "pull_formats: push zstd" "push failed"; exit 0; }
fixture_push multilayer test/ml:latest || { fail "pull_formats: push multilayer" "push failed"; exit 0; }

spec_of() { cat "$(store_dir)/specs/${1#sha256:}"; }
host_arch() { case $(uname -m) in x86_64) echo amd64 ;; aarch64) echo arm64 ;; armv7l) echo arm/v7 ;; *) uname -m ;; esac; }

t_multiarch() {
	local host arm64 armv7 amd64
	t_ok "index: host platform" $Q pull --tls-verify=false "$REG/test/multi:latest"
	host=$(cat "$T_OUT")
	t_ok "index: resolves to an image manifest, not the index" test "$host" != "$INDEX"
	t_contains "index: spec names the host platform" "platform linux/$(host_arch)" "$(spec_of "$host")"
	t_ok "index: --platform linux/amd64" $Q pull --tls-verify=false --platform linux/amd64 "$REG/test/multi:latest"
	amd64=$(cat "$T_OUT")
	t_ok "index: --platform linux/arm64" $Q pull --tls-verify=false --platform linux/arm64 "$REG/test/multi:latest"
	arm64=$(cat "$T_OUT")
	t_contains "index: arm64 spec" "platform linux/arm64" "$(spec_of "$arm64")"
	t_ok "index: --platform linux/arm/v7" $Q pull --tls-verify=false --platform linux/arm/v7 "$REG/test/multi:latest"
	armv7=$(cat "$T_OUT")
	t_contains "index: arm/v7 spec" "platform linux/arm/v7" "$(spec_of "$armv7")"
	t_ok "index: three platforms, three manifests" test "$amd64" != "$arm64" -a "$arm64" != "$armv7" -a "$amd64" != "$armv7"
	t_ok "index: aliases accepted (linux/aarch64)" $Q pull --tls-verify=false --platform linux/aarch64 "$REG/test/multi:latest"
	t_eq "index: aarch64 is arm64" "$arm64" "$(cat "$T_OUT")"
	t_fail "index: unknown platform fails" $Q pull --tls-verify=false --platform linux/s390x "$REG/test/multi:latest"
	t_contains "index: the error lists what the index offers" "linux/amd64, linux/arm64, linux/arm/v7" "$(cat "$T_ERR")"
	t_contains "index: the error names the platform asked for" "linux/s390x" "$(cat "$T_ERR")"
	t_ok "index: pull by index digest with --platform" $Q pull --tls-verify=false --platform linux/arm64 "$REG/test/multi@$INDEX"
	t_eq "index: by index digest resolves to the platform's manifest" "$arm64" "$(cat "$T_OUT")"
	t_ok "index: the index is kept as a blob" test -f "$(store_dir)/blobs/sha256/${INDEX#sha256:}"
	t_ok "index: pull a platform manifest by its own digest" $Q pull --tls-verify=false "$REG/test/multi@$armv7"
	t_eq "index: platform manifest by digest" "$armv7" "$(cat "$T_OUT")"
}

t_schema2() {
	t_ok "schema2: pull" $Q pull --tls-verify=false "$REG/test/s2:latest"
	t_eq "schema2: digest" "$S2" "$(cat "$T_OUT")"
	t_contains "schema2: the kept manifest is Docker's" "application/vnd.docker.distribution.manifest.v2+json" \
		"$(cat "$(store_dir)/blobs/sha256/${S2#sha256:}")"
}

t_zstd_multilayer() {
	local d
	t_ok "zstd: pull" $Q pull --tls-verify=false "$REG/test/zstd:latest"
	t_ok "multilayer: pull" $Q -vv pull --tls-verify=false "$REG/test/ml:latest"
	d=$(cat "$T_OUT")
	t_eq "multilayer: layers in the spec = layers in the manifest" \
		"$(grep -o '"digest"' "$(store_dir)/blobs/sha256/${d#sha256:}" | wc -l)" \
		"$(($(spec_of "$d" | grep -c '^layer ') + 1))"
}

both t_multiarch
both t_schema2
both t_zstd_multilayer
