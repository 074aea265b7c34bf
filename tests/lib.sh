# qimg's e2e test library: results, temp dirs, cleanup, loopback registries, fixtures, the rootless test user.
# Sourced by tests/run.sh's per-file shell before each tests/e2e/*.sh (sourcing it again is a no-op), or by a
# test file run alone (`bash tests/e2e/x.sh` after `. tests/lib.sh` in it), which then prints its own summary.
#
# Results:   pass NAME | fail NAME WHY | skip NAME WHY | t_ok NAME CMD... | t_fail NAME CMD... | t_eq NAME EXP ACT
#            t_contains NAME NEEDLE HAYSTACK. Inside `both`, names get a "[root]"/"[user]" suffix ($MODE).
#            t_ok/t_fail keep the command's output in $T_OUT (stdout) and $T_ERR (stderr) and its status in $T_RC.
# Dirs:      TMPD (per file, removed at exit), QIMG_TEST_CACHE (immutable fixture builds, tests/.cache).
# Registry:  registry_start [plain|tls|basic|token] -> REG REG_URL REG_MODE REG_DATA REG_LOG [REG_CA
#            REG_CERTS_DIR] [REG_USER REG_PASS] [TOKEN_URL TOKEN_LOG]; registry_stop; reg_token SCOPE [anon].
# Fixtures:  fixture_push NAME [REPO:TAG] (sets FIXTURE_DIGEST), fixture_layout NAME, fixture_rootfs debian,
#            fixture_custom NAME SPEC.json [REPO:TAG] (format: tests/fixtures/README.md),
#            tree_list DIR [tree.py opts], tree_compare EXPECTED DIR [tree.py opts].
# Per mode:  store_dir mode_home mode_runtime mode_user mode_uid mode_ids runas; withconf FILE CMD...
# Users:     TUSER TUSER_UID TUSER_GID TUSER_SUBUID TUSER_SUBGID (range of 65536), and per file and per user
#            USER_HOME USER_RUNTIME USER_STORE / ROOT_HOME ROOT_RUNTIME ROOT_STORE (HOME, XDG_RUNTIME_DIR, store);
#            as_user CMD..., as_root CMD... (clean env, T_TIMEOUT bound), both FN [ARGS] (sets MODE and Q);
#            at_exit CMD. Not root: TUSER is empty and as_user runs as the caller (with USER_* dirs).
# Commands run by t_ok/t_fail get stdin from /dev/null. Call registry_start directly, not in $(...) or a
# pipeline (it must record its server pids in this shell). Do not set an EXIT trap of your own: use at_exit.
# Processes: everything started here carries QIMG_TEST_TAG in its environment; the EXIT trap stops those
#            processes and their descendants, unmounts whatever is left under TMPD and removes TMPD.

[ -n "${_QIMG_LIB_LOADED-}" ] && return 0
_QIMG_LIB_LOADED=1

QIMG_TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
QIMG_ROOT=$(dirname "$QIMG_TESTS_DIR")
PY=/usr/bin/python3 # Debian's, with python3-jwt and python3-cryptography (DESIGN.md §8)
QIMG=${QIMG_BIN:-$QIMG_ROOT/qimg}
QIMG_TEST_CACHE=${QIMG_TEST_CACHE:-$QIMG_TESTS_DIR/.cache}
T_TIMEOUT=${T_TIMEOUT:-300} # seconds, for each as_user/as_root command
_T_FIXTURES=$QIMG_TESTS_DIR/fixtures
_T_REAP=$QIMG_TESTS_DIR/registry/reap.py
_T_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export QIMG_TEST_TAG=${QIMG_TEST_TAG:-qimg-test-$$-$RANDOM$RANDOM}
unset QIMG_STORE # only a prefix assignment (QIMG_STORE=x as_user ...) overrides the per-file stores

TMPD=$(mktemp -d "${QIMG_TEST_TMPROOT:-/tmp}/qimg-test.XXXXXX") || { echo "lib.sh: mktemp failed" >&2; exit 1; }
chmod 0755 "$TMPD" # the test user must reach its own dirs below
export TMPD

# ---------------------------------------------------------------------------------------------------- results
_T_RESULTS=${QIMG_RESULTS:-$TMPD/results} # run.sh gives a file of its own; alone, we summarise at exit
: >>"$_T_RESULTS"

