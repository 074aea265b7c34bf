#!/usr/bin/python3
"""Tar dialect corpus for tests/e2e/unpack_dialects.sh (the same entries as tests/tools/gotar/main.go).

  dialects.py tree DIR      the entries as a directory tree (run as root: owners, a setuid bit, big ids), for
                            GNU tar and bsdtar to archive
  dialects.py python DIR    DIR/py-pax.tar (with a PAX global header first), DIR/py-gnu.tar: Python's tarfile
  dialects.py edge DIR      DIR/edge-*.tar: hand-made headers where readers may disagree (see EDGES)
"""
import io
import os
import sys
import tarfile

MTIME = 1577836800
LONG = "d" * 90 + "/" + "e" * 90 + "/" + "f" * 120
# (name, type, mode, uid, gid, data or link target)
ENTRIES = [
    ("dir", "d", 0o750, 1, 2, None),
    ("dir/short", "f", 0o644, 1000, 1000, b"short\n"),
    ("dir/setuid", "f", 0o4755, 0, 0, b"setuid\n"),
    ("d" * 90, "d", 0o755, 0, 0, None),
    ("d" * 90 + "/" + "e" * 90, "d", 0o755, 0, 0, None),
    (LONG, "f", 0o600, 33, 33, b"long name\n"),
    ("hard-to-long", "h", 0o600, 33, 33, LONG),
    ("sym-long", "l", 0o777, 0, 0, "/" + LONG),
    ("fifo", "p", 0o644, 0, 0, None),
    ("old-mtime", "f", 0o644, 0, 0, b"1960\n"),
    ("bigid", "f", 0o644, 3000000, 3000001, b"big ids\n"),
    (b"caf\xe9-latin1", "f", 0o644, 0, 0, b"latin-1 name\n"),
    ("ünïcödé", "f", 0o644, 0, 0, b"utf-8 name\n"),
]
OLD_MTIME = -315619200  # 1960: negative, base-256 in GNU headers


def tree(root):
    os.makedirs(root, exist_ok=True)
    for name, kind, mode, uid, gid, data in ENTRIES:
        p = os.path.join(os.fsencode(root), os.fsencode(name))
        if kind == "d":
            os.makedirs(p, exist_ok=True)
        elif kind == "f":
            with open(p, "wb") as f:
                f.write(data)
        elif kind == "h":
            os.link(os.path.join(os.fsencode(root), os.fsencode(data)), p)
        elif kind == "l":
            os.symlink(data, p)
        elif kind == "p":
            os.mkfifo(p)
        if kind != "h":
            os.lchown(p, uid, gid)
            if kind != "l":
                os.chmod(p, mode)
    for name, kind, *_ in reversed(ENTRIES):  # times last: children change their directory's
        p = os.path.join(os.fsencode(root), os.fsencode(name))
        t = OLD_MTIME if name == "old-mtime" else MTIME
        os.utime(p, (t, t), follow_symlinks=False)
    os.utime(root, (MTIME, MTIME))


def tarinfo(name, kind, mode, uid, gid, data):
    ti = tarfile.TarInfo(name if isinstance(name, str) else name.decode("utf-8", "surrogateescape"))
    ti.mode, ti.uid, ti.gid, ti.mtime = mode, uid, gid, OLD_MTIME if name == "old-mtime" else MTIME
    ti.type = {"d": tarfile.DIRTYPE, "f": tarfile.REGTYPE, "h": tarfile.LNKTYPE, "l": tarfile.SYMTYPE,
               "p": tarfile.FIFOTYPE}[kind]
    if kind in "hl":
        ti.linkname = data
    if kind == "f":
        ti.size = len(data)
    return ti


