#!/usr/bin/python3
"""Write the fuzz seed corpora (tests/fuzz/corpus/<target>/) from real material: the OCI layouts the e2e
fixtures build (tests/.cache/fixtures, made by `make test`), the host's /etc/passwd and /etc/group, real registry
challenges, and hand-made hostile tars (the cases of tests/e2e/unpack_hostile.sh and a few more).
usage: tests/fuzz/seeds.py [--cache DIR] [--out DIR]   (files are named by content hash: re-running is stable)"""
import argparse, gzip, hashlib, io, json, os, sys, tarfile

MAX_LAYER = 128 << 10  # uncompressed bytes of a layer seed
LAYERS_PER_LAYOUT = 4
ap = argparse.ArgumentParser()
here = os.path.dirname(os.path.abspath(__file__))
ap.add_argument("--cache", default=os.path.join(here, "..", ".cache", "fixtures"))
ap.add_argument("--out", default=os.path.join(here, "corpus"))
args = ap.parse_args()
count = {}


def put(target, data, name=None):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(args.out, target)
    os.makedirs(d, exist_ok=True)
    name = name or hashlib.sha256(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)
    count[target] = count.get(target, 0) + 1


# ---- references ----
REFS = """ubuntu
ubuntu:22.04
library/ubuntu
docker.io/library/ubuntu:latest
index.docker.io/library/busybox:1.36
registry-1.docker.io/library/alpine
ghcr.io/containers/podman:v4.3
quay.io/fedora/fedora:39
localhost/img
localhost:5000/ns/img:tag
127.0.0.1:5000/test/busybox:latest
[::1]:5000/x/y:z
[fe80::1%25eth0]:443/a
registry.example.com:443/a/b/c/d:1.0-rc_2
my-registry.local/team__x/img.name-with--dashes:v1
busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
busybox:1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
Ubuntu
ubuntu:
:tag
a/../b
localhost:99999/x
host:5000/
ubuntu@sha512:abc
ubuntu:-bad
a..b/c
-a/b""".splitlines()
for r in REFS:
    put("ref", r)
put("ref", "a/" * 127 + "b")
put("ref", "x" * 256)
put("ref", "localhost/" + "/".join(["ab"] * 60))

