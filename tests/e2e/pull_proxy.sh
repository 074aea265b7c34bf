# qimg pull through a small misbehaving front (python, written below): blob redirects to another host carry no
# credentials, and a 401 from there does not draw them out; a plain-HTTP token realm gets nothing; 503s are
# retried (Retry-After honoured); a lying Docker-Content-Digest, a schema 1 or a broken manifest is refused; a
# connection cut mid-blob resumes with Range; a registry that never answers is given up on.

cat >"$TMPD/front.py" <<'EOF'
import argparse, http.client, http.server, json, os, ssl, threading, time, urllib.parse

ap = argparse.ArgumentParser()
ap.add_argument("--upstream", required=True)  # host:port of the real registry
ap.add_argument("--cafile")                   # set: the upstream speaks TLS
ap.add_argument("--blob-dir", required=True)  # the registry's storage (the "CDN" serves blobs from it)
ap.add_argument("--mode", default="pass")     # see do_GET
ap.add_argument("--cert")                     # set (with --key): the front speaks TLS
ap.add_argument("--key")
ap.add_argument("--port-file", required=True)
ap.add_argument("--log", required=True)
args = ap.parse_args()
lock = threading.Lock()
state = {"fail": 2, "cut": 1}
KEEP = ("content-type", "docker-content-digest", "www-authenticate", "location", "content-range", "retry-after")

def log(entry):
    with lock, open(args.log, "a") as f:
        f.write(json.dumps(entry) + "\n")

def take(key):
    with lock:
        n = state[key]
        state[key] = n - 1
        return n > 0