_t_oneline() { # tabs and newlines become " | " so a result stays on one line; cap its length
	local s=${1//[$'\t\r\n']/ | }
	printf '%s' "${s:0:1500}"
}

_t_record() { # STATUS NAME [WHY]
	local status=$1 name why
	name=$(_t_oneline "$2")
	why=$(_t_oneline "${3-}")
	if [ -n "${MODE-}" ]; then
		case $name in *"[$MODE]") ;; *) name="${name}[$MODE]" ;; esac
	fi
	printf '%s\t%s\t%s\n' "$status" "$name" "$why" >>"$_T_RESULTS"
	if [ "$status" = PASS ]; then echo "PASS $name"; else echo "$status $name: $why"; fi
}

pass() { _t_record PASS "$1"; }
fail() { _t_record FAIL "$1" "${2:-failed}"; }
skip() { _t_record SKIP "$1" "${2:-skipped}"; }

_t_tail() { # FILE: its last lines, for a failure message
	[ -s "$1" ] && tail -n "${2:-6}" "$1" | cut -c1-300
}

# Run CMD, keeping stdout/stderr in $T_OUT/$T_ERR and its status in $T_RC.
_t_run() {
	T_OUT=$TMPD/t.out T_ERR=$TMPD/t.err
	"$@" >"$T_OUT" 2>"$T_ERR" </dev/null
	T_RC=$?
}

_t_crashed() { # a sanitizer report or a crash signal is never an acceptable failure
	case $T_RC in 132 | 134 | 135 | 136 | 139) return 0 ;; esac
	grep -qE 'ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer' "$T_ERR" 2>/dev/null
}

_t_why() {
	local out
	out=$(_t_tail "$T_ERR")
	[ -n "$out" ] || out=$(_t_tail "$T_OUT")
	printf '%s' "$1${out:+: $out}"
}

t_ok() { # NAME CMD...
	local name=$1
	shift
	_t_run "$@"
	if [ "$T_RC" -eq 0 ]; then pass "$name"; else fail "$name" "$(_t_why "exit $T_RC")"; fi
}

t_fail() { # NAME CMD...: passes when CMD exits non-zero without crashing
	local name=$1
	shift
	_t_run "$@"
	if [ "$T_RC" -eq 0 ]; then
		fail "$name" "$(_t_why "unexpectedly succeeded")"
	elif _t_crashed; then
		fail "$name" "$(_t_why "crashed (exit $T_RC)")"
	else
		pass "$name"
	fi
}

t_eq() { # NAME EXPECTED ACTUAL
	if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "expected '${2:0:300}', got '${3:0:300}'"; fi
}

t_contains() { # NAME NEEDLE HAYSTACK
	case $3 in *"$2"*) pass "$1" ;; *) fail "$1" "'${3:0:300}' does not contain '${2:0:200}'" ;; esac
}

# ---------------------------------------------------------------------------------------------------- cleanup
_T_AT_EXIT=()
_T_PIDS=()
at_exit() { _T_AT_EXIT+=("$*"); } # CMD run (by eval) at exit, before processes are stopped

_t_cleanup() {
	local rc=$? c summary=
	trap - EXIT INT TERM HUP
	set +eu
	for c in "${_T_AT_EXIT[@]}"; do eval "$c"; done
	registry_stop
	"$PY" "$_T_REAP" --tag "$QIMG_TEST_TAG" --kill --umount "$TMPD" >/dev/null
	if [ -z "${QIMG_RESULTS-}" ]; then # run alone: summarise here
		summary="$(grep -c '^PASS' "$_T_RESULTS") passed, $(grep -c '^FAIL' "$_T_RESULTS") failed,"
		summary="$summary $(grep -c '^SKIP' "$_T_RESULTS") skipped"
		grep -q '^FAIL' "$_T_RESULTS" && rc=1
	fi
	rm -rf "$TMPD" 2>/dev/null || { chattr -R -i "$TMPD" 2>/dev/null; rm -rf "$TMPD"; }
	[ -z "$summary" ] || echo "$summary"
	exit "$rc"
}
trap _t_cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# Start "$@" in the background with output to LOG; remember it for registry_stop. Sets _T_LASTPID.
_t_spawn() {
	local log=$1
	shift
	"$@" >"$log" 2>&1 </dev/null &
	_T_LASTPID=$!
	_T_PIDS+=("$_T_LASTPID")
}

