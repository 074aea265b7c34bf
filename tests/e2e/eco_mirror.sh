# registries.conf: a docker-registry pull-through cache (proxy: remoteurl:) in front of a local registry is
# tried first, the registry itself when the cache is down; blocked registries refused; insecure per endpoint;
# short names through unqualified-search-registries and [aliases]; a mirror's credentials are looked up by the
# mirror's host; parse errors name file and line. Root and rootless.

CONF=$TMPD/conf
mkdir -p "$CONF"
chmod 0755 "$CONF"

registry_start plain || { fail "eco_mirror: registry_start plain" "did not start"; exit 0; }
fixture_push busybox test/busybox:latest || { fail "eco_mirror: push busybox" "push failed"; exit 0; }
BB_DIGEST=$FIXTURE_DIGEST
fixture_push busybox test/busybox:second || { fail "eco_mirror: push busybox:second" "push failed"; exit 0; }
fixture_push schema2 test/s2:latest || { fail "eco_mirror: push schema2" "push failed"; exit 0; }
ORIGIN=$REG ORIGIN_LOG=$REG_LOG

# mirror_start: Debian's docker-registry as a pull-through cache of the origin; sets MIRROR MIRROR_LOG MIRROR_PID
mirror_start() {
	local d=$TMPD/mirror port i
	mkdir -p "$d/data"
	port=$(free_port)
	printf '%s\n' "version: 0.1" "log:" "  level: info" "  formatter: text" "storage:" "  filesystem:" \
		"    rootdirectory: $d/data" "http:" "  addr: 127.0.0.1:$port" "  secret: $(openssl rand -hex 16)" \
		"proxy:" "  remoteurl: http://$ORIGIN" >"$d/config.yml"
	_t_spawn "$d/registry.log" docker-registry serve "$d/config.yml"
	MIRROR_PID=$_T_LASTPID
	for ((i = 0; i < 200; i++)); do
		curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:$port/v2/" && break
		sleep 0.05
	done
	MIRROR=127.0.0.1:$port MIRROR_LOG=$d/registry.log
}

mirror_stop() {
	kill "$MIRROR_PID" 2>/dev/null
	wait "$MIRROR_PID" 2>/dev/null
}


conf() { # NAME TEXT: write $CONF/NAME.conf
	printf '%s\n' "$2" >"$CONF/$1.conf"
	chmod 0644 "$CONF/$1.conf"
}

qimg_gets() { # LOG PATH: how many GETs of PATH by qimg a registry log shows
	grep -c "\"GET $2 HTTP/1.1\" 200 .*\"qimg/" "$1"
}

mirror_start
conf mirror "[[registry]]
location = \"$ORIGIN\"
insecure = true

[[registry.mirror]]
location = \"$MIRROR\"
insecure = true"
export QIMG_REGISTRIES_CONF=$CONF/mirror.conf

t_via_mirror() {
	local m0 o0
	m0=$(qimg_gets "$MIRROR_LOG" /v2/test/busybox/manifests/latest)
	o0=$(grep -c '"qimg/' "$ORIGIN_LOG")
	t_ok "mirror: pull through the pull-through cache" $Q pull "$ORIGIN/test/busybox:latest"
	t_eq "mirror: the image's digest" "$BB_DIGEST" "$(cat "$T_OUT")"
	t_eq "mirror: the manifest came from the mirror" $((m0 + 1)) "$(qimg_gets "$MIRROR_LOG" /v2/test/busybox/manifests/latest)"
	t_eq "mirror: qimg never asked the origin" "$o0" "$(grep -c '"qimg/' "$ORIGIN_LOG")"
	t_ok "mirror: stored under the origin's name" $Q run "$ORIGIN/test/busybox:latest" true
}

t_fallback() {
	local o0
	o0=$(qimg_gets "$ORIGIN_LOG" /v2/test/s2/manifests/latest)
	t_ok "fallback: mirror down, origin used" $Q pull "$ORIGIN/test/s2:latest"
	t_eq "fallback: the manifest came from the origin" $((o0 + 1)) "$(qimg_gets "$ORIGIN_LOG" /v2/test/s2/manifests/latest)"
	t_contains "fallback: says it falls back to the origin" "trying $ORIGIN/test/s2" "$(cat "$T_ERR")"
}

