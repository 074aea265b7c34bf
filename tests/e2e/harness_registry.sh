# Self-tests of the harness's registries: each mode serves pushes and pulls as it should (checked with skopeo
# and curl, not qimg), the token server grants exactly what it should, and nothing outlives a test file.

# skopeo/curl options for the current registry: TLS trust and (with "creds") the test credentials.
src_opts() {
	SRC=(--tls-verify=false)
	[ "$REG_MODE" = plain ] || SRC=(--cert-dir "$REG_CERTS_DIR/$REG")
	[ "${1-}" = creds ] && [ -n "${REG_USER-}" ] && SRC+=(--creds "$REG_USER:$REG_PASS")
}
http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 ${REG_CA:+--cacert "$REG_CA"} "$@"; }

push_and_inspect() { # MODE
	local m=$1 digest
	if ! fixture_push busybox "bb/$m:latest"; then
		fail "$m: fixture_push busybox" "push failed"
		return
	fi
	src_opts creds
	digest=$(skopeo inspect --format '{{.Digest}}' "${SRC[@]}" "docker://$REG/bb/$m:latest" 2>&1)
	t_eq "$m: skopeo inspect shows the pushed digest" "$FIXTURE_DIGEST" "$digest"
	t_ok "$m: skopeo copies the image back" skopeo --insecure-policy copy --quiet "${SRC[@]/--/--src-}" \
		"docker://$REG/bb/$m:latest" "oci:$TMPD/back-$m:x"
}

test_plain() {
	registry_start plain || { fail "plain: registry_start" "did not start" && return; }
	t_eq "plain: REG is a loopback address" "127.0.0.1" "${REG%:*}"
	t_eq "plain: GET /v2/ answers 200" 200 "$(http_code "$REG_URL/v2/")"
	push_and_inspect plain
}

test_tls() {
	registry_start tls || { fail "tls: registry_start" "did not start" && return; }
	t_ok "tls: certs dir has DIR/HOST:PORT/ca.crt" test -s "$REG_CERTS_DIR/$REG/ca.crt"
	t_ok "tls: the server cert names 127.0.0.1 and verifies against REG_CA" curl -sf --cacert "$REG_CA" "$REG_URL/v2/"
	t_ok "tls: the server cert also names localhost" curl -sf --cacert "$REG_CA" "https://localhost:${REG##*:}/v2/"
	t_fail "tls: an untrusting client is refused" curl -sf "$REG_URL/v2/"
	t_fail "tls: plain HTTP is not served" curl -sf --max-time 5 "http://$REG/v2/"
	push_and_inspect tls
}

test_basic() {
	registry_start basic || { fail "basic: registry_start" "did not start" && return; }
	t_eq "basic: GET /v2/ without credentials answers 401" 401 "$(http_code "$REG_URL/v2/")"
	t_eq "basic: GET /v2/ with REG_USER/REG_PASS answers 200" 200 \
		"$(http_code -u "$REG_USER:$REG_PASS" "$REG_URL/v2/")"
	t_eq "basic: a wrong password answers 401" 401 "$(http_code -u "$REG_USER:wrong" "$REG_URL/v2/")"
	t_contains "basic: the challenge is Basic" 'Basic realm="qimg-test"' \
		"$(curl -s -D - -o /dev/null ${REG_CA:+--cacert "$REG_CA"} "$REG_URL/v2/")"
	push_and_inspect basic
	src_opts
	t_fail "basic: skopeo without credentials cannot read" skopeo inspect --raw "${SRC[@]}" \
		"docker://$REG/bb/basic:latest"
}