_t_alive() { kill -0 "$1" 2>/dev/null; }

# ---------------------------------------------------------------------------------------------------- network
free_port() { # a loopback TCP port nobody listens on right now
	"$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

_t_ca() { # one CA per test file: $TMPD/pki/ca.{crt,key}
	local d=$TMPD/pki
	[ -f "$d/ca.crt" ] && return 0
	mkdir -p "$d"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
		-subj "/CN=qimg test CA" -keyout "$d/ca.key" -out "$d/ca.crt" \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
		>"$d/openssl.log" 2>&1 || { cat "$d/openssl.log" >&2; return 1; }
}

_t_server_cert() { # DIR: DIR/server.{crt,key} for 127.0.0.1 and localhost, signed by the CA
	local d=$1 pki=$TMPD/pki
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=127.0.0.1" \
		-keyout "$d/server.key" -out "$d/server.csr" >"$d/openssl.log" 2>&1 &&
		printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "extendedKeyUsage=serverAuth" \
			"basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" >"$d/ext.cnf" &&
		openssl x509 -req -in "$d/server.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
			-days 30 -extfile "$d/ext.cnf" -out "$d/server.crt" >>"$d/openssl.log" 2>&1 ||
		{ cat "$d/openssl.log" >&2; return 1; }
}

_t_certs_dir_add() { # HOST:PORT: make $REG_CERTS_DIR/HOST:PORT/ca.crt (the /etc/containers/certs.d layout)
	mkdir -p "$TMPD/certs.d/$1" && cp "$TMPD/pki/ca.crt" "$TMPD/certs.d/$1/ca.crt"
}

# ---------------------------------------------------------------------------------------------------- registry
_T_REG_N=0

_t_wait_port_file() { # FILE PID: wait until FILE exists (the server bound its port); 10 s at most
	local i
	for ((i = 0; i < 200; i++)); do
		[ -s "$1" ] && return 0
		_t_alive "$2" || return 1
		sleep 0.05
	done
	return 1
}

_t_token_start() { # DIR: start the token server; sets TOKEN_URL TOKEN_LOG
	local d=$1 log=$1/token-server.log
	openssl genrsa -out "$d/token-sign.key" 2048 >/dev/null 2>&1 &&
		openssl req -x509 -new -key "$d/token-sign.key" -subj "/CN=qimg test token issuer" -days 30 \
			-out "$d/token-sign.crt" >/dev/null 2>&1 || { echo "registry_start: token key failed" >&2; return 1; }
	_t_spawn "$log" "$PY" "$QIMG_TESTS_DIR/registry/token_server.py" --cert "$d/server.crt" --key "$d/server.key" \
		--sign-key "$d/token-sign.key" --issuer qimg-test-issuer --service qimg-test-registry \
		--user "$REG_USER" --pass "$REG_PASS" --port-file "$d/token.port" --log "$d/token-requests.log"
	if ! _t_wait_port_file "$d/token.port" "$_T_LASTPID"; then
		echo "registry_start: token server did not start:" >&2
		cat "$log" >&2
		return 1
	fi
	TOKEN_URL=https://127.0.0.1:$(cat "$d/token.port")/token
	TOKEN_LOG=$d/token-requests.log
	_t_certs_dir_add "127.0.0.1:$(cat "$d/token.port")"
	export TOKEN_URL TOKEN_LOG
}

_t_reg_config() { # DIR PORT MODE: write DIR/config.yml
	local d=$1 port=$2 mode=$3
	{
		printf '%s\n' "version: 0.1" "log:" "  level: info" "  formatter: text" "storage:" "  filesystem:" \
			"    rootdirectory: $d/data" "  delete:" "    enabled: true" "  maintenance:" "    uploadpurging:" \
			"      enabled: false" "http:" "  addr: 127.0.0.1:$port" "  secret: $(openssl rand -hex 16)"
		if [ "$mode" != plain ]; then
			printf '%s\n' "  tls:" "    certificate: $d/server.crt" "    key: $d/server.key"
		fi
		case $mode in
		basic) printf '%s\n' "auth:" "  htpasswd:" "    realm: qimg-test" "    path: $d/htpasswd" ;;
		token) printf '%s\n' "auth:" "  token:" "    realm: $TOKEN_URL" "    service: qimg-test-registry" \
			"    issuer: qimg-test-issuer" "    rootcertbundle: $d/token-sign.crt" ;;
		esac
	} >"$d/config.yml"
}

