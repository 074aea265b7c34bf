# A hostile registry (issue 6 §2), the cases pull_proxy.sh and pull_errors.sh do not cover: a 50 MB manifest
# (with and without Content-Length), JSON nested 100,000 deep, indexes that loop or nest, a config descriptor
# that is a layer, Bearer challenges with hostile quoting, 429 with Retry-After (recovering and not), a layer blob
# that does not stop at its size, Docker-Content-Digest lies on blobs, garbage and by-digest pulls. Each pull
# ends in a clear error or a successful retry, within bounded time and memory, and leaves the store consistent:
# `qimg system check` passes, every file in blobs/ hashes to its name, tmp/ is empty, no ref for a failed pull.
# The front below (python, one process, all cases) maps /v2/<case>/img/... onto the real test/busybox:latest.

T_TIMEOUT=120 # no pull here may take longer (read by as_root/as_user, which kill it)
export T_TIMEOUT
export QIMG_HTTP_TIMEOUT=10  # stall window per request

cat >"$TMPD/hostile.py" <<'EOF_PY'
import argparse, hashlib, http.client, http.server, json, os, threading, time, urllib.parse

ap = argparse.ArgumentParser()
ap.add_argument("--upstream", required=True)  # host:port of the plain registry holding test/busybox:latest
ap.add_argument("--port-file", required=True)
ap.add_argument("--log", required=True)
args = ap.parse_args()
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
lock = threading.Lock()
counters = {}


def log(**entry):
    with lock, open(args.log, "a") as f:
        f.write(json.dumps(entry) + "\n")


def take(key, n):  # True the first n times for key
    with lock:
        counters[key] = counters.get(key, 0) + 1
        return counters[key] <= n


def upstream(path, headers=None):
    c = http.client.HTTPConnection(args.upstream, timeout=30)
    c.request("GET", path, headers=headers or {})
    r = c.getresponse()
    return r.status, r.getheaders(), r.read()


def digest(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


_, _, REAL = upstream("/v2/test/busybox/manifests/latest", {"Accept": OCI_MANIFEST})
REAL_M = json.loads(REAL)
LAYER = REAL_M["layers"][0]
AMD64 = {"os": "linux", "architecture": "amd64"}


def index(entries):
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()


def desc(mt, body_or_digest, size=None, platform=AMD64):
    d = {"mediaType": mt, "digest": body_or_digest if isinstance(body_or_digest, str) else digest(body_or_digest),
         "size": size if size is not None else len(body_or_digest)}
    if platform:
        d["platform"] = platform
    return d


INNER = index([desc(OCI_MANIFEST, REAL)])  # a valid index of the real image
NESTED = index([desc(OCI_INDEX, INNER)])    # an index whose entry is an index
PROMISE = index([desc(OCI_MANIFEST, INNER)])  # says "manifest", is an index
SELF = index([desc(OCI_MANIFEST, REAL)])    # served for every manifest GET, so the entry comes back as this index
CONFIG_LAYER = dict(REAL_M, config=LAYER)
CONFIG_BLOB = dict(REAL_M, config=dict(REAL_M["config"], digest=LAYER["digest"], size=LAYER["size"]))
DOCS = {  # case -> {reference (None: any) -> (body, Content-Type)}
    "selfloop": {None: (SELF, OCI_INDEX)},
    "nested": {"latest": (NESTED, OCI_INDEX), digest(INNER): (INNER, OCI_INDEX)},
    "promise": {"latest": (PROMISE, OCI_INDEX), digest(INNER): (INNER, OCI_INDEX)},
    "configlayer": {"latest": (json.dumps(CONFIG_LAYER).encode(), OCI_MANIFEST)},
    "configblob": {"latest": (json.dumps(CONFIG_BLOB).encode(), OCI_MANIFEST)},
    "deepjson": {"latest": (b'{"schemaVersion":2,"mediaType":"' + OCI_MANIFEST.encode() + b'","config":' +
                            b"[" * 100000 + b"]" * 100000 + b"}", OCI_MANIFEST)},
}
TRAP = None  # the server a hostile realm names; set below
CHALLENGES = {
    "bearer-unterminated": 'Bearer realm="https://127.0.0.1:{trap}/token',
    "bearer-badquote": 'Bearer realm="https://127.0.0.1:{trap}/token,service="x',
    "bearer-dup": 'Bearer realm="https://127.0.0.1:{trap}/a",realm="https://127.0.0.1:{trap}/b"',
    "bearer-userinfo": 'Bearer realm="https://user:pw@127.0.0.1:{trap}/token",service="x"',
    "bearer-escaped": 'Bearer realm="http://127.0.0.1:{trap}/t\\",service=\\"injected",service="real",'
                      'scope="repository:x:pull"',
    "bearer-empty": 'Bearer realm="",service="x"',
    "bearer-junk": 'Bearer realm=, ,=,"x"',
    "bearer-huge": 'Bearer realm="https://127.0.0.1:{trap}/' + "a" * 20000 + '"',
    "bearer-noscheme": 'Digest realm="x", nonce="y"',
}


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

    def stream(self, first, total, chunked, case):
        """Send first, then zeros (or spaces) up to total bytes; log how much the client took."""
        sent, fill = 0, (b" " if first.startswith(b"{") else b"\0") * 65536
        try:
            self.send_response(200)
            self.send_header("Content-Type", OCI_MANIFEST if first.startswith(b"{") else "application/octet-stream")
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(total))
            self.end_headers()
            data = first
            while sent < total:
                piece = (data or fill)[: total - sent]
                data = b""
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                sent += len(piece)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            log(case=case, what="streamed", sent=sent, total=total)
            self.close_connection = True


