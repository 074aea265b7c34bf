# qimg login / logout against Basic and token registries (checked before stored; file and dir modes; the
# XDG_RUNTIME_DIR fallback; other entries kept), and docker credential helpers (credsStore, credHelpers) used by
# pulls. Root and rootless.

auth_of() { jq -r --arg k "$2" '.auths[$k].auth // empty' "$1" 2>/dev/null; }
b64() { printf '%s:%s' "$1" "$2" | base64 -w0; }

# login with the password on stdin: sets RC, OUT, ERR
login_stdin() { # PASSWORD ARGS...
	local pw=$1
	shift
	$Q login "$@" --password-stdin <<<"$pw" >"$TMPD/l.out" 2>"$TMPD/l.err"
	RC=$? OUT=$(cat "$TMPD/l.out") ERR=$(cat "$TMPD/l.err")
}

t_basic() {
	local c=(--certs-dir "$REG_CERTS_DIR") f
	f=$(mode_runtime)/containers/auth.json
	rm -rf "$(mode_runtime)/containers" "$(mode_home)/.config/containers"
	login_stdin "not-$REG_PASS" "${c[@]}" -u "$REG_USER" "$REG"
	t_eq "basic: wrong password refused" 1 "$RC"
	t_contains "basic: says the registry rejected it" "rejected" "$ERR"
	t_fail "basic: nothing stored after a refusal" test -e "$f"
	login_stdin "$REG_PASS" "${c[@]}" -u "$REG_USER" "$REG"
	t_eq "basic: --password-stdin" 0 "$RC"
	t_eq "basic: says so on stdout" "Login Succeeded!" "$OUT"
	t_eq "basic: stored in \$XDG_RUNTIME_DIR/containers/auth.json" "$(b64 "$REG_USER" "$REG_PASS")" "$(auth_of "$f" "$REG")"
	t_eq "basic: file mode 0600, owned by the user" "600 $(mode_uid)" "$(stat -c '%a %u' "$f")"
	t_eq "basic: dir mode 0700" 700 "$(stat -c %a "$(dirname "$f")")"
	t_ok "basic: pull uses the stored credentials" $Q pull "${c[@]}" "$REG/test/busybox:latest"
	# another entry survives a login and a logout
	jq '.auths["other.example:5000"] = {"auth": "eDp5"}' "$f" >"$TMPD/a.json" && cat "$TMPD/a.json" >"$f"
	t_ok "basic: -p PASS (again)" $Q login "${c[@]}" -u "$REG_USER" -p "$REG_PASS" "$REG"
	t_eq "basic: other entries kept" "eDp5" "$(auth_of "$f" other.example:5000)"
	t_ok "basic: logout" $Q logout "$REG"
	t_eq "basic: logout says so" "Removed login credentials for $REG" "$(cat "$T_OUT")"
	t_eq "basic: entry gone" "" "$(auth_of "$f" "$REG")"
	t_eq "basic: other entry still there" "eDp5" "$(auth_of "$f" other.example:5000)"
	t_fail "basic: pull after logout needs credentials" $Q pull "${c[@]}" "$REG/test/busybox:latest"
	t_fail "basic: logout again: not logged in" $Q logout "$REG"
	t_contains "basic: ... says so" "not logged in to $REG" "$(cat "$T_ERR")"
	t_ok "basic: login with https://HOST/ spelling" $Q login "${c[@]}" -u "$REG_USER" -p "$REG_PASS" "https://$REG/"
	t_eq "basic: stored under the plain host" "$(b64 "$REG_USER" "$REG_PASS")" "$(auth_of "$f" "$REG")"
	t_ok "basic: logout --all" $Q logout --all
	t_eq "basic: every entry gone" 0 "$(jq '.auths | length' "$f")"
	t_ok "basic: --authfile" $Q login "${c[@]}" --authfile "$(mode_home)/my-auth.json" -u "$REG_USER" -p "$REG_PASS" "$REG"
	t_eq "basic: --authfile written" "$(b64 "$REG_USER" "$REG_PASS")" "$(auth_of "$(mode_home)/my-auth.json" "$REG")"
	t_ok "basic: pull --authfile" $Q pull "${c[@]}" --authfile "$(mode_home)/my-auth.json" "$REG/test/busybox:latest"
	t_ok "basic: no XDG_RUNTIME_DIR" $(runas) env -u XDG_RUNTIME_DIR "$QIMG" login "${c[@]}" -u "$REG_USER" -p "$REG_PASS" "$REG"
	t_contains "basic: ... the fallback is named" ".config/containers/auth.json" "$(cat "$T_ERR")"
	t_eq "basic: ... stored in ~/.config/containers/auth.json" "$(b64 "$REG_USER" "$REG_PASS")" \
		"$(auth_of "$(mode_home)/.config/containers/auth.json" "$REG")"
	t_fail "basic: no password and no terminal" $Q login "${c[@]}" -u "$REG_USER" "$REG"
	t_eq "basic: ... is a usage error (2)" 2 "$T_RC"
	t_contains "basic: ... names --password-stdin" "--password-stdin" "$(cat "$T_ERR")"
	t_fail "basic: untrusted TLS refused" $Q login -u "$REG_USER" -p "$REG_PASS" "$REG"
	t_contains "basic: ... says the certificate is not trusted" "certificate" "$(cat "$T_ERR")"
	printf '[[registry]]\nlocation = "%s"\ninsecure = true\n' "$REG" >"$TMPD/insecure.conf"
	printf '[[registry]]\nlocation = "%s"\nblocked = true\n' "$REG" >"$TMPD/blocked.conf"
	chmod 0644 "$TMPD/insecure.conf" "$TMPD/blocked.conf"
	t_ok "basic: registries.conf insecure = true applies to login" withconf "$TMPD/insecure.conf" \
		$Q login -u "$REG_USER" -p "$REG_PASS" "$REG"
	t_fail "basic: a blocked registry is refused" withconf "$TMPD/blocked.conf" $Q login -u "$REG_USER" -p "$REG_PASS" "$REG"
	t_contains "basic: ... says so" "blocked by $TMPD/blocked.conf" "$(cat "$T_ERR")"
	rm -rf "$(mode_runtime)/containers" "$(mode_home)/.config/containers"
}

