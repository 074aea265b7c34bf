# A podman site's registries.conf as it is: /etc/containers/registries.conf (multi-line search list,
# short-name-mode = "enforcing", a docker.io mirror on a loopback registry), a registries.conf.d drop-in with
# aliases, and the user's drop-in that overrides one [[registry]]: qimg pulls a docker.io name from the mirror, an
# alias from its target and the overridden prefix from the user's location, exactly as `podman pull` does with the
# same files (both run here; the registries' logs say which endpoints each contacted); an ambiguous short name is
# refused without a TTY by both, unless a local image already has that short name; the short-name aliases cache is
# read over the files' aliases; credential-helpers are asked in order. The version-1 format is read as podman reads it; a key outside the format is an
# error naming FILE:LINE; a format key without meaning for qimg is accepted and reported with -v.
# The files sit at the real paths (/etc/containers/...), bind-mounted in a private mount namespace for each
# command: the machine's own files are never modified, so nothing needs restoring and concurrent tests never see
# ours. qimg root and rootless; podman as root (skipped, saying why, when podman is not installed).

registry_start plain || { fail "eco_regconf: registry_start hub" "did not start"; exit 0; }
fixture_push busybox library/qimgrc:latest || { fail "eco_regconf: push to the hub mirror" "push failed"; exit 0; }
HUB=$REG HUB_LOG=$REG_LOG HUB_DIGEST=$FIXTURE_DIGEST
fixture_push busybox wrong/app:1 || { fail "eco_regconf: push wrong/app" "push failed"; exit 0; }
registry_start plain || { fail "eco_regconf: registry_start site" "did not start"; exit 0; }
fixture_push schema2 test/aliased:latest || { fail "eco_regconf: push test/aliased" "push failed"; exit 0; }
ALIAS_DIGEST=$FIXTURE_DIGEST
fixture_push busybox test/app:1 || { fail "eco_regconf: push test/app" "push failed"; exit 0; }
APP_DIGEST=$FIXTURE_DIGEST
fixture_push busybox qimgrc-pick:latest || { fail "eco_regconf: push qimgrc-pick" "push failed"; exit 0; }
PICK_DIGEST=$FIXTURE_DIGEST
SITE=$REG SITE_LOG=$REG_LOG

HAVE_PODMAN=
command -v podman >/dev/null && HAVE_PODMAN=1

# etc_write DIR: DIR becomes an /etc/containers: registries.conf (TEXT on stdin), policy.json (for podman).
etc_write() {
	mkdir -p "$1/registries.conf.d"
	cat >"$1/registries.conf"
	printf '{"default": [{"type": "insecureAcceptAnything"}]}\n' >"$1/policy.json"
	chmod -R a+rX "$1"
}

ETC=$TMPD/etc-containers
etc_write "$ETC" <<EOF
# /etc/containers/registries.conf, as an administrator writes it for podman
unqualified-search-registries = [
  "docker.io",  # Docker Hub, through the site's mirror
  '$SITE',
]
short-name-mode = "enforcing"

[[registry]]
prefix = "docker.io"
location = "docker.io"

[[registry.mirror]]
location = "$HUB"
insecure = true

[[registry]]
location = "$SITE"
insecure = true

[[registry]]
prefix = "qimg-test.example/app"
location = "$HUB/wrong/app"  # the user's drop-in points it elsewhere
insecure = true
EOF
cat >"$ETC/registries.conf.d/50-qimg-test-aliases.conf" <<EOF
[aliases]
"qimgrc-alias" = "$SITE/test/aliased"
EOF
chmod a+r "$ETC/registries.conf.d/50-qimg-test-aliases.conf"

for h in "$ROOT_HOME" "$USER_HOME"; do
	mkdir -p "$h/.config/containers/registries.conf.d"
	cat >"$h/.config/containers/registries.conf.d/60-user.conf" <<EOF