# ---- registries.conf: the unit tests' sample and hostile TOML (text, then NUL and a reference) ----
REGCONF_SAMPLE = """# qimg registries.conf
unqualified-search-registries = ["reg.one:5000", 'reg.two']

[[registry]]
prefix = "docker.io"
location = "docker.io"
[[registry.mirror]]
location = "cache.local:5000"  # the cluster's pull-through cache
insecure = true
[[ registry.mirror ]]
location = "cache2.local/hub"

[[registry]]
location = "reg.one:5000"
insecure = true

[[registry]]
prefix = "example.com/team"
location = "internal.example:443/mirror/team"

[[registry]]
location = "evil.example"
blocked = true

[[registry]]
prefix = "*.corp.example"
insecure = true

[[registry]]
location = "digest.example"
mirror-by-digest-only = true
[[registry.mirror]]
location = "dmirror.example"

[aliases]
"bb" = "docker.io/library/busybox"
app = "example.com/team/app"
"""
REGCONFS = [
    REGCONF_SAMPLE,
    "",
    "# nothing\n",
    "unqualified-search-registries = [\n  \"a.io\", # one\n  \"b\\u00e9.io\",\n]\n",
    "unqualified-search-registries=['a.io','b.io']\n[[registry]]\nlocation='a.io'\nblocked=true\n",
    "[[registry]]\nprefix = \"*.corp.example\"\n[[registry]]\nprefix = \"a.corp.example\"\nlocation = \"x.io\"\n",
    "[[registry]]\nlocation = \"localhost:5000\"\ninsecure = true\n[[registry.mirror]]\nlocation = \"m.io/p\"\n",
    "[aliases]\n\"x\" = \"y\"\n",
    "[[registry]]\nlocation = \"https://a.io/\"\n",
    "[[registry]]\nlocation = \"a.io\"\n[[registry]]\nlocation = \"a.io\"\n",
    "[[registry.mirror]]\nlocation = \"m.io\"\n",
    "[[registry]]\nprefix = \"*.a/b\"\n",
    "key = \"\\U0010FFFF\\uD800\\x\"\n",
    "unqualified-search-registries = [[\"a\"]]\n",
    "[registry]\nlocation = \"a.io\"\n",
    "location = \"unterminated\n",
    "[[registry]]\ninsecure = yes\nlocation = \"a.io\"\n",
    "[" * 300,
    "a = [" + "\"x\"," * 500 + "]\n",
    # containers-registries.conf(5) v2 as podman sites write it, version 1, and the TOML forms they use
    "unqualified-search-registries = [\n  \"registry.fedoraproject.org\",  # Fedora\n  'quay.io',\n  \"docker.io\",\n]\n"
    "short-name-mode = \"enforcing\"\ncredential-helpers = [\"containers-auth.json\", 'pass']\n"
    "additional-layer-store-auth-helper = \"\"\n[[registry]]\nprefix = \"docker.io\"\nlocation = \"docker.io\"\n"
    "mirror = [ { location = \"cache.local:5000\", insecure = true, pull-from-mirror = \"tag-only\" },\n"
    "  { location = 'digest.local', pull-from-mirror = \"digest-only\" } ]\n"
    "[[registry]]\nlocation = \"\"\"\nquay.io\"\"\"\n"
    "[[registry.mirror]]\nlocation = \"q\\u0075ay-mirror.local\"\npull-from-mirror = \"all\"\n[aliases]\n"
    "  \"almalinux\" = \"docker.io/library/almalinux\"\n  \"opensuse/leap\" = \"registry.opensuse.org/opensuse/leap\"\n"
    "  \"alpine\" = \"docker.io/alpine\"\n  \"gone\" = \"\"\n",
    "[registries.search]\nregistries = ['a.io', 'b.io:5000']\n[registries.insecure]\nregistries = ['h.io']\n"
    "[registries.block]\nregistries = ['evil.io', 'b.io:5000']\n",
    "registry = [{prefix = \"a.io/x\", location = \"b.io/y\", mirror = [{location = \"m.io\"}]},\n"
    "  {location='c.io', blocked=true},]\nx.y.z = 'w'\n[a.b]\nc = '''lit\\eral'''\n",
    "[aliases]\nx = \"\"\"a.io/\\\n    y\"\"\"\nz = '''\nb.io/z'''\n",
]
for c in REGCONFS:
    put("registries", c)
if os.path.exists("/etc/containers/registries.conf.d/shortnames.conf"):  # Debian's containers-common drop-in
    put("registries", open("/etc/containers/registries.conf.d/shortnames.conf").read())
for ref in ["busybox", "bb:1", "app@sha256:" + "0" * 64, "a.corp.example/z:1", "docker.io/library/alpine:3",
            "reg.two/x", "evil.example/x", "UPPER/x", "localhost:5000/../x", "digest.example/a@sha256:" + "1" * 64]:
    put("registries", REGCONF_SAMPLE + "\0" + ref)

# ---- WWW-Authenticate: real registries' challenges and hostile quoting ----
CHALLENGES = [
    'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull"',
    'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:owner/repo:pull"',
    'Bearer realm="https://quay.io/v2/auth",service="quay.io"',
    'Basic realm="Registry Realm"',
    'Basic realm="qimg-test"',
    'Bearer realm="https://127.0.0.1:40000/token",service="qimg-test-registry",scope="repository:test/busybox:pull"',
    'Negotiate, Basic realm="x"',
    'Negotiate abc==, Bearer realm="https://a/t", Basic realm="b"',
    'Bearer realm=https://unquoted/token,service=svc',
    'bearer REALM="https://case/token"',
    'Bearer realm="https://a/t\\"x",service="s\\\\"',
    'Bearer realm="https://a/t",realm="https://evil/t"',
    'Bearer realm="https://a/t',
    'Bearer realm="',
    'Bearer realm="https://a/t", service="s", scope="repository:a:pull repository:b:pull"',
    'Bearer realm="http://user:pass@evil/token"',
    'Bearer realm="https://a/\ttab"',
    'Bearer realm="https://a/t"  ,  , service="s",',
    'Bearer , realm="x"',
    'Bearer token68==, Basic realm="x"',
    'Bearer',
    '',
    ',,,',
    'Bearer realm=',
    'Bearer realm="a"junk',
]
for c in CHALLENGES:
    put("wwwauth", c)

