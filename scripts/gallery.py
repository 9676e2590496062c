#!/usr/bin/env python3
"""The README's before/after gallery: each public-domain test portrait, then the same portrait in
every shipped transfer style (each style of a multi-style pack) at full strength, one row per
portrait, labelled.

    scripts/gallery.py [PORTRAITIST_BINARY]    (writes docs/gallery.jpg; needs Pillow)

Runs `portraitist stylize` for each style in models/index.json, so the pictures are exactly what
the CLI (and, within one 8-bit level, the page) makes.
"""
import json
import pathlib
import subprocess
import sys
import tempfile

from PIL import Image, ImageDraw  # pip install pillow

ROOT = pathlib.Path(__file__).resolve().parent.parent
PORTRAITS = [ROOT / "tests/fixtures/astronaut-512.jpg", ROOT / "tests/fixtures/grace_hopper.jpg"]
CELL = 256
LABEL = 22


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "portraitist"
    index = json.loads((ROOT / "models/index.json").read_text())
    styles = [s for s in index["styles"] if s.get("kind", "transfer") == "transfer"]
    columns = [("photo", None)]
    for s in styles:  # a multi-style pack: a column per style (`pack:style`)
        if s.get("styles"):
            columns += [(one["title"], f'{s["id"]}:{one["id"]}') for one in s["styles"]]
        else:
            columns.append((s["title"], s["id"]))
    sheet = Image.new("RGB", (CELL * len(columns), (CELL + LABEL) * len(PORTRAITS)), "white")
    draw = ImageDraw.Draw(sheet)
    with tempfile.TemporaryDirectory() as tmp:
        for row, photo in enumerate(PORTRAITS):
            for col, (title, style) in enumerate(columns):
                if style is None:
                    path = photo
                else:
                    out = pathlib.Path(tmp) / style.replace(":", "-")
                    subprocess.run([binary, "--models", str(ROOT / "models"), "stylize", "--style", style,
                                    "--max-side", "512", str(photo), "--out", str(out)],
                                   check=True, stdout=subprocess.DEVNULL)
                    path = out / (photo.stem + ".png")
                image = Image.open(path).convert("RGB")
                image.thumbnail((CELL, CELL), Image.LANCZOS)
                x = col * CELL + (CELL - image.width) // 2
                y = row * (CELL + LABEL) + LABEL
                sheet.paste(image, (x, y + (CELL - image.height) // 2))
                draw.text((col * CELL + 6, row * (CELL + LABEL) + 5), title, fill="black")
    out = ROOT / "docs/gallery.jpg"
    sheet.save(out, quality=88)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