t_blocked() {
	conf blocked "[[registry]]
location = \"$ORIGIN\"
blocked = true"
	t_fail "blocked: pull refused" withconf "$CONF/blocked.conf" $Q pull "$ORIGIN/test/busybox:second"
	t_contains "blocked: says so and names the file" "blocked by $CONF/blocked.conf" "$(cat "$T_ERR")"
	t_eq "blocked: exit status 1" 1 "$T_RC"
}

t_insecure() {
	conf secure "[[registry]]
location = \"$ORIGIN\""
	t_fail "insecure: a plain-HTTP registry without insecure = true is refused" \
		withconf "$CONF/secure.conf" $Q pull "$ORIGIN/test/busybox:second"
}

t_short_names() {
	conf search "unqualified-search-registries = [\"$ORIGIN\"]

[[registry]]
location = \"$ORIGIN\"
insecure = true

[aliases]
\"bbalias\" = \"$ORIGIN/test/busybox\""
	t_ok "search: short name through unqualified-search-registries" \
		withconf "$CONF/search.conf" $Q pull test/busybox:second
	t_contains "search: stored under the full name" "\"name\": \"$ORIGIN/test/busybox\", \"tag\": \"second\"" \
		"$($Q images --format json)"
	t_ok "alias: short-name alias" withconf "$CONF/search.conf" $Q pull bbalias:latest
	t_eq "alias: the aliased image" "$BB_DIGEST" "$(cat "$T_OUT")"
}

t_errors() {
	conf broken "[[registry]]
location = \"$ORIGIN\"
mirrors = true"
	t_fail "conf: unknown key refused" withconf "$CONF/broken.conf" $Q pull "$ORIGIN/test/busybox:latest"
	t_contains "conf: the error names file and line" "$CONF/broken.conf:3: unsupported key \"mirrors\"" "$(cat "$T_ERR")"
	t_fail "conf: a missing \$QIMG_REGISTRIES_CONF is an error" withconf "$CONF/none.conf" $Q pull "$ORIGIN/test/busybox:latest"
}

t_xdg_config() { # $XDG_CONFIG_HOME/qimg/registries.conf is found without QIMG_REGISTRIES_CONF
	local d=$TMPD/$MODE-xdg
	mkdir -p "$d/qimg" && cp "$CONF/blocked.conf" "$d/qimg/registries.conf" && chmod -R a+rX "$d"
	t_fail "xdg: \$XDG_CONFIG_HOME/qimg/registries.conf read" withconf "" $(runas) env XDG_CONFIG_HOME="$d" \
		"$QIMG" pull "$ORIGIN/test/busybox:second"
	t_contains "xdg: ... (it blocks)" "blocked by $d/qimg/registries.conf" "$(cat "$T_ERR")"
}

both t_via_mirror
mirror_stop
both t_fallback
both t_blocked
both t_insecure
both t_short_names
both t_errors
both t_xdg_config

# A mirror that needs credentials: they are looked up by the mirror's host, and the origin is never asked.
registry_start basic || { fail "eco_mirror: registry_start basic" "did not start"; exit 0; }
fixture_push busybox test/busybox:latest || { fail "eco_mirror: push (basic)" "push failed"; exit 0; }
conf authmirror "[[registry]]
location = \"$ORIGIN\"
insecure = true
[[registry.mirror]]
location = \"$REG\""
printf '{"auths": {"%s": {"auth": "%s"}}}\n' "$REG" "$(printf '%s:%s' "$REG_USER" "$REG_PASS" | base64 -w0)" >"$CONF/auth.json"
chmod 0644 "$CONF/auth.json"

t_mirror_creds() {
	local o0
	o0=$(grep -c '"qimg/' "$ORIGIN_LOG")
	t_ok "mirror creds: pulled from an authenticated mirror" withconf "$CONF/authmirror.conf" $Q pull --certs-dir "$REG_CERTS_DIR" --authfile "$CONF/auth.json" "$ORIGIN/test/busybox:latest"
	t_eq "mirror creds: the origin was not asked" "$o0" "$(grep -c '"qimg/' "$ORIGIN_LOG")"
}
both t_mirror_creds