# ---- credential files and token answers: "domain[/path]\n" + JSON ----
b64 = lambda s: __import__("base64").b64encode(s.encode()).decode()
AUTHS = [
    ("docker.io", {"auths": {"https://index.docker.io/v1/": {"auth": b64("user:pass")}}}),
    ("127.0.0.1:5000/test/busybox", {"auths": {"127.0.0.1:5000": {"auth": b64("qimgtester:pw")},
                                               "127.0.0.1:5000/test": {"username": "ns", "password": "p"}}}),
    ("ghcr.io", {"auths": {"ghcr.io": {"auth": "!!notbase64"}}}),
    ("quay.io", {"auths": {"quay.io": {"auth": b64("nocolon")}}, "credHelpers": {"quay.io": "secret"}}),
    ("x", {"auths": []}),
    ("x", {"token": "abc.def.ghi", "expires_in": 300}),
    ("x", {"access_token": "tok", "token": ""}),
    ("x", {"token": "bad\r\ntoken"}),
]
for dom, j in AUTHS:
    put("authfile", dom + "\n" + json.dumps(j))
put("authfile", "a\n" + "[" * 100 + "]" * 100)
put("authfile", 'a\n{"auths": {"a": {"auth": "YTpi"}, "a": {"auth": "YTpj"}}}')

# ---- manifests, indexes, configs from the fixture layouts (first byte: the Content-Type index) ----
CT = {None: 0, "application/vnd.oci.image.manifest.v1+json": 1, "application/vnd.oci.image.index.v1+json": 2,
      "application/vnd.docker.distribution.manifest.v2+json": 3,
      "application/vnd.docker.distribution.manifest.list.v2+json": 4}
LAYER_TYPES = ("tar", "tar+gzip", "tar+zstd", "tar.gzip", "tar.zstd")


def blob(layout, digest):
    with open(os.path.join(layout, "blobs", "sha256", digest.split(":", 1)[1]), "rb") as f:
        return f.read()


def trim(t):
    """A tar without tarfile's record padding: the last block with data, then the two zero end blocks."""
    n = len(t.rstrip(b"\0"))
    n = (n + 511) // 512 * 512
    return t[:n] + b"\0" * 1024


def layer_tar(data):
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data)
    if data[:4] == b"\x28\xb5\x2f\xfd":
        return None  # zstd: python3 has no decoder; the gzip/plain layers cover the tar side
    return data


class Seen(set):
    layers = 0


def walk(layout, desc, seen):
    d = desc["digest"]
    if d in seen:
        return
    seen.add(d)
    mt = desc.get("mediaType", "")
    data = blob(layout, d)
    if mt.endswith("index.v1+json") or mt.endswith("list.v2+json"):
        put("manifest", bytes([CT.get(mt, 0)]) + data)
        put("manifest", b"\0" + data)
        for m in json.loads(data).get("manifests", []):
            walk(layout, m, seen)
    elif mt.endswith("manifest.v1+json") or mt.endswith("manifest.v2+json"):
        put("manifest", bytes([CT.get(mt, 0)]) + data)
        m = json.loads(data)
        walk(layout, m["config"], seen)
        for layer in m.get("layers", []):
            walk(layout, layer, seen)
    elif mt.endswith("config.v1+json") or mt.endswith("container.image.v1+json"):
        put("config", data)
    elif mt.endswith(LAYER_TYPES):
        tar = layer_tar(data)
        if tar is not None and len(tar) <= MAX_LAYER and seen.layers < LAYERS_PER_LAYOUT:
            seen.layers += 1
            put("unpack", b"\0" + trim(tar))


layouts = sorted(os.listdir(args.cache)) if os.path.isdir(args.cache) else []
for name in layouts:
    layout = os.path.join(args.cache, name)
    if not os.path.isfile(os.path.join(layout, "index.json")) or name.startswith("debian"):
        continue
    seen = Seen()
    with open(os.path.join(layout, "index.json"), "rb") as f:
        for m in json.load(f).get("manifests", []):
            walk(layout, m, seen)
if not layouts:
    print("seeds.py: no fixture cache at %s (run `make test` once); only hand-made seeds written" % args.cache,
          file=sys.stderr)
put("manifest", b"\0" + b"[" * 70 + b"]" * 70)
put("manifest", b"\1" + b'{"schemaVersion":2,"a":' + b"[" * 63 + b"]" * 63 + b"}")
put("manifest", b"\5" + b'{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}')
put("manifest", b"\0" + b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}')
put("config", b'{"architecture":"aarch64","os":"linux","variant":"v8","rootfs":{"type":"layers","diff_ids":[]}}')
put("config", b'{"config":{"Env":null,"Cmd":"notarray"},"rootfs":{"diff_ids":["sha256:../../etc"]}}')

