# Scripting and environment: --format json output is valid JSON (images, inspect, system df, gc --dry-run);
# data on stdout, errors on stderr; stable exit codes (0, 1, 2; run: 125, 126, 127, the command's own);
# no progress when stderr is not a terminal; QIMG_STORE and XDG_DATA_HOME choose the store; HTTPS_PROXY (upper
# and lower case) is used for registry traffic through a CONNECT proxy, NO_PROXY bypasses it. Root and rootless.

registry_start tls || { fail "eco_env: registry_start tls" "did not start"; exit 0; }
fixture_push busybox test/busybox:latest || { fail "eco_env: push" "push failed"; exit 0; }
C=(--certs-dir "$REG_CERTS_DIR")
OUT=$TMPD/out # written by both users
mkdir -p "$OUT" && chmod 1777 "$OUT"

withstore() { # DIR CMD...: CMD with $QIMG_STORE=DIR (as_root/as_user pass it on)
	local d=$1
	shift
	QIMG_STORE=$d "$@"
}
json_ok() { "$PY" -m json.tool "$1" >/dev/null; }

t_json() {
	local f=$OUT/$MODE
	t_ok "json: pull" $Q pull "${C[@]}" "$REG/test/busybox:latest"
	$Q images --format json >"$f.images" 2>"$f.err"
	t_ok "json: images --format json is JSON" json_ok "$f.images"
	t_eq "json: images lists the image" "$REG/test/busybox" "$(jq -r '.[0].name' "$f.images")"
	t_eq "json: images writes nothing on stderr" "" "$(cat "$f.err")"
	$Q inspect "$REG/test/busybox" >"$f.inspect"
	t_ok "json: inspect is JSON" json_ok "$f.inspect"
	$Q system df --format json >"$f.df"
	t_ok "json: system df --format json is JSON" json_ok "$f.df"
	$Q gc --dry-run --format json >"$f.gc"
	t_ok "json: gc --dry-run --format json is JSON" json_ok "$f.gc"
	t_eq "json: gc --dry-run says so" true "$(jq .dry_run "$f.gc")"
	QIMG_STORE=$OUT/$MODE-empty $Q images --format json >"$f.empty"
	t_eq "json: an empty store lists []" "[]" "$(jq -c . "$f.empty")"
}

t_streams() {
	t_fail "streams: inspect of a missing image" $Q inspect "$REG/test/none:1"
	t_eq "streams: ... exit 1" 1 "$T_RC"
	t_eq "streams: ... nothing on stdout" "" "$(cat "$T_OUT")"
	t_contains "streams: ... one qimg: line on stderr" "qimg: " "$(head -c 6 "$T_ERR")"
	t_eq "streams: ... one line" 1 "$(wc -l <"$T_ERR")"
	t_fail "streams: pull of a missing image" $Q pull "${C[@]}" "$REG/test/none:1"
	t_eq "streams: ... exit 1, stdout empty" "1 " "$T_RC $(cat "$T_OUT")"
	t_ok "streams: pull prints only the digest on stdout" $Q pull "${C[@]}" "$REG/test/busybox:latest"
	cp "$T_OUT" "$OUT/$MODE.digest"
	t_ok "streams: ... a digest" grep -qxE 'sha256:[0-9a-f]{64}' "$OUT/$MODE.digest"
	t_eq "streams: ... no progress drawn when stderr is not a terminal" "" "$(tr -d '\n' <"$T_ERR" | tr -cd '\r\033')"
	t_fail "exit: unknown command" $Q frobnicate
	t_eq "exit: ... 2" 2 "$T_RC"
	t_fail "exit: unknown option" $Q images --bogus
	t_eq "exit: ... 2" 2 "$T_RC"
	t_fail "exit: missing argument" $Q pull
	t_eq "exit: ... 2" 2 "$T_RC"
	t_fail "exit: run: the command's status" $Q run "$REG/test/busybox" sh -c 'exit 3'
	t_eq "exit: ... 3" 3 "$T_RC"
	t_fail "exit: run: command not found" $Q run "$REG/test/busybox" /nonexistent
	t_eq "exit: ... 127" 127 "$T_RC"
	t_fail "exit: run: not executable" $Q run "$REG/test/busybox" /etc/passwd
	t_eq "exit: ... 126" 126 "$T_RC"
	t_fail "exit: run: qimg's own error (no such image)" $Q run "$REG/test/none:1" true
	t_eq "exit: ... 125" 125 "$T_RC"
	t_ok "exit: --version" $Q --version
}