class Trap(Base):
    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        log(case="trap", path=u.path, query=urllib.parse.parse_qs(u.query), auth="Authorization" in self.headers)
        self.reply(401, b"{}")


class Front(Base):
    def do_GET(self):
        parts = self.path.split("/", 5)  # '', 'v2', case, 'img', 'manifests'|'blobs', ref
        if len(parts) < 6 or parts[1] != "v2" or parts[3] != "img":
            return self.reply(404)
        case, kind, ref = parts[2], parts[4], parts[5]
        log(case=case, kind=kind, ref=ref, auth="Authorization" in self.headers)
        if case in CHALLENGES:
            return self.reply(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}',
                              [("WWW-Authenticate", CHALLENGES[case].format(trap=TRAP.server_address[1]))])
        if kind == "manifests" and case in DOCS:
            docs = DOCS[case]
            doc = docs.get(ref, docs.get(None))
            if doc is None:
                return self.reply(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
            return self.reply(200, doc[0], [("Content-Type", doc[1])])
        if kind == "manifests" and case in ("bigmanifest", "bigchunked"):
            return self.stream(b'{"schemaVersion":2,', 50 << 20, case == "bigchunked", case)
        if kind == "blobs" and case in ("oversize", "oversize-cl") and ref == LAYER["digest"]:
            _, _, blob = upstream("/v2/test/busybox/blobs/" + ref)
            return self.stream(blob, 1 << 30, case == "oversize", case)
        if case == "ratelimit" and kind == "blobs" and take("ratelimit", 2):
            log(case=case, what="429")
            return self.reply(429, b'{"errors":[{"code":"TOOMANYREQUESTS"}]}', [("Retry-After", "2")])
        if case == "ratelimit-forever":
            return self.reply(429, b'{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}',
                              [("Retry-After", "1")])
        hdrs = {k: self.headers[k] for k in ("Accept", "Range") if k in self.headers}
        status, rh, body = upstream("/v2/test/busybox/%s/%s" % (kind, ref), hdrs)
        keep = [(k, v) for k, v in rh if k.lower() in ("content-type", "docker-content-digest", "content-range")]
        lie = {"dcd-blob": kind == "blobs" and "sha256:" + "0" * 64,
               "dcd-garbage": kind == "manifests" and "sha256:../../../../../../etc/passwd",
               "dcd-bydigest": kind == "manifests" and "sha256:" + "1" * 64}.get(case)
        if lie:
            keep = [(k, v) for k, v in keep if k.lower() != "docker-content-digest"] + [("Docker-Content-Digest", lie)]
        self.reply(status, body, keep)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


TRAP = Server(("127.0.0.1", 0), Trap)
front = Server(("127.0.0.1", 0), Front)
for s in (TRAP, front):
    threading.Thread(target=s.serve_forever, daemon=True).start()
with open(args.port_file + ".tmp", "w") as f:
    f.write("%d %s\n" % (front.server_address[1], digest(REAL)))
os.rename(args.port_file + ".tmp", args.port_file)
threading.Event().wait()
EOF_PY

registry_start plain || { fail "security_registry: registry_start" "did not start"; exit 0; }
fixture_push busybox test/busybox:latest || { fail "security_registry: push busybox" "push failed"; exit 0; }
_t_spawn "$TMPD/hostile.out" "$PY" "$TMPD/hostile.py" --upstream "$REG" --port-file "$TMPD/hostile.port" --log "$TMPD/hostile.log"
_t_wait_port_file "$TMPD/hostile.port" "$_T_LASTPID" || { fail "security_registry: start the hostile front" "$(cat "$TMPD/hostile.out")"; exit 0; }
read -r HPORT REAL_DIGEST <"$TMPD/hostile.port"
H=127.0.0.1:$HPORT
: >"$TMPD/hostile.log"

fresh() { echo "$TMPD/$MODE/s-$1"; }
logged() { grep -c "\"case\": \"$1\"" "$TMPD/hostile.log"; } # requests (and stream ends) the front saw for a case
streamed() { "$PY" -c 'import json,sys
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e.get("case") == sys.argv[2] and e.get("what") == "streamed": print(e["sent"])' "$TMPD/hostile.log" "$1" | sort -n | tail -n 1; }

# The store after a pull: consistent, only verified blobs, nothing in tmp/ ([ref] expected or not).
pulled_store_clean() { # CASE STORE want-ref|no-ref
	local s=$2 f bad=
	t_ok "$1: qimg system check passes" $Q --store "$s" system check
	for f in "$s"/blobs/sha256/*; do
		[ -e "$f" ] || continue
		[ "$(sha256sum <"$f" | cut -c1-64)" = "${f##*/}" ] || bad="$bad ${f##*/}"
	done
	t_eq "$1: every blob in blobs/ hashes to its name" "" "$bad"
	t_eq "$1: nothing left in tmp/" "" "$(ls -A "$s/tmp" 2>/dev/null)"
	if [ "$3" = no-ref ]; then t_eq "$1: no image ref" "" "$(ls -A "$s/images" 2>/dev/null)"; fi
}

# pull_refused CASE NEEDLE [REF-SUFFIX]: the pull fails saying NEEDLE, within SECS, leaving the store clean.
pull_refused() {
	local c=$1 needle=$2 ref=${3:-:latest} s start
	s=$(fresh "$c")
	start=$SECONDS
	t_fail "$c: pull fails" $Q --store "$s" pull --tls-verify=false "$H/$c/img$ref"
	t_contains "$c: says why" "$needle" "$(cat "$T_ERR")"
	t_eq "$c: one line of error" 1 "$(wc -l <"$T_ERR")"
	t_ok "$c: in bounded time (< 60 s)" test $((SECONDS - start)) -lt 60
	pulled_store_clean "$c" "$s" no-ref
}

accepted() { # CASE [REF-SUFFIX]: the pull succeeds with the real image
	local c=$1 ref=${2:-:latest} s
	s=$(fresh "$c")
	t_ok "$c: pull succeeds" $Q --store "$s" pull -q --tls-verify=false "$H/$c/img$ref"
	pulled_store_clean "$c" "$s" want-ref
	t_ok "$c: the image runs" $Q --store "$s" run "$H/$c/img$ref" true
}

t_big() {
	local c rss
	for c in bigmanifest bigchunked; do
		rss=$(fresh "$c").rss # in a dir the mode's user owns
		pull_refused "$c" "answer larger than 4194304 bytes" # MANIFEST_MAX, pull/internal.h
		_t_run $Q --store "$(fresh "$c-rss")" pull --tls-verify=false "$H/$c/img:latest"
		# qimg hangs up after 4 MiB; what the server got to send also filled the socket buffers (up to 32 + 4 MiB
		# with this kernel's tcp_rmem/tcp_wmem maxima), so "not all of it" is the robust check.
		t_ok "$c: the connection was dropped before the end (sent $(streamed "$c") of 50 MiB)" \
			test "$(streamed "$c")" -lt $((50 << 20))
		${Q%% *} /usr/bin/time -f %M -o "$rss" "$QIMG" --store "$(fresh "$c-rss2")" pull --tls-verify=false \
			"$H/$c/img:latest" >/dev/null 2>&1
		t_ok "$c: max RSS under 64 MiB ($(tail -n 1 "$rss") KiB)" test "$(tail -n 1 "$rss")" -lt 65536
	done
	pull_refused deepjson "JSON nested deeper than 64 levels"
}

t_indexes() {
	pull_refused selfloop "manifest $REAL_DIGEST: digest mismatch"
	t_ok "selfloop: two manifest GETs, no loop" test "$(grep '"case": "selfloop"' "$TMPD/hostile.log" | grep -c manifests)" -le 4
	pull_refused nested "is itself an index (not supported)"
	pull_refused promise "an index where the index promised an image"
	pull_refused configlayer "not a container image (config media type application/vnd.oci.image.layer.v1.tar+gzip)"
	pull_refused configblob "image config: invalid JSON"
}

t_bearer() {
	local before
	before=$(logged trap)
	pull_refused bearer-unterminated "unterminated quoted string"
	pull_refused bearer-badquote "expected a comma"
	pull_refused bearer-dup "duplicate parameter"
	pull_refused bearer-userinfo "carries credentials; refused"
	pull_refused bearer-empty "Bearer challenge without a realm"
	pull_refused bearer-junk "malformed WWW-Authenticate header"
	pull_refused bearer-huge "WWW-Authenticate"
	pull_refused bearer-noscheme "no supported authentication scheme"
	t_eq "bearer: none of those challenges sent a request to the realm's host" "$before" "$(logged trap)"
	# Escaped quotes stay inside the realm: the token request has the challenge's own service and scope, once.
	pull_refused bearer-escaped "401 Unauthorized"
	t_ok "bearer-escaped: the realm got one token request" test "$(logged trap)" -eq $((before + 1))
	t_eq "bearer-escaped: service and scope as the challenge gave them (no injection)" \
		'{"service": ["real"], "scope": ["repository:x:pull"]}' \
		"$(grep '"case": "trap"' "$TMPD/hostile.log" | tail -n 1 | "$PY" -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["query"]))')"
}

t_ratelimit() {
	local start s
	start=$SECONDS
	accepted ratelimit
	t_ok "ratelimit: Retry-After: 2 honoured (>= 2 s)" test $((SECONDS - start)) -ge 2
	t_eq "ratelimit: the front answered 429 twice" 2 "$(grep '"case": "ratelimit"' "$TMPD/hostile.log" | grep -c '"what": "429"')"
	pull_refused ratelimit-forever "429 Too Many Requests (TOOMANYREQUESTS: slow down) (after 4 tries)"
}

t_oversize() {
	local c
	for c in oversize oversize-cl; do
		pull_refused "$c" "more than the"
		t_ok "$c: the stream was cut right after the layer's size (sent $(streamed "$c") of 1 GiB)" \
			test "$(streamed "$c")" -lt $((64 << 20)) # the layer + socket buffers, far below 1 GiB
	done
}

t_dcd() {
	accepted dcd-blob
	accepted dcd-garbage
	t_eq "dcd-garbage: nothing named after it in the store (outside the image's own layer)" "" \
		"$(find "$(fresh dcd-garbage)" -name passwd ! -path "*/layers/*")"
	pull_refused dcd-bydigest "Docker-Content-Digest sha256:1111" "@$REAL_DIGEST"
}

both t_big
both t_indexes
both t_bearer
both t_oversize
both t_dcd
MODE=root Q="as_root $QIMG" t_ratelimit