# ---- run specs (store/store.c's "key value" lines) ----
D = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
put("spec", "qimg-spec 1\nmanifest %s\nconfig sha256:%s\nplatform linux/amd64\ncreated 2024-01-01T00:00:00Z\n"
    "size 1234\nlayer %s\nlayer %s\nblob sha256:%s\nenv PATH=/usr/bin:/bin\nenv A=tab\\there\\nnewline\n"
    "has-entrypoint\nentrypoint /bin/sh\nentrypoint -c\nhas-cmd\ncmd echo hi\nworkdir /home/app\nuser app:users\n"
    "stop-signal SIGTERM\nend\n" % (D, "a" * 64, "b" * 64, "c" * 64, "d" * 64))
put("spec", "qimg-spec 1\nmanifest %s\nend\n" % D)
put("spec", "qimg-spec 1\nmanifest %s\nlayer ../../../etc\nsize -1\nsize 99999999999999999999\nenv \\\nend" % D)
put("spec", "qimg-spec 1\nmanifest sha256:bad\nlayer x\n")
put("spec", "qimg-spec 2\n")

# ---- run config: "USERSPEC\0PASSWD\0GROUP\0ENVFILE" ----
def etc(name):
    try:
        with open("/etc/" + name, "rb") as f:
            return f.read()
    except OSError:
        return b""


passwd, group = etc("passwd"), etc("group")
ENVFILE = b"# comment\nFOO=bar\n  SPACED=1\nHOME\n\xef\xbb\xbfBOM=1\nWIN=crlf\r\nEMPTY=\n"
for spec in [b"", b"0", b"root", b"nobody", b"1000:1000", b"app:users", b"root:root", b"4294967294:1",
             b"4294967295", b"daemon:", b":0", b"nosuch"]:
    put("runcfg", spec + b"\0" + passwd + b"\0" + group + b"\0" + ENVFILE)
put("runcfg", b"app\0app:x:1000:1000::/home/app:/bin/sh\n\0users:x:100:app,other\napp:x:1000:\n\0=bad\n")
put("runcfg", b"x\0x:x:1:1\n\0\0A B=c\n")


# ---- hand-made layers: the hostile cases of unpack_hostile.sh and more (mode byte 0: plain, 1: zstd) ----
def tar(entries, fmt=tarfile.PAX_FORMAT):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=fmt) as t:
        for e in entries:
            ti = tarfile.TarInfo(e[0])
            kind = e[1]
            data = b""
            if kind == "f":
                data = e[2] if len(e) > 2 else b"x\n"
                ti.size = len(data)
            elif kind == "d":
                ti.type = tarfile.DIRTYPE
            elif kind in ("l", "h"):
                ti.type = tarfile.SYMTYPE if kind == "l" else tarfile.LNKTYPE
                ti.linkname = e[2]
            elif kind == "c":
                ti.type = tarfile.CHRTYPE
                ti.devmajor, ti.devminor = e[2], e[3]
            elif kind == "p":
                ti.type = tarfile.FIFOTYPE
            if len(e) > 4 and isinstance(e[4], dict):
                ti.pax_headers = e[4]
            ti.mode = 0o4755 if e[0].endswith("suid") else (0o755 if kind == "d" else 0o644)
            t.addfile(ti, io.BytesIO(data))
    return b.getvalue()


