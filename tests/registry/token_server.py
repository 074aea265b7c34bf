#!/usr/bin/python3
"""A Docker registry token server (distribution's `auth: token` flow) for qimg's tests, over HTTPS.

usage: token_server.py --cert CRT --key KEY --sign-key RSA.pem --issuer ISS --service SVC
                       --user USER --pass PASS --port-file FILE --log FILE

GET  /token?service=SVC&scope=repository:NAME:pull,push[&scope=...]   (optional Basic credentials)
POST /token  grant_type=password&username=..&password=..&service=..&scope=..  (the OAuth2 form)
POST /token  grant_type=refresh_token&refresh_token=rt-PASS&service=..&scope=..  (docker's identity tokens:
             the refresh token "rt-" + PASS stands for USER)
  -> 200 {"token", "access_token", "expires_in": 300, "issued_at"}
  anonymous: pull on repositories named public/*, nothing else; USER/PASS: every requested action;
  wrong credentials -> 401; wrong service -> 400.
Tokens are RS256 JWTs whose header names the key by its libtrust key id (`kid`), which distribution 2.8
finds among the public keys of its `rootcertbundle`. Each request is logged as one JSON line to --log.
"""
import argparse
import base64
import datetime
import hashlib
import http.server
import json
import os
import secrets
import ssl
import sys
import threading
import time
import urllib.parse

import jwt
from cryptography.hazmat.primitives import serialization

TTL = 300
ANON_PREFIX = "public/"


def libtrust_kid(private_pem):
    """Key id as docker/libtrust computes it: base32 of the first 240 bits of sha256(SPKI DER), 4-char groups."""
    key = serialization.load_pem_private_key(private_pem, password=None)
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    b32 = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(b32[i:i + 4] for i in range(0, len(b32), 4))


def parse_scopes(values):
    """['repository:a/b:pull,push repository:c:pull'] -> [(type, name, [actions])]; malformed ones are dropped."""
    out = []
    for value in values:
        for scope in value.split():
            head, sep, actions = scope.rpartition(":")
            kind, sep2, name = head.partition(":")
            if sep and sep2 and name:
                out.append((kind, name, [a for a in actions.split(",") if a]))
    return out


def grant(user, kind, name, actions):
    if user is not None:
        return actions
    if kind == "repository" and name.startswith(ANON_PREFIX):
        return [a for a in actions if a == "pull"]
    return []


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, opts):
        super().__init__(("127.0.0.1", 0), Handler)
        self.opts = opts
        with open(opts.sign_key, "rb") as f:
            self.sign_key = f.read()
        self.kid = libtrust_kid(self.sign_key)
        self.log_lock = threading.Lock()

    def issue(self, user, scopes):
        now = int(time.time())
        access = []
        for kind, name, actions in scopes:
            granted = grant(user, kind, name, actions)
            access.append({"type": kind, "name": name, "actions": granted})
        claims = {"iss": self.opts.issuer, "sub": user or "", "aud": self.opts.service, "exp": now + TTL,
                  "nbf": now - 10, "iat": now, "jti": secrets.token_hex(8), "access": access}
        token = jwt.encode(claims, self.sign_key, algorithm="RS256", headers={"kid": self.kid})
        issued = datetime.datetime.fromtimestamp(now, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"token": token, "access_token": token, "expires_in": TTL, "issued_at": issued}, access

    def log(self, entry):
        with self.log_lock, open(self.opts.log, "a") as f:
            f.write(json.dumps(entry) + "\n")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # keep stderr quiet; requests go to the JSON log
        pass

    def reply(self, status, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def basic_user(self):
        """(user or None, how): how is none, basic, basic-bad or other."""
        auth = self.headers.get("Authorization")
        if not auth:
            return None, "none"
        scheme, _, cred = auth.partition(" ")
        if scheme.lower() != "basic":
            return None, "other"
        try:
            user, _, password = base64.b64decode(cred.strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None, "basic-bad"
        return self.check(user, password)

    def check(self, user, password):
        o = self.server.opts
        if secrets.compare_digest(user, o.user) and secrets.compare_digest(password, o.password):
            return user, "basic"
        return None, "basic-bad"

    def handle_token(self, params, user, how):
        entry = {"method": self.command, "path": urllib.parse.urlsplit(self.path).path, "auth": how,
                 "user": user, "service": params.get("service", [""])[0], "scope": params.get("scope", [])}
        if urllib.parse.urlsplit(self.path).path != "/token":
            status, body = 404, {"errors": [{"code": "NOT_FOUND", "message": "no such endpoint"}]}
        elif how.endswith("basic-bad") or how == "other":
            status, body = 401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]}
        elif entry["service"] != self.server.opts.service:
            status, body = 400, {"errors": [{"code": "INVALID", "message": "unknown service"}]}
        else:
            status = 200
            body, entry["granted"] = self.server.issue(user, parse_scopes(entry["scope"]))
        entry["status"] = status
        self.server.log(entry)
        headers = [("WWW-Authenticate", 'Basic realm="qimg-test-token"')] if status == 401 else []
        self.reply(status, body, headers)

    def do_GET(self):
        params = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        user, how = self.basic_user()
        self.handle_token(params, user, how)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        params = urllib.parse.parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
        if params.get("grant_type", [""])[0] == "refresh_token":
            o = self.server.opts
            ok = secrets.compare_digest(params.get("refresh_token", [""])[0], "rt-" + o.password)
            self.handle_token(params, o.user if ok else None, "oauth2-refresh" if ok else "oauth2-refresh-basic-bad")
            return
        if params.get("grant_type", [""])[0] != "password":
            self.server.log({"method": "POST", "path": self.path, "status": 400, "grant_type": params.get(
                "grant_type")})
            self.reply(400, {"error": "unsupported_grant_type"})
            return
        user, how = self.check(params.get("username", [""])[0], params.get("password", [""])[0])
        self.handle_token(params, user, "oauth2-" + how)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("cert", "key", "sign-key", "issuer", "service", "user", "pass", "port-file", "log"):
        p.add_argument("--" + name, required=True, dest=name.replace("-", "_") if name != "pass" else "password")
    opts = p.parse_args()
    srv = Server(opts)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(opts.cert, opts.key)
    # Handshake lazily in the request's thread, so one stalled client cannot block accept().
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
    tmp = opts.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, opts.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
