#!/usr/bin/python3
"""Push one tag of an OCI image layout to a v2 registry byte for byte (no recompression, no conversion).

usage: push.py LAYOUT REF HOST:PORT/REPO:TAG [--plain] [--cacert CA] [--creds USER:PASS] [--digestfile FILE]

skopeo recompresses layers it sees as uncompressed (and so rewrites a hostile fixture); this does not.
Blobs go up with POST + PUT (monolithic), child manifests by digest, the top manifest by tag. Handles Basic
and Bearer (token server) challenges. Prints nothing on success; the pushed digest goes to --digestfile.
"""
import base64
import json
import os
import re
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request

INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Client:
    def __init__(self, base, repo, ctx, creds):
        self.base, self.repo, self.ctx, self.creds = base, repo, ctx, creds
        self.auth = None
        self.opener = urllib.request.build_opener(NoRedirect, urllib.request.HTTPSHandler(context=ctx))

    def send(self, method, url, data=None, headers=None, retry=True):
        req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
        if self.auth:
            req.add_header("Authorization", self.auth)
        try:
            with self.opener.open(req) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            body = e.read()
            if e.code == 401 and retry and self.authenticate(e.headers.get("WWW-Authenticate", "")):
                return self.send(method, url, data, headers, retry=False)
            return e.code, e.headers, body

    def authenticate(self, challenge):
        scheme, _, rest = challenge.partition(" ")
        params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        basic = "Basic " + base64.b64encode(self.creds.encode()).decode() if self.creds else None
        if scheme.lower() == "basic":
            self.auth = basic
            return basic is not None
        if scheme.lower() != "bearer" or "realm" not in params:
            return False
        scope = "repository:%s:pull,push" % self.repo
        query = urllib.parse.urlencode({"service": params.get("service", ""), "scope": scope})
        req = urllib.request.Request(params["realm"] + "?" + query)
        if basic:
            req.add_header("Authorization", basic)
        with urllib.request.urlopen(req, context=self.ctx) as r:
            self.auth = "Bearer " + json.load(r)["token"]
        return True

    def url(self, path):
        return "%s/v2/%s/%s" % (self.base, self.repo, path)

    def push_blob(self, digest, path):
        st, _, _ = self.send("HEAD", self.url("blobs/" + digest))
        if st == 200:
            return
        st, hdrs, body = self.send("POST", self.url("blobs/uploads/"), data=b"")
        if st != 202:
            raise SystemExit("push.py: POST blobs/uploads/ for %s: HTTP %d %s" % (digest, st, body[:300]))
        loc = urllib.parse.urljoin(self.base, hdrs["Location"])
        loc += ("&" if "?" in loc else "?") + "digest=" + urllib.parse.quote(digest)
        with open(path, "rb") as f:
            data = f.read()
        st, _, body = self.send("PUT", loc, data=data, headers={"Content-Type": "application/octet-stream"})
        if st != 201:
            raise SystemExit("push.py: PUT blob %s: HTTP %d %s" % (digest, st, body[:300]))

    def push_manifest(self, ref, media_type, data):
        st, _, body = self.send("PUT", self.url("manifests/" + ref), data=data, headers={"Content-Type": media_type})
        if st != 201:
            raise SystemExit("push.py: PUT manifest %s: HTTP %d %s" % (ref, st, body[:500]))


def blob_path(layout, digest):
    return os.path.join(layout, "blobs", *digest.split(":", 1))


def push_tree(client, layout, desc, ref):
    """Push desc (manifest or index) and everything below it; the manifest itself under ref."""
    with open(blob_path(layout, desc["digest"]), "rb") as f:
        data = f.read()
    doc = json.loads(data)
    media_type = doc.get("mediaType") or desc["mediaType"]
    if media_type in INDEX_TYPES:
        for child in doc.get("manifests", []):
            push_tree(client, layout, child, child["digest"])
    else:
        for d in [doc["config"]] + doc.get("layers", []):
            if os.path.exists(blob_path(layout, d["digest"])):  # absent = a foreign or hostile reference
                client.push_blob(d["digest"], blob_path(layout, d["digest"]))
    client.push_manifest(ref, media_type, data)


def main(argv):
    args = argv[1:]
    if len(args) < 3:
        sys.exit(__doc__)
    layout, name, dest = args[:3]
    opts = args[3:]
    opt = lambda k: opts[opts.index(k) + 1] if k in opts else None  # noqa: E731
    host, _, path = dest.partition("/")
    repo, _, tag = path.rpartition(":")
    ctx = ssl.create_default_context(cafile=opt("--cacert")) if opt("--cacert") else ssl.create_default_context()
    client = Client(("http://" if "--plain" in opts else "https://") + host, repo, ctx, opt("--creds"))
    with open(os.path.join(layout, "index.json")) as f:
        index = json.load(f)
    tops = [m for m in index["manifests"]
            if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == name]
    if not tops:
        sys.exit("push.py: %s has no image named %s" % (layout, name))
    push_tree(client, layout, tops[0], tag)
    if opt("--digestfile"):
        with open(opt("--digestfile"), "w") as f:
            f.write(tops[0]["digest"])


if __name__ == "__main__":
    main(sys.argv)
