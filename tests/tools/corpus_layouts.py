#!/usr/bin/python3
"""The fuzz_unpack corpus as inputs for `qimg load`.

  corpus_layouts.py [--plain] OUTDIR INPUT...

For each INPUT (a fuzz_unpack input: one mode byte, then a layer; mode bit 0 set = the rest is a tar to wrap in
zstd), writes OUTDIR/NAME/, an OCI layout of a one-layer image of that layer (diffID: the sha256 of the tar, as
fuzz_unpack does), and OUTDIR/NAME.tar, the layer itself (hostile input for load's own tar reader). NAME is the
input's file name. Prints the names. --plain: each INPUT is a tar, used as is (no mode byte); NAME drops ".tar".
"""
import hashlib
import json
import os
import subprocess
import sys

MT_TAR = "application/vnd.oci.image.layer.v1.tar"
MT_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"


def put(blobs, data):
    h = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, h), "wb") as f:
        f.write(data)
    return "sha256:" + h


def layout(out, name, data, plain):
    mode, rest = (0, data) if plain else (data[0], data[1:]) if data else (0, b"")
    wrap = mode & 1
    blob = subprocess.run(["zstd", "-q", "-c", "-3"], input=rest, capture_output=True, check=True).stdout if wrap else rest
    root = os.path.join(out, name)
    blobs = os.path.join(root, "blobs", "sha256")
    os.makedirs(blobs)
    layer = put(blobs, blob)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/x"]},
                         "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(rest).hexdigest()]}},
                        sort_keys=True).encode()
    cfg = put(blobs, config)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg,
                                      "size": len(config)},
                           "layers": [{"mediaType": MT_ZSTD if wrap else MT_TAR, "digest": layer,
                                       "size": len(blob)}]}, sort_keys=True).encode()
    man = put(blobs, manifest)
    with open(os.path.join(root, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    with open(os.path.join(root, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                                      "digest": man, "size": len(manifest),
                                                      "annotations": {"org.opencontainers.image.ref.name":
                                                                      "localhost/corpus/" + name.lower() + ":1"}}]}, f)
    with open(root + ".tar", "wb") as f:
        f.write(rest)


def main():
    args = sys.argv[1:]
    plain = args[0] == "--plain"
    out = args[1] if plain else args[0]
    for path in args[2:] if plain else args[1:]:
        base = os.path.basename(path)
        if plain and base.endswith(".tar"):
            base = base[:-4]
        name = "".join(c if c.isalnum() or c in "._-" else "_" for c in base)
        with open(path, "rb") as f:
            layout(out, name, f.read(), plain)
        print(name)


if __name__ == "__main__":
    main()