_t_reg_ready() { # URL PID: poll /v2/ until 200 or 401; 0 ready, 1 the registry died, 2 not within 20 s
	local code deadline=$((SECONDS + 20)) ca=()
	[ -n "${REG_CA-}" ] && ca=(--cacert "$REG_CA")
	while [ "$SECONDS" -lt "$deadline" ]; do
		_t_alive "$2" || return 1
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "${ca[@]}" "$1/v2/" 2>/dev/null)
		case $code in 200 | 401) return 0 ;; esac
		sleep 0.05
	done
	return 2
}

# registry_start [plain|tls|basic|token]: Debian's docker-registry (distribution 2.8) on a free loopback port.
registry_start() {
	local mode=${1:-plain} d port attempt st scheme=https
	case $mode in plain | tls | basic | token) ;; *)
		echo "registry_start: unknown mode '$mode' (plain, tls, basic or token)" >&2
		return 1
		;;
	esac
	_T_REG_N=$((_T_REG_N + 1))
	d=$TMPD/registry$_T_REG_N
	mkdir -p "$d/data"
	unset REG_CA REG_USER REG_PASS TOKEN_URL TOKEN_LOG
	if [ "$mode" = plain ]; then
		scheme=http
	else
		_t_ca && _t_server_cert "$d" || return 1
		REG_CA=$TMPD/pki/ca.crt
		REG_CERTS_DIR=$TMPD/certs.d
		export REG_CA REG_CERTS_DIR
	fi
	if [ "$mode" = basic ] || [ "$mode" = token ]; then
		REG_USER=qimgtester REG_PASS=pw-$(openssl rand -hex 8)
		export REG_USER REG_PASS
	fi
	[ "$mode" = basic ] && { htpasswd -Bbn "$REG_USER" "$REG_PASS" >"$d/htpasswd" 2>/dev/null || return 1; }
	[ "$mode" = token ] && { _t_token_start "$d" || return 1; }
	for attempt in 1 2 3 4 5; do # a port can be taken between free_port and the registry's bind
		port=$(free_port) || return 1
		_t_reg_config "$d" "$port" "$mode"
		_t_spawn "$d/registry.log" docker-registry serve "$d/config.yml"
		_t_reg_ready "$scheme://127.0.0.1:$port" "$_T_LASTPID"
		st=$?
		[ $st -eq 0 ] && break
		if [ $st -eq 1 ] && grep -q 'address already in use' "$d/registry.log"; then continue; fi
		echo "registry_start: $mode registry on 127.0.0.1:$port did not become ready; its log:" >&2
		cat "$d/registry.log" >&2
		return 1
	done
	[ $st -eq 0 ] || { echo "registry_start: no free port after $attempt tries" >&2 && return 1; }
	[ "$mode" = plain ] || { _t_certs_dir_add "127.0.0.1:$port" && _t_certs_dir_add "localhost:$port"; }
	REG=127.0.0.1:$port REG_URL=$scheme://127.0.0.1:$port REG_MODE=$mode REG_DATA=$d/data REG_LOG=$d/registry.log
	export REG REG_URL REG_MODE REG_DATA REG_LOG
}