def python_tars(out):
    for fmt, name, glob in ((tarfile.PAX_FORMAT, "py-pax", {"comment": "global record", "mtime": "1234567890"}),
                            (tarfile.GNU_FORMAT, "py-gnu", None)):
        with tarfile.open(os.path.join(out, name + ".tar"), "w", format=fmt, pax_headers=glob or {},
                          encoding="utf-8", errors="surrogateescape") as t:
            for e in ENTRIES:
                ti = tarinfo(*e)
                t.addfile(ti, io.BytesIO(e[5]) if e[1] == "f" else None)


def header(name, typ=b"0", size=0, mode=0o644, uid=0, gid=0, link=b"", magic=b"ustar\x0000"):
    """One 512-byte ustar header (name and link given as bytes, used as is)."""
    h = bytearray(512)
    h[0:len(name)] = name[:100]
    h[100:108] = b"%07o\0" % mode
    h[108:116] = b"%07o\0" % uid
    h[116:124] = b"%07o\0" % gid
    h[124:136] = b"%011o\0" % size
    h[136:148] = b"%011o\0" % MTIME
    h[148:156] = b" " * 8
    h[156:157] = typ
    h[157:157 + len(link)] = link[:100]
    h[257:265] = magic
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h)


def pad(data):
    return data + bytes(-len(data) % 512)


def pax(records, typ=b"x"):
    body = b""
    for k, v in records:
        rec = b" " + k + b"=" + v + b"\n"
        n = len(rec) + 1
        while len(b"%d" % n) + len(rec) != n:
            n += 1
        body += b"%d" % n + rec
    return header(b"PaxHeader", typ, len(body)) + pad(body)


def file(name, data, **kw):
    return header(name, b"0", len(data), **kw) + pad(data)


END = bytes(1024)
# name -> (what it tests, tar bytes)
EDGES = {
    "edge-pax-twice": ("two PAX headers in a row before one file: the second's path",
                       pax([(b"path", b"first-pax-path")]) + pax([(b"path", b"second-pax-path")]) +
                       file(b"ustar-name", b"x\n")),
    "edge-global-uid": ("a PAX global header (uid=42, path) before a file of uid 7",
                        pax([(b"uid", b"42"), (b"path", b"global-path")], b"g") + file(b"plain", b"x\n", uid=7)),
    "edge-nul-ustar": ("NUL inside the ustar name field: the name ends there",
                       file(b"ok\0junk", b"x\n")),
    "edge-nul-pax": ("NUL inside a PAX path record",
                     pax([(b"path", b"ok\0/../junk")]) + file(b"placeholder", b"x\n")),
    "edge-nul-linkpath": ("NUL inside a PAX linkpath record",
                          pax([(b"linkpath", b"target\0junk")]) + header(b"sym", b"2", mode=0o777, link=b"x")),
    "edge-pax-latin1": ("a PAX path that is not UTF-8 (Go writes such records for latin-1 file names)",
                        pax([(b"path", b"caf\xe9")]) + file(b"placeholder", b"x\n")),
    "edge-gnu-longlink-hardlink": ("GNU 'L' long name, then a hard link whose 'K' long link names it",
                                   header(b"long", b"5", mode=0o755) +
                                   header(b"././@LongLink", b"L", 206) + pad(b"long/" + b"n" * 200 + b"\0") +
                                   file(b"long/trunc", b"long\n") +
                                   header(b"././@LongLink", b"K", 206) + pad(b"long/" + b"n" * 200 + b"\0") +
                                   header(b"hard", b"1", link=b"long/trunc")),
    "edge-uname-nul": ("NUL and non-UTF-8 bytes in uname/gname (ids used, names ignored)",
                       pax([(b"uname", b"us\0er"), (b"gname", b"gr\xff")]) + file(b"named", b"x\n", uid=5, gid=6)),
}


def edge_tars(out):
    for name, (_, data) in EDGES.items():
        with open(os.path.join(out, name + ".tar"), "wb") as f:
            f.write(data + END)


def main():
    cmd, out = sys.argv[1], sys.argv[2]
    {"tree": tree, "python": python_tars, "edge": edge_tars}[cmd](out)


if __name__ == "__main__":
    main()
