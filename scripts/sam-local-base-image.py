"""Write a stand-in for Lambda's provided.al2023 arm64 base image as a `docker load` archive.

`sam local` runs a provided.al2023 function in an image it builds FROM
public.ecr.aws/lambda/provided:al2023-arm64, adding the aws-lambda-rie it ships
(its Dockerfile runs `mv` and `chmod` in the base image). Where no registry
hosting that image is reachable, this stand-in takes its place: an arm64
busybox with the applets that Dockerfile and `sh` need, and the directories
Lambda has. Our functions are static Go binaries, so they need nothing else.

The archive is built directly, not by `docker import`: Docker 20.10's import
records the host's architecture, and the image must say arm64 (variant v8) so
that SAM and Docker run it as the template's Architectures say.

Usage: python3 scripts/sam-local-base-image.py BUSYBOX TAG LABEL=VALUE OUT.tar
BUSYBOX is bin/busybox from Debian's busybox-static:arm64.
"""
import hashlib
import io
import json
import sys
import tarfile

APPLETS = ["sh", "mv", "chmod", "cp", "rm", "mkdir"]
DIRS = {"bin": 0o755, "var": 0o755, "var/task": 0o755, "var/runtime": 0o755, "opt": 0o755, "tmp": 0o1777}


def layer(busybox: bytes) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, mode in DIRS.items():
            d = tarfile.TarInfo(name)
            d.type, d.mode = tarfile.DIRTYPE, mode
            tar.addfile(d)
        f = tarfile.TarInfo("bin/busybox")
        f.size, f.mode = len(busybox), 0o755
        tar.addfile(f, io.BytesIO(busybox))
        for applet in APPLETS:
            link = tarfile.TarInfo("bin/" + applet)
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
    return out.getvalue()


def add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def main() -> None:
    busybox_path, tag, label, out_path = sys.argv[1:5]
    label_key, _, label_value = label.partition("=")
    with open(busybox_path, "rb") as f:
        rootfs = layer(f.read())
    diff_id = "sha256:" + hashlib.sha256(rootfs).hexdigest()
    config = json.dumps({
        "architecture": "arm64",
        "variant": "v8",
        "os": "linux",
        "created": "2026-11-30T00:00:00Z",
        "config": {
            # As in the real image, so a function sees the same environment.
            "Env": ["PATH=/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin", "LANG=en_US.UTF-8",
                    "TZ=:/etc/localtime", "LAMBDA_TASK_ROOT=/var/task", "LAMBDA_RUNTIME_DIR=/var/runtime"],
            "WorkingDir": "/var/task",
            "Labels": {label_key: label_value},
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "2026-11-30T00:00:00Z", "created_by": "scripts/sam-local-base-image.py"}],
    }, sort_keys=True).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    layer_name = diff_id.removeprefix("sha256:") + "/layer.tar"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [tag], "Layers": [layer_name]}]).encode()
    with tarfile.open(out_path, "w") as tar:
        add(tar, config_name, config)
        add(tar, layer_name, rootfs)
        add(tar, "manifest.json", manifest)


if __name__ == "__main__":
    main()