t_token() {
	local c=(--certs-dir "$REG_CERTS_DIR") f
	f=$(mode_runtime)/containers/auth.json
	rm -rf "$(mode_runtime)/containers"
	login_stdin "nope" "${c[@]}" -u "$REG_USER" "$REG"
	t_eq "token: wrong password refused" 1 "$RC"
	t_contains "token: ... by the token server" "401" "$ERR"
	t_fail "token: nothing stored" test -e "$f"
	login_stdin "$REG_PASS" "${c[@]}" -u "$REG_USER" "$REG"
	t_eq "token: login (token flow)" 0 "$RC"
	t_contains "token: the token server checked the password" '"auth": "basic"' "$(tail -n 2 "$TOKEN_LOG")"
	t_ok "token: pull of a private repository" $Q pull "${c[@]}" "$REG/private/busybox:latest"
	t_ok "token: logout" $Q logout "$REG"
	t_fail "token: private pull refused after logout" $Q pull "${c[@]}" "$REG/private/busybox:latest"
	# Identity tokens (OAuth2 refresh tokens): from a credential helper's "<token>" answer and from an auths
	# entry's "identitytoken"; exchanged by a POST with grant_type=refresh_token, never sent as Basic.
	rm -rf "$(mode_runtime)/containers"
	docker_config '{"credsStore": "qtok"}'
	t_ok "identity token from a helper: private pull" hpull "$REG/private/busybox:latest"
	t_contains "identity token: exchanged with the refresh_token grant" '"auth": "oauth2-refresh"' "$(tail -n 3 "$TOKEN_LOG")"
	docker_config '{"auths": {"'"$REG"'": {"auth": "'"$(b64 00000000-0000-0000-0000-000000000000 "")"'", "identitytoken": "rt-'"$REG_PASS"'"}}}'
	t_ok "identity token from config.json: private pull" hpull "$REG/private/busybox:latest"
	t_contains "identitytoken: exchanged with the refresh_token grant" '"auth": "oauth2-refresh"' "$(tail -n 3 "$TOKEN_LOG")"
	docker_config '{"auths": {"'"$REG"'": {"identitytoken": "rt-wrong"}}}'
	t_fail "a wrong identity token is refused" hpull "$REG/private/busybox:latest"
	t_contains "wrong identity token: says the credentials were rejected" "rejected" "$(cat "$T_ERR")"
	rm -rf "$(mode_home)/.docker"
}