[[registry]]
prefix = "qimg-test.example/app"
location = "$SITE/test/app"
insecure = true
EOF
done
[ -n "$TUSER" ] && chown -R "$TUSER_UID:$TUSER_GID" "$USER_HOME/.config"

# in_etc CMD...: CMD as root, or (MODE=user) as the test user with as_user's environment, where /etc/containers is
# $ETC (and /var/cache, where podman keeps root's short-name aliases, an empty tmpfs), in a private mount namespace.
in_etc() {
	local who=()
	if [ "${MODE-}" = user ] && [ -n "$TUSER" ]; then
		who=(env HOME="$USER_HOME" USER="$TUSER" LOGNAME="$TUSER" XDG_RUNTIME_DIR="$USER_RUNTIME"
			QIMG_STORE="$USER_STORE" setpriv --reuid="$TUSER_UID" --regid="$TUSER_GID" --init-groups --)
	fi
	as_root unshare -m --propagation private -- sh -c \
		'mount --bind "$1" /etc/containers && mount -t tmpfs tmpfs /var/cache || exit 125; shift; exec "$@"' \
		sh "$ETC" "${who[@]}" "$@"
}

# podman as root, with the files of $ETC and a store of its own under TMPD; its run root (at most 50 characters,
# podman says) on the namespace's /var/cache tmpfs.
PODMAN_DIR=$TMPD/podman
podman_() {
	in_etc podman --root "$PODMAN_DIR/root" --runroot /var/cache/qimg-test-podman --tmpdir /var/cache/qimg-test-tmp \
		--storage-driver vfs --events-backend none --cgroup-manager cgroupfs "$@"
}
podman_pull() { podman_ pull "$1"; }
podman_reset() { # a fresh podman store: podman resolves a short name to a local image before registries.conf
	podman_ rmi -a -f >/dev/null 2>&1
	rm -rf "$PODMAN_DIR"
}

# The manifests asked of the two registries between log_mark and contacted: "hub PATH" / "site PATH", sorted.
log_mark() { HUB0=$(wc -l <"$HUB_LOG") SITE0=$(wc -l <"$SITE_LOG"); }
contacted() {
	{
		tail -n +$((HUB0 + 1)) "$HUB_LOG" | grep -oE '"(GET|HEAD) /v2/[^ ]*/manifests/[^ ]* ' | sed 's/^"[A-Z]* /hub /'
		tail -n +$((SITE0 + 1)) "$SITE_LOG" | grep -oE '"(GET|HEAD) /v2/[^ ]*/manifests/[^ ]* ' | sed 's/^"[A-Z]* /site /'
	} | sed 's/ $//' | sort -u | tr '\n' ';'
}

# pull_both NAME REF WANT: qimg pulls REF and contacts exactly WANT; podman (MODE=root) contacts the same.
pull_both() {
	local name=$1 ref=$2 want=$3
	log_mark
	t_ok "$name: qimg pull $ref" in_etc "$QIMG" pull "$ref"
	t_eq "$name: qimg's endpoints" "$want" "$(contacted)"
	[ "$MODE" = root ] || return 0
	if [ -z "$HAVE_PODMAN" ]; then
		skip "$name: podman pull $ref" "podman is not installed (make deps installs it)"
		return 0
	fi
	log_mark
	t_ok "$name: podman pull $ref" podman_pull "$ref"
	t_eq "$name: podman's endpoints, the same" "$want" "$(contacted)"
}