t_store_env() {
	t_ok "env: QIMG_STORE chooses the store" withstore "$OUT/$MODE-qs" $Q pull "${C[@]}" "$REG/test/busybox:latest"
	t_ok "env: ... blobs there" test -n "$(ls -A "$OUT/$MODE-qs/blobs/sha256")"
	t_ok "env: --store beats QIMG_STORE" $Q --store "$OUT/$MODE-opt" images
	t_ok "env: ... created there" test -d "$OUT/$MODE-opt/blobs"
	if [ "$MODE" = user ]; then
		t_ok "env: XDG_DATA_HOME chooses a user's store" as_user env -u QIMG_STORE XDG_DATA_HOME="$OUT/xdg" \
			"$QIMG" pull "${C[@]}" "$REG/test/busybox:latest"
		t_ok "env: ... \$XDG_DATA_HOME/qimg" test -d "$OUT/xdg/qimg/blobs"
	fi
}

# ---- a CONNECT proxy on loopback ----
cat >"$TMPD/proxy.py" <<'EOF'
import socket, sys, threading
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(16)
log = open(sys.argv[2], "a", buffering=1)
open(sys.argv[1] + ".tmp", "w").write(str(srv.getsockname()[1]))
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
def handle(c):
    head = b""
    while b"\r\n\r\n" not in head:
        d = c.recv(4096)
        if not d:
            return c.close()
        head += d
    line = head.split(b"\r\n")[0].decode()
    log.write(line + "\n")
    method, target = line.split()[:2]
    if method != "CONNECT":
        c.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
        return c.close()
    host, port = target.rsplit(":", 1)
    try:
        u = socket.create_connection((host, int(port)))
    except OSError:
        c.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
        return c.close()
    c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
    threading.Thread(target=pipe, args=(c, u), daemon=True).start()
    pipe(u, c)
while True:
    conn, _ = srv.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
EOF
_t_spawn "$TMPD/proxy.out" "$PY" "$TMPD/proxy.py" "$TMPD/proxy.port" "$TMPD/proxy.log"
_t_wait_port_file "$TMPD/proxy.port" "$_T_LASTPID" || { fail "eco_env: proxy" "did not start"; exit 0; }
PROXY=http://127.0.0.1:$(cat "$TMPD/proxy.port")
touch "$TMPD/proxy.log"

connects() { grep -c "^CONNECT $REG " "$TMPD/proxy.log"; }

t_proxy() {
	local n
	n=$(connects)
	t_ok "proxy: pull through HTTPS_PROXY" $(runas) env HTTPS_PROXY="$PROXY" "$QIMG" pull "${C[@]}" "$REG/test/busybox:latest"
	t_ok "proxy: ... the proxy saw CONNECT to the registry" test "$(connects)" -gt "$n"
	n=$(connects)
	t_ok "proxy: lower-case https_proxy" $(runas) env https_proxy="$PROXY" "$QIMG" pull "${C[@]}" "$REG/test/busybox:latest"
	t_ok "proxy: ... used" test "$(connects)" -gt "$n"
	n=$(connects)
	t_ok "proxy: NO_PROXY bypasses it" $(runas) env HTTPS_PROXY="$PROXY" NO_PROXY=127.0.0.1 "$QIMG" pull "${C[@]}" \
		"$REG/test/busybox:latest"
	t_eq "proxy: ... no CONNECT" "$n" "$(connects)"
	t_fail "proxy: a dead proxy fails the pull (so it is really used)" $(runas) env HTTPS_PROXY=http://127.0.0.1:9 \
		QIMG_HTTP_TIMEOUT=2 "$QIMG" pull "${C[@]}" "$REG/test/busybox:latest"
}

both t_json
both t_streams
both t_store_env
both t_proxy
