#!/usr/bin/python3
"""Sparse files for the tests: make one, measure the disk it uses, compare two without reading their holes.

  sparse.py make FILE SIZE       FILE of SIZE bytes (suffix K/M/G): holes but for a few marker strings
  sparse.py alloc FILE           bytes FILE takes on disk (st_blocks * 512)
  sparse.py same A B             exit 0 when A and B have the same size and bytes (only data regions are read;
                                 where both have a hole both read zeros), else print the first difference, exit 1
"""
import os
import sys

UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
CHUNK = 1 << 20


def size_arg(s):
    return int(s[:-1]) * UNITS[s[-1]] if s[-1] in UNITS else int(s)


def markers(size):
    """(offset, bytes) pairs inside a file of size bytes: start, just past 1 MiB, middle, last bytes."""
    spots = [0, (1 << 20) + 3, size // 2, size - 16]
    return [(o, b"qimg-sparse@%d\n" % o) for o in spots if 0 <= o and o + 32 <= size] or [(0, b"q")]


def make(path, size):
    with open(path, "wb") as f:
        f.truncate(size)
        for off, data in markers(size):
            f.seek(off)
            f.write(data[: size - off])


def data_regions(fd, size):
    pos = 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError:  # ENXIO: only a hole is left
            return
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        yield start, end
        pos = end


def merged(a, b):
    spans = sorted(a + b)
    out = []
    for s, e in spans:
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return out


def same(pa, pb):
    fa, fb = os.open(pa, os.O_RDONLY), os.open(pb, os.O_RDONLY)
    sa, sb = os.fstat(fa).st_size, os.fstat(fb).st_size
    if sa != sb:
        print("sizes differ: %s %d, %s %d" % (pa, sa, pb, sb))
        return 1
    for s, e in merged(list(data_regions(fa, sa)), list(data_regions(fb, sb))):
        for off in range(s, e, CHUNK):
            n = min(CHUNK, e - off)
            if os.pread(fa, n, off) != os.pread(fb, n, off):
                print("bytes differ in [%d, %d)" % (off, off + n))
                return 1
    return 0


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "make":
        make(args[0], size_arg(args[1]))
    elif cmd == "alloc":
        print(os.stat(args[0]).st_blocks * 512)
    elif cmd == "same":
        return same(args[0], args[1])
    else:
        sys.exit(__doc__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