t_site() {
	pull_both "hub mirror" docker.io/library/qimgrc:latest "hub /v2/library/qimgrc/manifests/latest;"
	t_ok "hub mirror: stored under docker.io's name" in_etc "$QIMG" images --format json
	t_contains "hub mirror: ... with the mirror's image" "$HUB_DIGEST" "$(cat "$T_OUT")"
	pull_both "alias" qimgrc-alias "site /v2/test/aliased/manifests/latest;"
	t_ok "alias: qimg inspect finds the alias's image" in_etc "$QIMG" inspect qimgrc-alias
	t_contains "alias: ... which is the target's" "$ALIAS_DIGEST" "$(cat "$T_OUT")"
	pull_both "user drop-in" qimg-test.example/app:1 "site /v2/test/app/manifests/1;"
	t_ok "user drop-in: the user's location's image" in_etc "$QIMG" inspect qimg-test.example/app:1
	t_contains "user drop-in: ... by digest" "$APP_DIGEST" "$(cat "$T_OUT")"
}

t_enforcing() { # two search registries, no alias, no TTY: refused before any registry is asked
	log_mark
	t_fail "enforcing: an ambiguous short name is refused" in_etc "$QIMG" pull qimgrc-ambiguous
	t_contains "enforcing: says why and names the file" \
		"short-name resolution enforced but cannot prompt without a TTY: \"qimgrc-ambiguous\" could be docker.io/qimgrc-ambiguous, $SITE/qimgrc-ambiguous (short-name-mode = \"enforcing\" in /etc/containers/registries.conf)" \
		"$(cat "$T_ERR")"
	t_eq "enforcing: no registry asked" "" "$(contacted)"
	[ "$MODE" = root ] && [ -n "$HAVE_PODMAN" ] || return 0
	podman_reset
	t_fail "enforcing: podman refuses it too" podman_pull qimgrc-ambiguous
	t_contains "enforcing: podman's reason" "short-name resolution enforced but cannot prompt without a TTY" "$(cat "$T_ERR")"
	t_eq "enforcing: podman asked no registry either" "" "$(contacted)"
}

t_local_short() { # a short name a local image already has: pulled again by that image's name, no question asked
	pull_both "local short name" qimgrc "hub /v2/library/qimgrc/manifests/latest;"
}

# The short-name aliases podman records (root: /var/cache/containers, here the namespace's tmpfs; a user: ~/.cache)
# are read, over the registries.conf files' aliases.
ALIASES_CACHE=$TMPD/short-name-aliases.conf
printf '[aliases]\n  "qimgrc-cached" = "%s/test/app"\n  "qimgrc-alias" = "%s/test/app"\n' "$SITE" "$SITE" >"$ALIASES_CACHE"
chmod a+r "$ALIASES_CACHE"