# registry_stop: stop every registry and token server this file started (also run by the EXIT trap).
registry_stop() {
	local p i live
	[ ${#_T_PIDS[@]} -gt 0 ] || return 0
	kill -TERM "${_T_PIDS[@]}" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		live=0
		for p in "${_T_PIDS[@]}"; do _t_alive "$p" && live=1; done
		[ $live -eq 0 ] && break
		sleep 0.05
	done
	[ $live -eq 0 ] || kill -KILL "${_T_PIDS[@]}" 2>/dev/null
	wait "${_T_PIDS[@]}" 2>/dev/null
	_T_PIDS=()
}

# reg_token SCOPE [anon]: print a bearer token from the token server (REG_USER's unless "anon").
reg_token() {
	local scope=$1 creds=(-u "$REG_USER:$REG_PASS")
	[ "${2-}" = anon ] && creds=()
	curl -sf --cacert "$REG_CA" "${creds[@]}" -G --data-urlencode "service=qimg-test-registry" \
		--data-urlencode "scope=$scope" "$TOKEN_URL" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["token"])'
}

# ---------------------------------------------------------------------------------------------------- fixtures
declare -A _T_CUSTOM=()

_t_locked() { # LOCKFILE CMD...: run CMD holding an exclusive flock on LOCKFILE
	local lock=$1
	shift
	mkdir -p "$(dirname "$lock")"
	(
		flock 9 || exit 1
		"$@"
	) 9>"$lock"
}

_t_build_layout() { # DIR NAME SPEC-ARGS...: build the layout unless another run did while we waited
	local dir=$1 name=$2
	shift 2
	[ -d "$dir" ] && return 0
	rm -rf "$dir.tmp"
	"$PY" "$_T_FIXTURES/build.py" build "$@" "$dir" "$name" >/dev/null || return 1
	_t_prune "$dir" "$name"
}

_t_prune() { # DIR NAME: remove DIR's siblings NAME-<key> (older builds, from other recipes)
	local old key
	for old in "$(dirname "$1")/$2"-*; do
		key=${old##*/"$2"-}
		if [ "$old" != "$1" ] && [ ${#key} -eq 24 ] && [[ $key != *[!0-9a-f]* ]]; then rm -rf "$old"; fi
	done
	return 0
}

_t_spec_args() { # NAME -> the build.py spec arguments in _T_SPEC
	case $1 in
	busybox | multilayer | multiarch | schema2 | zstd) _T_SPEC=(--builtin "$1") ;;
	*)
		[ -n "${_T_CUSTOM[$1]-}" ] || { echo "fixture: unknown fixture '$1'" >&2 && return 1; }
		_T_SPEC=("${_T_CUSTOM[$1]}")
		;;
	esac
}

# fixture_layout NAME: print the OCI layout dir of fixture NAME (built and cached on first use).
fixture_layout() {
	local name=$1 key dir
	[ "$name" = debian ] && { _t_debian_layout; return; }
	_t_spec_args "$name" || return 1
	key=$("$PY" "$_T_FIXTURES/build.py" key "${_T_SPEC[@]}") || return 1
	dir=$QIMG_TEST_CACHE/fixtures/$name-$key
	if [ ! -d "$dir" ]; then
		_t_locked "$QIMG_TEST_CACHE/fixtures/$name.lock" _t_build_layout "$dir" "$name" "${_T_SPEC[@]}" ||
			{ echo "fixture_layout: building $name failed" >&2 && return 1; }
	fi
	printf '%s\n' "$dir"
}

# skopeo's destination options for the current registry.
_t_skopeo_dest() {
	_T_DEST=(--dest-tls-verify=false)
	if [ "${REG_MODE-}" != plain ]; then _T_DEST=(--dest-cert-dir "$REG_CERTS_DIR/$REG"); fi
	if [ -n "${REG_USER-}" ]; then _T_DEST+=(--dest-creds "$REG_USER:$REG_PASS"); fi
}

# Push with skopeo: builtin fixtures and specs with "push_format" (skopeo copy --format).
_t_push_skopeo() { # LAYOUT NAME DEST
	local fmt=()
	[ -f "$1/push-format" ] && fmt=(--format "$(cat "$1/push-format")")
	_t_skopeo_dest
	skopeo --insecure-policy copy --quiet --all "${fmt[@]}" "${_T_DEST[@]}" --digestfile "$TMPD/push.digest" \
		"oci:$1:$2" "docker://$REG/$3"
}

# Push byte for byte (custom fixtures): skopeo would recompress an uncompressed or undecodable layer.
_t_push_raw() { # LAYOUT NAME DEST
	local opts=(--plain)
	[ "${REG_MODE-}" = plain ] || opts=(--cacert "$REG_CA")
	[ -z "${REG_USER-}" ] || opts+=(--creds "$REG_USER:$REG_PASS")
	"$PY" "$QIMG_TESTS_DIR/registry/push.py" "$1" "$2" "$REG/$3" "${opts[@]}" --digestfile "$TMPD/push.digest"
}

# fixture_push NAME [REPO:TAG]: push fixture NAME to $REG (default repository NAME:latest); sets FIXTURE_DIGEST.
fixture_push() {
	local name=$1 dest=${2:-$1:latest} layout how=_t_push_raw
	[ -n "${REG-}" ] || { echo "fixture_push: no registry (call registry_start first)" >&2 && return 1; }
	layout=$(fixture_layout "$name") || return 1
	if [ -z "${_T_CUSTOM[$name]-}" ] || [ -f "$layout/push-format" ]; then how=_t_push_skopeo; fi
	if ! "$how" "$layout" "$name" "$dest" >"$TMPD/push.log" 2>&1; then
		echo "fixture_push: pushing $name to $REG/$dest failed:" >&2
		cat "$TMPD/push.log" >&2
		return 1
	fi
	# shellcheck disable=SC2034 # for the test files
	FIXTURE_DIGEST=$(cat "$TMPD/push.digest")
}

# fixture_custom NAME SPEC.json [REPO:TAG]: register a spec (format: tests/fixtures/README.md), build it, and
# push it to $REG when a registry runs. fixture_layout/fixture_push NAME work afterwards.
fixture_custom() {
	local name=$1 spec=$2
	case $name in busybox | multilayer | multiarch | schema2 | zstd | debian | *[!a-z0-9._-]*)
		echo "fixture_custom: '$name' is a builtin name or not [a-z0-9._-] (a repository name)" >&2
		return 1
		;;
	esac
	[ -f "$spec" ] || { echo "fixture_custom: no spec file $spec" >&2 && return 1; }
	_T_CUSTOM[$name]=$(realpath "$spec")
	if [ -n "${REG-}" ]; then fixture_push "$name" "${3:-$name:latest}"; else fixture_layout "$name" >/dev/null; fi
}

_t_mirror() { # the host's Debian mirror (DESIGN.md §8)
	local uri
	uri=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/*.sources 2>/dev/null)
	[ -n "$uri" ] || uri=$(awk '$1 == "deb" && $0 !~ /security/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null)
	printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}

_t_debootstrap() { # DIR MIRROR: a bookworm minbase rootfs in DIR, with the host's apt sources
	local dir=$1 mirror=$2 f
	[ -d "$dir" ] && return 0
	rm -rf "$dir.tmp"
	echo "fixture: debootstrap --variant=minbase bookworm from $mirror (about a minute, cached)" >&2
	debootstrap --variant=minbase bookworm "$dir.tmp" "$mirror" >"$dir.log" 2>&1 ||
		{ tail -n 30 "$dir.log" >&2 && return 1; }
	rm -f "$dir.tmp/etc/apt/sources.list"
	for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list; do
		[ -s "$f" ] && cp "$f" "$dir.tmp/etc/apt/${f#/etc/apt/}"
	done
	echo 'Acquire::Check-Valid-Until "false";' >"$dir.tmp/etc/apt/apt.conf.d/99qimg-snapshot"
	# Like the official image: empty /dev /proc /sys, no apt lists or caches, nothing of this host's.
	find "$dir.tmp/dev" "$dir.tmp/proc" "$dir.tmp/sys" "$dir.tmp/var/lib/apt/lists" "$dir.tmp/var/cache/apt" \
		-mindepth 1 -maxdepth 1 ! -name partial -exec rm -rf {} + 2>/dev/null
	rm -f "$dir.tmp/etc/resolv.conf"
	echo localhost >"$dir.tmp/etc/hostname"
	mv "$dir.tmp" "$dir" && rm -f "$dir.log" && _t_prune "$dir" debian-rootfs
}

_t_debian_key() { # the recipe (_t_debootstrap's steps, the host's apt sources) decides the cache entry
	{
		cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null
		declare -f _t_debootstrap
		_t_mirror
	} | sha256sum | cut -c1-24
}

# fixture_rootfs debian: print the cached debootstrap tree (for peers' benchmarks: bwrap --bind ROOTFS /).
fixture_rootfs() {
	[ "$1" = debian ] || { echo "fixture_rootfs: only 'debian' has a rootfs" >&2 && return 1; }
	local dir
	dir=$QIMG_TEST_CACHE/debian-rootfs-$(_t_debian_key)
	[ -d "$dir" ] || _t_locked "$QIMG_TEST_CACHE/debian.lock" _t_debootstrap "$dir" "$(_t_mirror)" || return 1
	printf '%s\n' "$dir"
}

_t_debian_layout() { # the layout is keyed by the rootfs and the builder
	local rootfs key dir spec
	rootfs=$(fixture_rootfs debian) || return 1
	key=$({ echo "$rootfs" && cat "$_T_FIXTURES/build.py"; } | sha256sum | cut -c1-24)
	dir=$QIMG_TEST_CACHE/fixtures/debian-$key
	if [ ! -d "$dir" ]; then
		spec=$TMPD/debian-$key.json
		printf '{"config": {"Env": ["PATH=%s"], "Cmd": ["bash"]}, "layers": [{"from_dir": "%s"}]}\n' \
			"$_T_PATH" "$rootfs" >"$spec"
		_t_locked "$QIMG_TEST_CACHE/fixtures/debian.lock" _t_build_layout "$dir" debian "$spec" ||
			{ echo "fixture_layout: building debian failed" >&2 && return 1; }
	fi
	printf '%s\n' "$dir"
}

# tree_list DIR [--uidmap H:B --gidmap H:B]: the tree in multilayer.expected's format (see tests/fixtures/tree.py).
tree_list() { "$PY" "$_T_FIXTURES/tree.py" "$@"; }
# tree_compare EXPECTED DIR [opts]: 0 when DIR matches EXPECTED ("*" in a field matches anything); diff on stdout.
tree_compare() { "$PY" "$_T_FIXTURES/tree.py" "$2" --expect "$1" "${@:3}"; }

# ---------------------------------------------------------------------------------------------------- users
TUSER=qimgtest

_t_next_range() { # first multiple of 65536 (>= 100000) past every range in /etc/subuid and /etc/subgid
	awk -F: 'NF >= 3 { e = $2 + $3; if (e > m) m = e } END { s = 131072; while (s < m) s += 65536; print s }' \
		/etc/subuid /etc/subgid 2>/dev/null
}

_t_user_create() {
	local start
	if ! id -u "$TUSER" >/dev/null 2>&1; then
		useradd -m -s /bin/sh -c "qimg test user" "$TUSER" || return 1
	fi
	touch /etc/subuid /etc/subgid
	if ! grep -q "^$TUSER:" /etc/subuid || ! grep -q "^$TUSER:" /etc/subgid; then
		start=$(_t_next_range)
		grep -q "^$TUSER:" /etc/subuid || usermod --add-subuids "$start-$((start + 65535))" "$TUSER" || return 1
		grep -q "^$TUSER:" /etc/subgid || usermod --add-subgids "$start-$((start + 65535))" "$TUSER" || return 1
	fi
}

_t_user_dirs() { # per-file HOME, XDG_RUNTIME_DIR and store parent, owned by OWNER
	local owner=$2 d=$TMPD/$1
	mkdir -p "$d/home" "$d/run"
	chmod 0700 "$d" "$d/run"
	chown -R "$owner" "$d"
}

_t_user_setup() {
	if [ "$(id -u)" != 0 ]; then
		TUSER= # not root: no second user, as_user runs as ourselves
		_t_user_dirs user "$(id -u):$(id -g)"
		return 0
	fi
	_t_locked /run/lock/qimg-test-user.lock _t_user_create || { echo "lib.sh: cannot create $TUSER" >&2 && TUSER= && return 0; }
	TUSER_UID=$(id -u "$TUSER") TUSER_GID=$(id -g "$TUSER")
	TUSER_SUBUID=$(awk -F: -v u="$TUSER" '$1 == u { print $2; exit }' /etc/subuid)
	TUSER_SUBGID=$(awk -F: -v u="$TUSER" '$1 == u { print $2; exit }' /etc/subgid)
	_t_user_dirs user "$TUSER_UID:$TUSER_GID"
	export TUSER TUSER_UID TUSER_GID TUSER_SUBUID TUSER_SUBGID
}

_t_user_setup
_t_user_dirs root "$(id -u):$(id -g)"
USER_HOME=$TMPD/user/home USER_RUNTIME=$TMPD/user/run USER_STORE=$TMPD/user/store
ROOT_HOME=$TMPD/root/home ROOT_RUNTIME=$TMPD/root/run ROOT_STORE=$TMPD/root/store
export USER_HOME USER_STORE ROOT_STORE

# The clean environment's pass-through: the process tag, sanitizer options, and exported QIMG_* settings
# (QIMG_X=1 as_user ...), but not QIMG_STORE (set per user) nor the harness's own variables.
_t_pass_env() {
	local v
	_T_ENV=(QIMG_TEST_TAG="$QIMG_TEST_TAG")
	for v in ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS TERM; do
		if [ -n "${!v-}" ]; then _T_ENV+=("$v=${!v}"); fi
	done
	while IFS= read -r v; do
		case $v in
		QIMG_STORE | QIMG_TEST_* | QIMG_RESULTS | QIMG_BIN | QIMG_UNIT_DIR | QIMG_E2E_DIR) ;;
		*) _T_ENV+=("$v=${!v}") ;;
		esac
	done < <(compgen -e | grep '^QIMG_')
}

# The current MODE's (set by `both`) store, HOME, XDG_RUNTIME_DIR, user name, uid and uid:gid; runas: as_root or
# as_user. Not root (no TUSER): the user mode is the caller.
store_dir() { if [ "$MODE" = root ]; then echo "$ROOT_STORE"; else echo "$USER_STORE"; fi; }
mode_home() { if [ "$MODE" = root ]; then echo "$ROOT_HOME"; else echo "$USER_HOME"; fi; }
mode_runtime() { if [ "$MODE" = root ]; then echo "$ROOT_RUNTIME"; else echo "$USER_RUNTIME"; fi; }
mode_user() { if [ "$MODE" = root ] || [ -z "$TUSER" ]; then id -un; else echo "$TUSER"; fi; }
mode_uid() { if [ "$MODE" = root ] || [ -z "$TUSER" ]; then id -u; else echo "$TUSER_UID"; fi; }
mode_ids() { if [ "$MODE" = root ] || [ -z "$TUSER" ]; then echo "$(id -u):$(id -g)"; else echo "$TUSER_UID:$TUSER_GID"; fi; }
runas() { echo "${Q%% *}"; }
# withconf FILE CMD...: CMD with $QIMG_REGISTRIES_CONF=FILE (as_root/as_user pass QIMG_* on; "" = unset: the usual search)
withconf() {
	local c=$1
	shift
	QIMG_REGISTRIES_CONF=$c "$@"
}

# as_user CMD...: run CMD as TUSER with a clean environment (HOME, PATH, XDG_RUNTIME_DIR, QIMG_STORE).
as_user() {
	if [ -z "$TUSER" ]; then
		QIMG_STORE=${QIMG_STORE:-$USER_STORE} as_root "$@"
		return
	fi
	_t_pass_env
	env -i "${_T_ENV[@]}" HOME="$USER_HOME" PATH="$_T_PATH" USER="$TUSER" LOGNAME="$TUSER" \
		XDG_RUNTIME_DIR="$USER_RUNTIME" QIMG_STORE="${QIMG_STORE:-$USER_STORE}" \
		timeout --foreground -k 5 "$T_TIMEOUT" \
		setpriv --reuid="$TUSER_UID" --regid="$TUSER_GID" --init-groups -- "$@"
}

# as_root CMD...: run CMD as root (as ourselves when not root) with the same clean environment.
as_root() {
	_t_pass_env
	env -i "${_T_ENV[@]}" HOME="$ROOT_HOME" PATH="$_T_PATH" USER="$(id -un)" LOGNAME="$(id -un)" \
		XDG_RUNTIME_DIR="$ROOT_RUNTIME" QIMG_STORE="${QIMG_STORE:-$ROOT_STORE}" \
		timeout --foreground -k 5 "$T_TIMEOUT" "$@"
}

# both FN [ARGS]: FN once as root (MODE=root, Q="as_root $QIMG") and once as TUSER (MODE=user).
both() {
	local fn=$1
	shift
	MODE=root Q="as_root $QIMG" "$fn" "$@"
	MODE=user Q="as_user $QIMG" "$fn" "$@"
}

# The test user must be able to execute qimg: copy the binaries out when the checkout is not reachable.
_t_user_binaries() {
	[ -n "$TUSER" ] && [ -x "$QIMG" ] || return 0
	as_user test -x "$QIMG" && return 0
	mkdir -p "$TMPD/bin" && cp "$QIMG" "$TMPD/bin/qimg" && chmod 0755 "$TMPD/bin" "$TMPD/bin/qimg" || return 1
	[ -x "$(dirname "$QIMG")/qimg-pull" ] && cp "$(dirname "$QIMG")/qimg-pull" "$TMPD/bin/" && chmod 0755 "$TMPD/bin/qimg-pull"
	QIMG=$TMPD/bin/qimg
}
_t_user_binaries
export QIMG