# ---- credential helpers ----
HELPERS=$TMPD/helpers
make_helper() { # NAME [USER SECRET]: docker-credential-NAME answering for $REG only; each query logged
	local user=${2:-$REG_USER} secret=${3:-$REG_PASS}
	mkdir -p "$HELPERS"
	cat >"$HELPERS/docker-credential-$1" <<EOF
#!/bin/sh
[ "\$1" = get ] || exit 1
server=\$(cat)
echo "\$server" >>"$HELPERS/$1.log"
if [ "\$server" = "$REG" ]; then
	printf '{"ServerURL": "%s", "Username": "%s", "Secret": "%s"}\n' "$REG" "$user" "$secret"
else
	echo "credentials not found in native keychain"
	exit 1
fi
EOF
	chmod 0755 "$HELPERS" "$HELPERS/docker-credential-$1"
	: >"$HELPERS/$1.log" && chmod 0666 "$HELPERS/$1.log"
}

docker_config() { # JSON: write ~/.docker/config.json of the current mode's user
	local d
	d=$(mode_home)/.docker
	mkdir -p "$d" && printf '%s\n' "$1" >"$d/config.json"
	chown -R "$(mode_uid)" "$d"
}

hpull() { $(runas) env PATH="$HELPERS:/usr/bin:/bin" "$QIMG" pull --certs-dir "$REG_CERTS_DIR" "$@"; }

t_helpers() {
	rm -rf "$(mode_runtime)/containers"
	docker_config '{"credsStore": "qtest"}'
	t_ok "helper: credsStore" hpull "$REG/test/busybox:latest"
	t_eq "helper: asked for the registry's host" "$REG" "$(tail -n 1 "$HELPERS/qtest.log")"
	docker_config '{"credHelpers": {"'"$REG"'": "qtest"}, "auths": {"'"$REG"'": {"auth": "'"$(b64 x y)"'"}}}'
	t_ok "helper: credHelpers before auths" hpull "$REG/test/busybox:latest"
	docker_config '{"credHelpers": {"'"$REG"'": "missing"}}'
	t_fail "helper: missing helper" hpull "$REG/test/busybox:latest"
	t_contains "helper: ... named" "docker-credential-missing not found" "$(cat "$T_ERR")"
	docker_config '{"credHelpers": {"other.example": "qtest"}}'
	t_fail "helper: a helper for another registry is not asked" hpull "$REG/test/busybox:latest"
	t_contains "helper: ... and no credentials found" "no credentials for $REG" "$(cat "$T_ERR")"
	docker_config '{"credHelpers": {"'"$REG"'": "../evil"}}'
	t_fail "helper: a name with a slash is refused" hpull "$REG/test/busybox:latest"
	rm -rf "$(mode_home)/.docker"
}

registry_start basic || { fail "eco_login: registry_start basic" "did not start"; exit 0; }
fixture_push busybox test/busybox:latest || { fail "eco_login: push (basic)" "push failed"; exit 0; }
make_helper qtest
both t_basic
both t_helpers
registry_stop

registry_start token || { fail "eco_login: registry_start token" "did not start"; exit 0; }
fixture_push busybox private/busybox:latest || { fail "eco_login: push (token)" "push failed"; exit 0; }
make_helper qtok "<token>" "rt-$REG_PASS"
both t_token