t_alias_cache() {
	local pre=() name
	if [ "$MODE" = root ]; then
		pre=(sh -c 'mkdir -p /var/cache/containers &&
			cp "$0" /var/cache/containers/short-name-aliases.conf && exec "$@"' "$ALIASES_CACHE")
	else
		mkdir -p "$USER_HOME/.cache/containers" && cp "$ALIASES_CACHE" "$USER_HOME/.cache/containers/"
		[ -z "$TUSER" ] || chown -R "$TUSER_UID:$TUSER_GID" "$USER_HOME/.cache"
	fi
	for name in qimgrc-cached:1 qimgrc-alias:1; do
		log_mark
		t_ok "aliases cache: qimg pull $name" in_etc "${pre[@]}" "$QIMG" pull "$name"
		t_eq "aliases cache: $name from the cache's target" "site /v2/test/app/manifests/1;" "$(contacted)"
		[ "$MODE" = root ] && [ -n "$HAVE_PODMAN" ] || continue
		log_mark
		t_ok "aliases cache: podman pull $name" in_etc "${pre[@]}" podman --root "$PODMAN_DIR/root" \
			--runroot /var/cache/qimg-test-podman --tmpdir /var/cache/qimg-test-tmp --storage-driver vfs \
			--events-backend none --cgroup-manager cgroupfs pull "$name"
		t_eq "aliases cache: podman's endpoints, the same" "site /v2/test/app/manifests/1;" "$(contacted)"
	done
	rm -rf "$USER_HOME/.cache/containers"
}

# On a terminal (script(1) makes one) an ambiguous short name is asked, as podman asks; the pick is recorded in the
# short-name aliases cache, where qimg's local lookup and podman then find it.
t_prompt() {
	local cache=$USER_HOME/.cache/containers/short-name-aliases.conf
	[ "$MODE" = root ] && cache=/var/cache/containers/short-name-aliases.conf
	log_mark
	t_ok "prompt: qimg asks, pulls the pick, records it" in_etc sh -c 'printf "2\n" |
		script -qec "$0 pull qimgrc-pick" /dev/null && echo "--- $1" && cat "$1" && $0 inspect qimgrc-pick' \
		"$QIMG" "$cache"
	t_contains "prompt: the candidates, numbered" "2. $SITE/qimgrc-pick" "$(cat "$T_OUT")"
	t_eq "prompt: only the pick was asked" "site /v2/qimgrc-pick/manifests/latest;" "$(contacted)"
	t_contains "prompt: recorded as podman records it" "--- $cache" "$(cat "$T_OUT")"
	t_contains "prompt: ... the alias" "\"qimgrc-pick\" = \"$SITE/qimgrc-pick\"" "$(cat "$T_OUT")"
	t_contains "prompt: inspect finds the image by the recorded alias" "$PICK_DIGEST" "$(cat "$T_OUT")"
	printf '3\n' >"$TMPD/three"
	t_fail "prompt: an answer out of range" in_etc sh -c 'script -qec "$0 pull qimgrc-ambiguous" /dev/null <"$1"' \
		"$QIMG" "$TMPD/three"
	t_contains "prompt: ... says so" "qimgrc-ambiguous: no image selected (\"3\" is not 1-2)" "$(cat "$T_OUT")"
	rm -rf "$USER_HOME/.cache/containers"
	[ "$MODE" = root ] && [ -n "$HAVE_PODMAN" ] || return 0
	podman_reset
	t_ok "prompt: podman follows the alias qimg recorded" in_etc sh -c 'printf "2\n" |
		QIMG_STORE=/var/cache/qimg-test-store script -qec "$0 pull qimgrc-pick" /dev/null >/dev/null &&
		exec "$@"' "$QIMG" podman --root "$PODMAN_DIR/root" --runroot /var/cache/qimg-test-podman \
		--tmpdir /var/cache/qimg-test-tmp --storage-driver vfs --events-backend none --cgroup-manager cgroupfs \
		pull qimgrc-pick
	t_contains "prompt: ... which podman says" "Resolved \"qimgrc-pick\" as an alias (/var/cache/containers/short-name-aliases.conf)" \
		"$(cat "$T_ERR")"
}

both t_site
both t_local_short
both t_enforcing
both t_prompt
both t_alias_cache

# Version 1: [registries.search], [registries.insecure], [registries.block], read as podman reads them.
etc_write "$ETC" <<EOF
[registries.search]
registries = ['$SITE']

[registries.insecure]
registries = ["$SITE", "$HUB"]

[registries.block]
registries = ["qimg-blocked.example"]
EOF
rm -f "$ETC/registries.conf.d/"*.conf

t_version1() {
	pull_both "v1 search" test/app:1 "site /v2/test/app/manifests/1;"
	log_mark
	t_fail "v1 block: refused" in_etc "$QIMG" pull qimg-blocked.example/x:1
	t_contains "v1 block: names the file" "qimg-blocked.example/x:1: its registry is blocked by /etc/containers/registries.conf" "$(cat "$T_ERR")"
	t_eq "v1 block: nothing asked" "" "$(contacted)"
}
both t_version1

# A key outside the format: FILE:LINE. A key of the format without meaning for qimg: accepted, said with -v.
printf '%s\n' "[[registry]]" "location = \"$SITE\"" "insecure = true" "mirrors = [\"$HUB\"]" \
	>"$ETC/registries.conf.d/70-typo.conf"
chmod a+r "$ETC/registries.conf.d/70-typo.conf"

t_errors() {
	t_fail "unknown key: refused" in_etc "$QIMG" pull "$SITE/test/app:1"
	t_contains "unknown key: FILE:LINE" \
		"/etc/containers/registries.conf.d/70-typo.conf:4: unsupported key \"mirrors\" in [[registry]]" "$(cat "$T_ERR")"
	t_eq "unknown key: exit status 1" 1 "$T_RC"
}
both t_errors

printf '%s\n' "additional-layer-store-auth-helper = \"als-helper\"" >"$ETC/registries.conf.d/70-typo.conf"
t_meaningless() {
	t_ok "no-meaning key: accepted" in_etc "$QIMG" -v pull "$SITE/test/app:1"
	t_contains "no-meaning key: -v says so" \
		"/etc/containers/registries.conf.d/70-typo.conf:1: additional-layer-store-auth-helper has no meaning for qimg" \
		"$(cat "$T_ERR")"
}
both t_meaningless

# credential-helpers: asked in order (one that fails is passed over, as podman does), instead of the auth files
# unless "containers-auth.json" is listed.
registry_start basic || { fail "eco_regconf: registry_start basic" "did not start"; exit 0; }
fixture_push busybox test/private:1 || { fail "eco_regconf: push (basic)" "push failed"; exit 0; }
HELPERS=$TMPD/helpers
mkdir -p "$HELPERS"
cat >"$HELPERS/docker-credential-qimgrc" <<EOF
#!/bin/sh
[ "\$1" = get ] || exit 1
server=\$(cat)
echo "\$server" >>"$HELPERS/qimgrc.log"
[ "\$server" = "$REG" ] || { echo "credentials not found in native keychain"; exit 1; }
printf '{"ServerURL": "%s", "Username": "%s", "Secret": "%s"}\n' "$REG" "$REG_USER" "$REG_PASS"
EOF
printf '#!/bin/sh\necho "the keyring is locked"\nexit 1\n' >"$HELPERS/docker-credential-qimgrc-broken"
chmod 0755 "$HELPERS" "$HELPERS"/docker-credential-*
: >"$HELPERS/qimgrc.log" && chmod 0666 "$HELPERS/qimgrc.log"
rm -f "$ETC/registries.conf.d/"*.conf

t_cred_helpers() {
	local asked
	etc_write "$ETC" <<<'credential-helpers = ["qimgrc-broken", "qimgrc"]'
	t_ok "credential-helpers: the helper registries.conf names" \
		in_etc env PATH="$HELPERS:/usr/bin:/bin" "$QIMG" -v pull --certs-dir "$REG_CERTS_DIR" "$REG/test/private:1"
	t_eq "credential-helpers: asked for the registry's host" "$REG" "$(tail -n 1 "$HELPERS/qimgrc.log")"
	t_contains "credential-helpers: -v names it" "docker-credential-qimgrc (credential-helpers in registries.conf)" \
		"$(cat "$T_ERR")"
	asked=$(wc -l <"$HELPERS/qimgrc.log")
	etc_write "$ETC" <<<'credential-helpers = ["containers-auth.json"]'
	t_fail "credential-helpers: only the auth files, which hold nothing" \
		in_etc env PATH="$HELPERS:/usr/bin:/bin" "$QIMG" pull --certs-dir "$REG_CERTS_DIR" "$REG/test/private:1"
	t_eq "credential-helpers: ... and the helper was not asked" "$asked" "$(wc -l <"$HELPERS/qimgrc.log")"
	etc_write "$ETC" <<<'credential-helpers = ["qimgrc-broken"]'
	t_fail "credential-helpers: a failing helper alone" \
		in_etc env PATH="$HELPERS:/usr/bin:/bin" "$QIMG" pull --certs-dir "$REG_CERTS_DIR" "$REG/test/private:1"
	t_contains "credential-helpers: ... its error is the answer" "the keyring is locked" "$(cat "$T_ERR")"
}
both t_cred_helpers