HOSTILE = {
    "dotdot": [("../../../../tmp/qimg-fuzz-escape", "f")],
    "dotdot-mid": [("a/../../escape", "f")],
    "absolute": [("/etc/passwd", "f", b"pwned\n")],
    "symlink-abs": [("evil", "l", "/tmp"), ("evil/file", "f")],
    "symlink-rel": [("a", "d"), ("a/up", "l", "../../../../.."), ("a/up/tmp/x", "f")],
    "symlink-dot": [(".", "l", "/tmp"), ("file", "f")],
    "dir-then-symlink": [("d", "d"), ("d/ok", "f"), ("d", "l", "/tmp"), ("d/file", "f")],
    "hardlink-host": [("h", "h", "/etc/hostname")],
    "hardlink-dotdot": [("h", "h", "../../../etc/hostname")],
    "hardlink-via-symlink": [("s", "l", "/etc"), ("h", "h", "s/hostname")],
    "hardlink-to-symlink": [("s", "l", "/etc/shadow"), ("h", "h", "s")],
    "hardlink-self": [("f", "f"), ("f", "h", "f")],
    "hardlink-dir": [("d", "d"), ("h", "h", "d")],
    "symlink-then-file": [("s", "l", "/etc/passwd"), ("s", "f", b"replaced\n")],
    "whiteout-dotdot": [("a/.wh..", "f", b"")],
    "whiteout-dot": [("a/.wh..", "f", b""), (".wh..", "f", b"")],
    "whiteout-escape": [("../.wh.x", "f", b"")],
    "opaque-root": [(".wh..wh..opq", "f", b"")],
    "opaque-deep": [("a/b/c/.wh..wh..opq", "f", b""), ("a/b/c/x", "f")],
    "whiteout-then-dir": [(".wh.d", "f", b""), ("d", "d"), ("d/x", "f")],
    "dir-then-whiteout": [("d", "d"), ("d/x", "f"), (".wh.d", "f", b"")],
    "aufs-meta": [(".wh..wh.plnk/123.456", "f"), (".wh..wh.aufs", "f", b"")],
    "file-replaces-dir": [("d", "d"), ("d/a", "f"), ("d/b/c", "f"), ("d", "f", b"now a file\n")],
    "dir-replaces-file": [("d", "f"), ("d", "d"), ("d/x", "f")],
    "duplicates": [("a", "f", b"1"), ("a", "f", b"2"), ("a", "d"), ("a", "l", "b"), ("a", "f", b"3")],
    "devices": [("dev/sda", "c", 8, 0), ("dev/null", "c", 1, 3), ("wh", "c", 0, 0), ("fifo", "p")],
    "setuid": [("bin", "d"), ("bin/suid", "f", b"#!/bin/sh\n")],
    "root-dir": [(".", "d"), ("./", "d"), ("/", "d")],
    "root-file": [("/", "f")],
    "dots": [("./././a/./b/.//c", "f"), ("a//b///d", "f")],
    "long-component": [("n" * 300, "f")],
    "nul-pax": [("placeholder", "f", b"x", None, {"path": "ok\0/../../escape"})],
    "pax-bad": [("p", "f", b"x", None, {"size": "-1", "uid": "99999999999999999999", "mtime": "nan",
                                         "SCHILY.xattr.user.overlay.opaque": "y",
                                         "SCHILY.xattr.trusted.overlay.redirect": "/etc",
                                         "SCHILY.xattr.security.capability": "\x01\x00\x00\x02"})],
    "pax-linkpath": [("l", "l", "short", None, {"linkpath": "/" + "x/" * 3000})],
    "deep": [("/".join(["d"] * 500) + "/f", "f")],
    "unicode": [("caf\u00e9/\u202ertl", "f"), ("\u00ff\u00fe", "f"), ("nl\nname", "f")],
}
for name, entries in HOSTILE.items():
    try:
        t = trim(tar(entries))
    except Exception as ex:  # tarfile refuses some on purpose; skip those
        print("seeds.py: %s: %s" % (name, ex), file=sys.stderr)
        continue
    put("unpack", b"\0" + t, "h-" + name)
    put("unpack", b"\1" + t, "z-" + name)
put("unpack", b"\0" + tar([("a", "f"), ("b", "d")], tarfile.GNU_FORMAT), "h-gnu")
put("unpack", b"\0" + tar([("a", "f"), ("b", "d")], tarfile.USTAR_FORMAT), "h-ustar")
t = trim(tar([("big", "f", b"y" * 5000)]))
put("unpack", b"\0" + t[:3000], "h-truncated")
put("unpack", b"\0" + t + b"trailing garbage after the end", "h-trailing")
put("unpack", b"\0" + gzip.compress(t), "h-gzip")
put("unpack", b"\0" + gzip.compress(t)[:-10], "h-gzip-truncated")
put("unpack", b"\0" + gzip.compress(t) + gzip.compress(b"\0" * 1024), "h-gzip-members")
put("unpack", b"\0" + gzip.compress(b"\0" * (4 << 20)), "h-gzip-zeros")
for target, n in sorted(count.items()):
    print("%-9s %d seeds" % (target, n))
