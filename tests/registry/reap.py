#!/usr/bin/python3
"""Find (and stop) every process a test file started, and unmount what it left under a directory.

usage: reap.py [--tag TAG] [--kill] [--umount DIR]
  --tag TAG     processes whose environment holds QIMG_TEST_TAG=TAG, plus all their descendants,
                minus this process and its ancestors (the test shell that asks)
  --kill        SIGTERM them, wait up to 3 s, then SIGKILL what is left, and wait up to 2 s more
  --umount DIR  lazily unmount every mount point at or below DIR (deepest first)
Prints one line per process found ("pid comm args") and per mount point ("mount PATH"). Exit 0.
"""
import os
import signal
import sys
import time


def procs():
    """pid -> (ppid, comm) for every live process."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as f:
                data = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        comm = data[data.index("(") + 1:data.rindex(")")]
        fields = data[data.rindex(")") + 2:].split()
        if fields[0] == "Z":
            continue
        out[int(name)] = (int(fields[1]), comm)
    return out


def has_tag(pid, needle):
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            return needle in f.read().split(b"\0")
    except OSError:
        return False


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return ""


def ancestors(table, pid):
    seen = set()
    while pid in table and pid not in seen:
        seen.add(pid)
        pid = table[pid][0]
    return seen


def tagged(tag):
    table = procs()
    needle = ("QIMG_TEST_TAG=" + tag).encode()
    spared = ancestors(table, os.getpid())
    found = {p for p in table if p not in spared and has_tag(p, needle)}
    grew = True
    while grew:  # add descendants (container processes get the image's env, not ours)
        more = {p for p, (pp, _) in table.items() if pp in found and p not in found and p not in spared}
        found |= more
        grew = bool(more)
    return {p: table[p][1] for p in found}


def kill_all(pids, sig):
    for p in pids:
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass


def alive(pids):
    live = set(procs())
    return [p for p in pids if p in live]


def stop(found):
    pids = list(found)
    for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 2.0)):
        kill_all(pids, sig)
        deadline = time.monotonic() + wait
        while pids and time.monotonic() < deadline:
            time.sleep(0.05)
            pids = alive(pids)
        if not pids:
            return


def unescape(path):
    """Mount points in mountinfo escape space, tab, newline and backslash as \\ooo."""
    out, i = [], 0
    while i < len(path):
        seq = path[i + 1:i + 4]
        if path[i] == "\\" and len(seq) == 3 and seq.isdigit():
            out.append(chr(int(path[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(path[i])
            i += 1
    return "".join(out)


def mounts_under(top):
    top = os.path.realpath(top).rstrip("/")
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = unescape(line.split()[4])
            if mp == top or mp.startswith(top + "/"):
                found.append(mp)
    return sorted(set(found), key=lambda p: p.count("/"), reverse=True)


def umount_all(top):
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    mnt_detach = 2
    for _ in range(3):  # stacked mounts need one pass per layer
        points = mounts_under(top)
        if not points:
            return
        for mp in points:
            print("mount " + mp)
            libc.umount2(mp.encode(), mnt_detach)


def main(argv):
    args = argv[1:]
    tag = args[args.index("--tag") + 1] if "--tag" in args else None
    top = args[args.index("--umount") + 1] if "--umount" in args else None
    if tag:
        found = tagged(tag)
        for pid, comm in sorted(found.items()):
            print("%d %s %s" % (pid, comm, cmdline(pid)[:200]))
        if "--kill" in args and found:
            stop(found)
    if top and os.path.exists(top):
        umount_all(top)


if __name__ == "__main__":
    main(sys.argv)