token() { # [CURL AUTH ARGS] -- SCOPE...: ask the token server; body in $TMPD/token.body, status in TOKEN_STATUS
	local auth=() scope=() a
	while [ $# -gt 0 ] && [ "$1" != -- ]; do auth+=("$1") && shift; done
	shift
	for a in "$@"; do scope+=(--data-urlencode "scope=$a"); done
	TOKEN_STATUS=$(curl -s -o "$TMPD/token.body" -w '%{http_code}' --cacert "$REG_CA" "${auth[@]}" -G \
		--data-urlencode service=qimg-test-registry "${scope[@]}" "$TOKEN_URL")
}

claims() { # JWT: its payload, decoded
	"$PY" -c 'import jwt, json, sys; print(json.dumps(jwt.decode(sys.argv[1], options={"verify_signature": False})))' "$1"
}

manifest_code() { # TOKEN REPO: status of GET manifest with that bearer token
	http_code -H "Authorization: Bearer $1" -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
		"$REG_URL/v2/$2/manifests/latest"
}

test_token() {
	local body tok
	registry_start token || { fail "token: registry_start" "did not start" && return; }
	t_contains "token: the registry challenges with the token realm" "Bearer realm=\"$TOKEN_URL\"" \
		"$(curl -s -D - -o /dev/null ${REG_CA:+--cacert "$REG_CA"} "$REG_URL/v2/")"
	push_and_inspect token
	fixture_push busybox public/bb:latest || fail "token: push public/bb" "push failed"

	token -u "$REG_USER:wrong" -- "repository:public/bb:pull"
	t_eq "token: wrong credentials get 401" 401 "$TOKEN_STATUS"
	token -u "$REG_USER:" -- "repository:public/bb:pull"
	t_eq "token: an empty password gets 401" 401 "$TOKEN_STATUS"
	t_eq "token: a wrong service gets 400" 400 "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$REG_CA" \
		"$TOKEN_URL?service=other&scope=repository:public/bb:pull")"

	token -- "repository:public/bb:pull,push" "repository:bb/token:pull"
	t_eq "token: anonymous gets a token (200)" 200 "$TOKEN_STATUS"
	body=$(cat "$TMPD/token.body")
	tok=$("$PY" -c 'import json,sys; d = json.load(sys.stdin); assert d["token"] == d["access_token"]; print(d["token"])' <<<"$body")
	t_eq "token: anonymous access is pull on public/* only" \
		'[{"type": "repository", "name": "public/bb", "actions": ["pull"]}, {"type": "repository", "name": "bb/token", "actions": []}]' \
		"$("$PY" -c 'import json,sys; print(json.dumps(json.loads(sys.argv[1])["access"]))' "$(claims "$tok")")"
	t_eq "token: expires_in is 300" 300 "$("$PY" -c 'import json,sys; print(json.load(sys.stdin)["expires_in"])' <<<"$body")"
	t_eq "token: anonymous token reads public/bb" 200 "$(manifest_code "$tok" public/bb)"
	t_eq "token: anonymous token cannot read bb/token" 401 "$(manifest_code "$tok" bb/token)"
	t_eq "token: anonymous token cannot push to public/bb" 401 "$(http_code -X POST -H "Authorization: Bearer $tok" \
		"$REG_URL/v2/public/bb/blobs/uploads/")"

	tok=$(reg_token "repository:bb/token:pull,push")
	t_eq "token: REG_USER's token reads bb/token" 200 "$(manifest_code "$tok" bb/token)"
	t_eq "token: REG_USER's token may start an upload" 202 "$(http_code -X POST -H "Authorization: Bearer $tok" \
		"$REG_URL/v2/bb/token/blobs/uploads/")"
	t_eq "token: a forged token is refused" 401 "$(manifest_code "${tok%.*}.AAAA" bb/token)"
	t_eq "token: the OAuth2 POST form works" 200 "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$REG_CA" \
		--data-urlencode grant_type=password --data-urlencode "username=$REG_USER" --data-urlencode "password=$REG_PASS" \
		--data-urlencode service=qimg-test-registry --data-urlencode scope=repository:bb/token:pull "$TOKEN_URL")"

	src_opts
	t_ok "token: skopeo reads public/bb anonymously" skopeo inspect --raw "${SRC[@]}" "docker://$REG/public/bb:latest"
	t_fail "token: skopeo cannot read bb/token anonymously" skopeo inspect --raw "${SRC[@]}" "docker://$REG/bb/token:latest"
	t_fail "token: skopeo with a wrong password is refused" skopeo inspect --raw "${SRC[@]}" \
		--creds "$REG_USER:wrong" "docker://$REG/public/bb:latest"
	t_ok "token: requests are logged with their auth" grep -q '"auth": "basic-bad"' "$TOKEN_LOG"
}

test_stop() {
	local pids p
	registry_start plain || { fail "stop: registry_start" "did not start" && return; }
	pids=("${_T_PIDS[@]}")
	registry_stop
	for p in "${pids[@]}"; do
		if kill -0 "$p" 2>/dev/null; then fail "stop: registry_stop ends pid $p" "still running" && return; fi
	done
	pass "stop: registry_stop ends every registry"
	t_fail "stop: the port is closed" curl -sf --max-time 3 "$REG_URL/v2/"
}

# A test file that starts all kinds of servers and then ends (normally, by failing, or by being killed) leaves
# no process and no temp dir behind.
test_file_cleanup() { # HOW
	local how=$1 tag=qimg-nested-$RANDOM$RANDOM tmproot=$TMPD/nested-$1 left
	mkdir -p "$tmproot" && chmod 0755 "$tmproot"
	cat >"$TMPD/nested.sh" <<-'EOF'
		registry_start token && registry_start basic && registry_start plain || exit 3
		sleep 300 & # a stray child of the test itself
		as_user sleep 301 &
		echo "$TMPD" >"$NESTED_OUT"
		case $NESTED_HOW in
		exit) exit 0 ;;
		error) false; exit 1 ;;
		term) kill -TERM $$; sleep 5 ;;
		esac
	EOF
	QIMG_TEST_TAG=$tag QIMG_RESULTS=$TMPD/nested.results QIMG_TEST_TMPROOT=$tmproot NESTED_HOW=$how \
		NESTED_OUT=$TMPD/nested.out timeout 120 bash -c '. "$1"; . "$2"' _ "$QIMG_TESTS_DIR/lib.sh" "$TMPD/nested.sh" \
		>"$TMPD/nested.log" 2>&1
	left=$("$PY" "$QIMG_TESTS_DIR/registry/reap.py" --tag "$tag" --kill)
	t_eq "cleanup ($how): every process the file started is gone" "" "$left"
	t_ok "cleanup ($how): the file's TMPD was created" test -s "$TMPD/nested.out"
	t_fail "cleanup ($how): the file's TMPD is removed" test -e "$(cat "$TMPD/nested.out" 2>/dev/null)"
	t_eq "cleanup ($how): no TMPD left in its temp root" "" "$(ls "$tmproot")"
}

test_plain
test_tls
test_basic
test_token
test_stop
test_file_cleanup exit
test_file_cleanup error
test_file_cleanup term
