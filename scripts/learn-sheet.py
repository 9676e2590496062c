#!/usr/bin/env python3
"""The README's "Learn a style" sheet: the painting a style was learnt from, then for each held-out
portrait the photo and the portrait in the learnt style (run by the native CLI from the pack the page
downloaded, which gives the page's output).

    scripts/learn-sheet.py PORTRAITIST PACK.tar STYLE PAINTING OUT.jpg PHOTO...
"""
import pathlib
import subprocess
import sys
import tempfile

from PIL import Image

CELL = 256
GAP = 6


def fit(image):
    image = image.convert("RGB")
    scale = CELL / image.height
    return image.resize((max(1, round(image.width * scale)), CELL), Image.LANCZOS)


def main():
    if len(sys.argv) < 7:
        sys.exit(__doc__)
    portraitist, pack, style, painting, out = sys.argv[1:6]
    photos = sys.argv[6:]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for photo in photos:
            subprocess.run([portraitist, "--backend", "cpu", "stylize", "--style", f"{pack}:{style}",
                            "--max-side", "512", photo, "--out", tmp], check=True,
                           stdout=subprocess.DEVNULL)
            result = pathlib.Path(tmp) / (pathlib.Path(photo).stem + ".png")
            rows.append([fit(Image.open(photo)), fit(Image.open(result))])
    first = fit(Image.open(painting))
    cells = [first] + [c for row in rows for c in row]
    width = sum(c.width for c in cells) + GAP * (len(cells) + 1)
    sheet = Image.new("RGB", (width, CELL + 2 * GAP), "white")
    x = GAP
    for cell in cells:
        sheet.paste(cell, (x, GAP))
        x += cell.width + GAP
    sheet.save(out, quality=88)


if __name__ == "__main__":
    main()