class Base(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

class Cdn(Base):
    def do_GET(self):
        log({"who": "cdn", "path": self.path, "auth": "Authorization" in self.headers})
        if args.mode in ("redirect401", "httprealm"):
            return self.reply(401, b"{}", [("WWW-Authenticate", 'Basic realm="cdn"')])
        h = urllib.parse.urlsplit(self.path).path.rsplit("sha256:", 1)[-1]
        with open(os.path.join(args.blob_dir, "docker/registry/v2/blobs/sha256", h[:2], h, "data"), "rb") as f:
            self.reply(200, f.read(), [("Content-Type", "application/octet-stream")])

class Front(Base):
    def upstream(self):
        if args.cafile:
            return http.client.HTTPSConnection(args.upstream, context=ssl.create_default_context(cafile=args.cafile))
        return http.client.HTTPConnection(args.upstream)
    def do_GET(self):
        blob = "/blobs/sha256:" in self.path
        log({"who": "front", "path": self.path, "auth": "Authorization" in self.headers,
             "range": self.headers.get("Range")})
        if args.mode == "hang":
            time.sleep(120)
            return
        if args.mode == "schema1" and "/manifests/" in self.path:
            return self.reply(200, b'{"schemaVersion": 1, "name": "x", "tag": "latest", "fsLayers": []}',
                              [("Content-Type", "application/vnd.docker.distribution.manifest.v1+prettyjws")])
        if args.mode == "badjson" and "/manifests/" in self.path:
            return self.reply(200, b'{"schemaVersion": 2, "layers": [', [("Content-Type", "application/json")])
        if args.mode == "httprealm" and "Authorization" not in self.headers:
            realm = "http://127.0.0.1:%d/token" % cdn.server_address[1]
            return self.reply(401, b"{}", [("WWW-Authenticate", 'Bearer realm="%s",service="x"' % realm)])
        if args.mode in ("redirect", "redirect401") and blob and "Authorization" in self.headers:
            loc = "http://127.0.0.1:%d/cdn/%s?X-Signature=abc" % (cdn.server_address[1], self.path.rsplit("/", 1)[1])
            return self.reply(307, b"", [("Location", loc)])
        if args.mode == "fail503" and "/manifests/" in self.path and take("fail"):
            return self.reply(503, b'{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}', [("Retry-After", "1")])
        c = self.upstream()
        c.request("GET", self.path, headers={k: self.headers[k] for k in ("Authorization", "Accept", "Range") if k in self.headers})
        r = c.getresponse()
        body = r.read()
        if args.mode == "cut" and blob and r.status == 200 and len(body) > 4096 and take("cut"):
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        hdrs = [(k, v) for k, v in r.getheaders() if k.lower() in KEEP]
        if args.mode == "baddcd":
            hdrs = [(k, "sha256:" + "0" * 64 if k.lower() == "docker-content-digest" else v) for k, v in hdrs]
        self.reply(r.status, body, hdrs)

class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

cdn = Server(("127.0.0.1", 0), Cdn)
front = Server(("127.0.0.1", 0), Front)
if args.cert:
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(args.cert, args.key)
    front.socket = tls.wrap_socket(front.socket, server_side=True)
for s in (cdn, front):
    threading.Thread(target=s.serve_forever, daemon=True).start()
with open(args.port_file + ".tmp", "w") as f:
    f.write("%d\n" % front.server_address[1])
os.rename(args.port_file + ".tmp", args.port_file)
threading.Event().wait()
EOF

FRONT_N=0
front_start() { # MODE [ARGS]: a front on a free port before $REG; sets FRONT and FRONT_LOG
	local pf ca=() mode=$1
	shift
	FRONT_N=$((FRONT_N + 1))
	pf=$TMPD/front$FRONT_N.port FRONT_LOG=$TMPD/front$FRONT_N.log
	: >"$FRONT_LOG"
	[ "$REG_MODE" = plain ] || ca=(--cafile "$REG_CA")
	_t_spawn "$TMPD/front$FRONT_N.out" "$PY" "$TMPD/front.py" --upstream "$REG" "${ca[@]}" --blob-dir "$REG_DATA" \
		--mode "$mode" --port-file "$pf" --log "$FRONT_LOG" "$@"
	_t_wait_port_file "$pf" "$_T_LASTPID" || { cat "$TMPD/front$FRONT_N.out" >&2 && return 1; }
	FRONT=127.0.0.1:$(cat "$pf")
}

fresh() { echo "$TMPD/$MODE/s-$1"; }
count() { grep -c "$1" "$FRONT_LOG"; }

# ---- credentials and redirects (Basic registry behind the front; blobs redirected to a "CDN" port) ----
t_redirect() {
	local f=$TMPD/redirect-auth.json
	front_start redirect || { fail "redirect: front_start" "did not start" && return; }
	printf '{"auths": {"%s": {"auth": "%s"}}}\n' "$FRONT" "$(printf '%s:%s' "$REG_USER" "$REG_PASS" | base64 -w0)" >"$f"
	chmod 0644 "$f"
	t_ok "redirect: pull with blobs redirected to another host" \
		$Q --store "$(fresh redirect)" -vv pull --tls-verify=false --authfile "$f" "$FRONT/test/busybox:latest"
	t_eq "redirect: every blob GET to the registry carried credentials" 0 \
		"$(grep '"who": "front"' "$FRONT_LOG" | grep '/blobs/' | grep -c '"auth": false')"
	t_eq "redirect: both blobs came from the redirect target" 2 "$(count '"who": "cdn"')"
	t_eq "redirect: no Authorization reached the redirect target" 0 "$(grep '"who": "cdn"' "$FRONT_LOG" | grep -c '"auth": true')"
	t_fail "redirect: presigned query strings stay out of the log" grep -q "X-Signature" "$T_ERR"
}

# ---- credentials never go where the registry's origin did not send them ----
t_leaks() {
	local f=$TMPD/leaks-auth.json d
	front_start redirect401 || { fail "redirect401: front_start" "did not start" && return; }
	printf '{"auths": {"%s": {"auth": "%s"}}}\n' "$FRONT" "$(printf '%s:%s' "$REG_USER" "$REG_PASS" | base64 -w0)" >"$f"
	chmod 0644 "$f"
	t_fail "redirect401: a 401 from a redirect target fails the pull" \
		$Q --store "$(fresh r401)" pull --tls-verify=false --authfile "$f" "$FRONT/test/busybox:latest"
	t_contains "redirect401: says credentials are only for the registry" "credentials are only sent to $FRONT" "$(cat "$T_ERR")"
	t_eq "redirect401: the redirect target never saw credentials" 0 "$(grep '"who": "cdn"' "$FRONT_LOG" | grep -c '"auth": true')"

	# a TLS front (the registry's certificate, trusted through a certs dir) whose challenge names a plain-HTTP realm
	front_start httprealm --cert "$REG_DIR/server.crt" --key "$REG_DIR/server.key" ||
		{ fail "httprealm: front_start" "did not start" && return; }
	d=$TMPD/certs-front
	mkdir -p "$d/$FRONT" && cp "$REG_CA" "$d/$FRONT/ca.crt"
	printf '{"auths": {"%s": {"auth": "%s"}}}\n' "$FRONT" "$(printf '%s:%s' "$REG_USER" "$REG_PASS" | base64 -w0)" >"$f"
	t_fail "httprealm: a plain-HTTP token realm is refused" \
		$Q --store "$(fresh realm)" pull --certs-dir "$d" --authfile "$f" "$FRONT/test/busybox:latest"
	t_contains "httprealm: says why" "plain HTTP" "$(cat "$T_ERR")"
	t_eq "httprealm: nothing was sent to the realm" 0 "$(count '"who": "cdn"')"
}

t_bad_manifests() {
	front_start schema1 || { fail "schema1: front_start" "did not start" && return; }
	t_fail "schema1: refused" $Q --store "$(fresh s1)" pull --tls-verify=false "$FRONT/test/busybox:latest"
	t_contains "schema1: says so" "schema 1" "$(cat "$T_ERR")"
	front_start badjson || { fail "badjson: front_start" "did not start" && return; }
	t_fail "badjson: refused" $Q --store "$(fresh bj)" pull --tls-verify=false "$FRONT/test/busybox:latest"
	t_contains "badjson: says so" "invalid JSON" "$(cat "$T_ERR")"
}

# ---- retries, header lies, cut connections, silence (plain registry behind the front) ----
t_misbehave() {
	local start
	front_start fail503 || { fail "503: front_start" "did not start" && return; }
	start=$SECONDS
	t_ok "503: retried until the registry answers" $Q --store "$(fresh 503)" pull --tls-verify=false "$FRONT/test/busybox:latest"
	t_eq "503: three manifest GETs (two 503s, one 200)" 3 "$(count '/manifests/latest')"
	t_ok "503: Retry-After honoured (>= 2 s)" test $((SECONDS - start)) -ge 2

	front_start baddcd || { fail "baddcd: front_start" "did not start" && return; }
	t_fail "baddcd: a wrong Docker-Content-Digest fails the pull" $Q --store "$(fresh dcd)" pull --tls-verify=false "$FRONT/test/busybox:latest"
	t_contains "baddcd: says so" "Docker-Content-Digest sha256:0000" "$(cat "$T_ERR")"

	front_start cut || { fail "cut: front_start" "did not start" && return; }
	t_ok "cut: a connection cut mid-blob is resumed" $Q --store "$(fresh cut)" -vv pull --tls-verify=false "$FRONT/test/busybox:latest"
	t_eq "cut: digest" "$BB" "$(cat "$T_OUT")"
	t_ok "cut: the retry asked for the rest with Range" grep -q '"range": "bytes=[1-9][0-9]*-"' "$FRONT_LOG"

	front_start hang || { fail "hang: front_start" "did not start" && return; }
	start=$SECONDS
	export QIMG_HTTP_TIMEOUT=1 # passed through by as_root/as_user
	t_fail "hang: a registry that never answers is given up on" \
		$Q --store "$(fresh hang)" pull --tls-verify=false "$FRONT/test/busybox:latest"
	unset QIMG_HTTP_TIMEOUT
	t_contains "hang: says it timed out" "after 4 tries" "$(cat "$T_ERR")"
	t_ok "hang: within the bounded retries (< 60 s)" test $((SECONDS - start)) -lt 60
}

registry_start basic || { fail "pull_proxy: registry_start basic" "did not start"; exit 0; }
fixture_push busybox test/busybox:latest || { fail "pull_proxy: push (basic)" "push failed"; exit 0; }
REG_DIR=$(dirname "$REG_DATA")
both t_redirect
both t_leaks
registry_stop

registry_start plain || { fail "pull_proxy: registry_start plain" "did not start"; exit 0; }
fixture_push busybox test/busybox:latest || { fail "pull_proxy: push (plain)" "push failed"; exit 0; }
BB=$FIXTURE_DIGEST
both t_misbehave
both t_bad_manifests
