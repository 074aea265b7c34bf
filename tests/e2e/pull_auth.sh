# qimg pull over TLS (certs.d trust, --tls-verify=false) and with credentials (Basic and token auth): where
# credentials come from, that the token is fetched once per pull, and clear errors for missing or wrong ones.


authfile() { # FILE USER PASS [KEY]: a containers-auth.json for $REG (or KEY)
	printf '{"auths": {"%s": {"auth": "%s"}}}\n' "${4:-$REG}" "$(printf '%s:%s' "$2" "$3" | base64 -w0)" >"$1"
	chmod 0644 "$1"
}

# ---- TLS ----
t_tls() {
	t_fail "tls: untrusted CA refused" $Q pull "$REG/test/busybox:latest"
	t_contains "tls: says the certificate is not trusted" "certificate" "$(cat "$T_ERR")"
	t_ok "tls: --certs-dir DIR/HOST:PORT/ca.crt" $Q pull --certs-dir "$REG_CERTS_DIR" "$REG/test/busybox:latest"
	t_eq "tls: digest" "$TLS_DIGEST" "$(cat "$T_OUT")"
	t_ok "tls: --certs-dir DIR/HOST/ca.crt (no port)" $Q pull --certs-dir "$TMPD/certs-host" "$REG/test/busybox:latest"
	t_ok "tls: --tls-verify=false accepts an untrusted certificate" $Q -vv pull --tls-verify=false "$REG/test/busybox:latest"
	t_fail "tls: --tls-verify=false stays on HTTPS when HTTPS works" grep -q "GET http://" "$T_ERR"
	t_fail "tls: a certs dir for another host does not help" $Q pull --certs-dir "$TMPD/certs-other" "$REG/test/busybox:latest"
}

# ---- Basic ----
t_basic() {
	local f=$TMPD/$MODE-basic.json bad=$TMPD/$MODE-basic-bad.json c=(--certs-dir "$REG_CERTS_DIR")
	authfile "$f" "$REG_USER" "$REG_PASS"
	authfile "$bad" "$REG_USER" "not-$REG_PASS"
	t_fail "basic: no credentials" $Q pull "${c[@]}" "$REG/test/busybox:latest"
	t_contains "basic: says credentials are needed" "401 Unauthorized (authentication required; no credentials for $REG" "$(cat "$T_ERR")"
	t_ok "basic: --authfile" $Q pull "${c[@]}" --authfile "$f" "$REG/test/busybox:latest"
	t_eq "basic: digest" "$BASIC_DIGEST" "$(cat "$T_OUT")"
	t_fail "basic: wrong password" $Q pull "${c[@]}" --authfile "$bad" "$REG/test/busybox:latest"
	t_contains "basic: wrong password named" "401 Unauthorized (credentials for $REG rejected)" "$(cat "$T_ERR")"
	t_fail "basic: a missing --authfile is an error" $Q pull "${c[@]}" --authfile "$TMPD/none.json" "$REG/test/busybox:latest"
	t_ok "basic: \$REGISTRY_AUTH_FILE" $(runas) env REGISTRY_AUTH_FILE="$f" "$QIMG" pull "${c[@]}" "$REG/test/busybox:latest"
	# the usual search: $XDG_RUNTIME_DIR/containers/auth.json, then ~/.docker/config.json
	mkdir -p "$(mode_runtime)/containers"
	cp "$f" "$(mode_runtime)/containers/auth.json"
	chown -R "$(mode_ids)" "$(mode_runtime)/containers"
	t_ok "basic: \$XDG_RUNTIME_DIR/containers/auth.json" $Q pull "${c[@]}" "$REG/test/busybox:latest"
	rm -rf "$(mode_runtime)/containers"
	mkdir -p "$(mode_home)/.docker"
	authfile "$(mode_home)/.docker/config.json" "$REG_USER" "$REG_PASS" "https://$REG/v1/"
	chown -R "$(mode_ids)" "$(mode_home)/.docker"
	t_ok "basic: ~/.docker/config.json (https://HOST/v1/ key)" $Q pull "${c[@]}" "$REG/test/busybox:latest"
	rm -rf "$(mode_home)/.docker"
	t_fail "basic: credentials for another host are not used" $Q pull "${c[@]}" --authfile "$TMPD/$MODE-other.json" "$REG/test/busybox:latest"
}

# ---- token ----
token_requests() { grep -c '"path": "/token"' "$TOKEN_LOG"; }

t_token() {
	local f=$TMPD/$MODE-token.json bad=$TMPD/$MODE-token-bad.json c=(--certs-dir "$REG_CERTS_DIR") before
	authfile "$f" "$REG_USER" "$REG_PASS"
	authfile "$bad" "$REG_USER" "nope"
	t_ok "token: anonymous pull of a public repository" $Q pull "${c[@]}" "$REG/public/busybox:latest"
	before=$(token_requests)
	t_ok "token: pull with credentials" $Q pull "${c[@]}" --authfile "$f" "$REG/private/busybox:latest"
	t_eq "token: digest" "$TOKEN_DIGEST" "$(cat "$T_OUT")"
	t_eq "token: one token per pull" 1 "$(($(token_requests) - before))"
	t_contains "token: credentials went to the realm" '"auth": "basic"' "$(tail -n 1 "$TOKEN_LOG")"
	t_fail "token: private repository without credentials" $Q pull "${c[@]}" "$REG/private/busybox:latest"
	t_contains "token: says credentials are needed" "401 Unauthorized" "$(cat "$T_ERR")"
	t_fail "token: wrong password" $Q pull "${c[@]}" --authfile "$bad" "$REG/private/busybox:latest"
	t_contains "token: wrong password named" "401 Unauthorized (credentials for $REG rejected)" "$(cat "$T_ERR")"
	t_ok "token: the registry's CA also vouches for its realm" $Q pull --authfile "$f" --certs-dir "$TMPD/certs-regonly" "$REG/private/busybox:latest"
}

registry_start tls || { fail "pull_auth: registry_start tls" "did not start"; exit 0; }
fixture_push busybox test/busybox:latest || { fail "pull_auth: push (tls)" "push failed"; exit 0; }
TLS_DIGEST=$FIXTURE_DIGEST
mkdir -p "$TMPD/certs-host/127.0.0.1" "$TMPD/certs-other/127.0.0.2:${REG##*:}"
cp "$REG_CA" "$TMPD/certs-host/127.0.0.1/ca.crt"
cp "$REG_CA" "$TMPD/certs-other/127.0.0.2:${REG##*:}/ca.crt"
both t_tls
registry_stop

registry_start basic || { fail "pull_auth: registry_start basic" "did not start"; exit 0; }
fixture_push busybox test/busybox:latest || { fail "pull_auth: push (basic)" "push failed"; exit 0; }
BASIC_DIGEST=$FIXTURE_DIGEST
authfile "$TMPD/root-other.json" "$REG_USER" "$REG_PASS" "127.0.0.1:1"
cp "$TMPD/root-other.json" "$TMPD/user-other.json"
both t_basic
registry_stop

registry_start token || { fail "pull_auth: registry_start token" "did not start"; exit 0; }
fixture_push busybox public/busybox:latest || { fail "pull_auth: push public (token)" "push failed"; exit 0; }
fixture_push busybox private/busybox:latest || { fail "pull_auth: push private (token)" "push failed"; exit 0; }
TOKEN_DIGEST=$FIXTURE_DIGEST
mkdir -p "$TMPD/certs-regonly/$REG"
cp "$REG_CA" "$TMPD/certs-regonly/$REG/ca.crt"
both t_token
