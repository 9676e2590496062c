#!/usr/bin/env python3
"""Builds the painterly styles' training data (git-ignored), only from package registries.

    scripts/fetch-styles        # makes data/.venv (Pillow, numpy from PyPI) and runs this

Needs data/photos and data/paintings from scripts/fetch-data.py. Idempotent: downloads go to
data/cache/ and are reused; data/styles/ and data/people/ are rewritten. Every style folder gets
an about.txt (title, then a description: `portraitist export` puts them in the pack) and every
source is listed with its licence in data/styles/SOURCES.md.

* data/styles/vangogh/     the six Van Gogh paintings of data/paintings (public domain).
* data/styles/old-master/  16 historic royal portraits (oil paintings and engravings) from Debian's
                           freecol, images/monarch/: public domain per its debian/copyright
                           ("downloaded from Wikimedia and are in the public domain").
* data/styles/fantasy/     painted fantasy portraits (humans, elves, dwarves) from Debian's
                           wesnoth-1.16-data, GPL-2+ per its debian/copyright; their transparent
                           backgrounds are filled with a painted-looking warm grey.
* data/styles/pencil/, ink/, engraving/, halftone/
                           looks drawn by code (below) from the photos of data/photos and
                           data/people: our own drawings of those photos, under the photos' terms.
* data/people/             photos of people for content: the test images of the PyPI
                           face_recognition sdist (US government portraits, public domain); the
                           demo photos of people of Debian's kphotoalbum (its author's own, GPL-2+
                           with the package); the historic portraits among Debian gramps' example
                           media (GPL-2+ per its debian/copyright, which names no other terms).
* data/content/            what styles runs learn from (`--content data/content`): links to
                           data/photos and data/people, and the first AVATARS facesjs avatars
                           (faces of every skin tone; data/portraits stays for evaluation).
"""

import io
import pathlib
import shutil
import subprocess
import sys
import tarfile

import numpy as np
from PIL import Image, ImageFilter, ImageOps

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
CACHE = DATA / "cache"
STYLES = DATA / "styles"
PEOPLE = DATA / "people"
SIDE = 512  # style images are kept at most this large on their longer side
AVATARS = 48

FREECOL = ("freecol", "1.0.0-1")
WESNOTH = ("wesnoth-1.16-data", "1:1.16.9-1")
WESNOTH_DIRS = ["humans", "elves", "dwarves"]
FACE_RECOGNITION = ("face_recognition", "1.3.0")
KPHOTOALBUM = ("kphotoalbum", "5.9.1-1")
# Its demo photos with people in them (the others are landscapes, pets and a logo).
KPHOTOALBUM_PEOPLE = ["anne_helene", "bar55", "bar55_2", "jesper", "jesper_2", "new_wave_1",
                      "new_wave_2", "qt-logo", "wayne", "grand_canyon_2"]
GRAMPS = ("gramps", "5.1.5-1")
# Its example media that are portraits (not the scanned document).
GRAMPS_PEOPLE = ["654px-Aksel_Andersson", "Alimehemet", "AntoineClaudet", "E_W_Dahlgren",
                 "Gunnlaugur_Larusson_-_Yawn", "O0", "O2", "O3", "O4", "O5",
                 "1897_expeditionsmannschaft_rio_a"]

ABOUT = {
    "vangogh": ("Van Gogh", "Swirling impasto strokes and the bold blues and yellows of Van Gogh's late paintings."),
    "old-master": ("Old master", "The dark grounds, warm glazes and fine detail of Renaissance and Baroque court portraits."),
    "fantasy": ("Fantasy painting", "A clean digital painting: soft shading, crisp outlines, gentle colour."),
    "pencil": ("Pencil sketch", "Graphite on warm paper: soft tones, dark contours, visible grain."),
    "ink": ("Ink drawing", "Black ink on white: bold contours and solid shadows."),
    "engraving": ("Engraving", "Banknote-style line engraving: tone drawn with parallel lines."),
    "halftone": ("Pop-art halftone", "Four flat poster colours and halftone dots, as in a comic print."),
    "watercolour": ("Watercolour", "Pale washes of pigment on textured paper, darker where each wash dries."),
}


def log(message):
    print(message, file=sys.stderr, flush=True)


def run(*cmd, cwd=None):
    log("$ " + " ".join(str(c) for c in cmd))
    subprocess.run(cmd, check=True, cwd=cwd)


def deb(package, version):
    """The .deb in data/cache/debs, downloaded with apt-get if missing."""
    folder = CACHE / "debs"
    folder.mkdir(parents=True, exist_ok=True)
    found = list(folder.glob(f"{package}_*.deb"))
    if not found:
        run("apt-get", "download", f"{package}={version}", cwd=folder)
        found = list(folder.glob(f"{package}_*.deb"))
    return found[0]


def deb_members(path, wanted):
    """(name, bytes) of the files in a .deb whose path contains one of `wanted`."""
    data = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(path)], check=True,
                          capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar.getmembers():
            if member.isfile() and any(w in member.name for w in wanted):
                yield member.name, tar.extractfile(member).read()


def sdist(package, version):
    folder = CACHE / "sdist"
    folder.mkdir(parents=True, exist_ok=True)
    found = list(folder.glob(f"{package}-{version}.tar.gz"))
    if not found:
        run(sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
            "--disable-pip-version-check", "-q", "-d", str(folder), f"{package}=={version}")
        found = list(folder.glob(f"{package}-{version}.tar.gz"))
    return found[0]


def fit(image, side=SIDE):
    image = image.copy()
    image.thumbnail((side, side), Image.LANCZOS)
    return image


def flatten(image, colour):
    """An RGBA image on a background of `colour`, with a little painted texture."""
    image = image.convert("RGBA")
    rng = np.random.default_rng(len(image.tobytes()) % 2**32)
    w, h = image.size
    noise = rng.normal(0, 1, (h // 16 + 1, w // 16 + 1, 1))
    noise = np.kron(noise, np.ones((16, 16, 1)))[:h, :w]
    ground = np.clip(np.array(colour, np.float32) + 14 * noise, 0, 255).astype(np.uint8)
    ground = Image.fromarray(ground).filter(ImageFilter.GaussianBlur(6)).convert("RGBA")
    return Image.alpha_composite(ground, image).convert("RGB")


def gray(image):
    return np.asarray(image.convert("L"), np.float32)


def blur(values, radius):
    return np.asarray(Image.fromarray(np.clip(values, 0, 255).astype(np.uint8))
                      .filter(ImageFilter.GaussianBlur(radius)), np.float32)


def edges(g):
    gy, gx = np.gradient(blur(g, 1.5))
    return np.hypot(gx, gy)


def pencil(image, rng):
    g = gray(image)
    dodge = np.clip(g * 255.0 / (255.0 - blur(255 - g, 8) + 1.0), 0, 255)
    grain = rng.normal(0, 9, g.shape)
    tone = np.clip(dodge * 0.92 + grain, 0, 255) / 255.0
    paper = np.array([246, 238, 222], np.float32)
    graphite = np.array([60, 58, 62], np.float32)
    rgb = graphite + tone[..., None] * (paper - graphite)
    return Image.fromarray(rgb.astype(np.uint8))


def ink(image, rng):
    g = gray(image)
    e = edges(g)
    lines = e > np.percentile(e, 88)
    shadow = blur(g, 2) < np.percentile(g, 18)
    black = lines | shadow
    out = np.where(black[..., None], np.array([18, 16, 20]), np.array([250, 248, 242]))
    out = blur(out.mean(axis=2), 0.7)
    return Image.fromarray(out.astype(np.uint8)).convert("RGB")


def engraving(image, rng):
    g = blur(gray(image), 1.0) / 255.0
    h, w = g.shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    period = 5.0
    wave = 0.5 + 0.5 * np.sin(2 * np.pi * (y + 0.35 * x + 2.0 * np.sin(x / 37.0)) / period)
    dark = wave > g * 1.05
    paper = np.array([240, 232, 210])
    ink_colour = np.array([32, 44, 38])
    out = np.where(dark[..., None], ink_colour, paper).astype(np.uint8)
    return Image.fromarray(out)


def halftone(image, rng):
    small = image.convert("RGB")
    g = blur(gray(small), 2) / 255.0
    palette = np.array([[20, 20, 30], [220, 30, 120], [30, 170, 220], [250, 220, 40]], np.float32)
    levels = np.clip((g * 4).astype(int), 0, 3)
    base = palette[levels]
    h, w = g.shape
    cell = 7
    y, x = np.mgrid[0:h, 0:w]
    cy, cx = (y // cell) * cell + cell / 2, (x // cell) * cell + cell / 2
    radius = (1.0 - g) * cell * 0.62
    dots = np.hypot(y - cy, x - cx) < radius
    out = np.where(dots[..., None], np.array([20, 20, 30], np.float32), base)
    return Image.fromarray(out.astype(np.uint8))


def watercolour(image, rng):
    """Flat washes: smoothed colour in few tones, thinned with water (toward the paper), darker at
    each wash's edge where pigment gathers as it dries, mottled by granulation, on grained paper."""
    rgb = np.asarray(image.convert("RGB"), np.float32)
    smooth = np.stack([blur(rgb[..., c], 4) for c in range(3)], axis=-1)
    washes = np.round(smooth / 48.0) * 48.0
    washes = np.stack([blur(washes[..., c], 2.5) for c in range(3)], axis=-1)
    h, w = washes.shape[:2]
    paper = np.array([247, 243, 232], np.float32)
    thinned = paper - 0.72 * (paper - washes)
    edge = edges(washes.mean(axis=2))
    rim = np.clip(edge / (np.percentile(edge, 97) + 1e-6), 0, 1)
    coarse = rng.normal(0, 1, (h // 24 + 1, w // 24 + 1))
    coarse = np.kron(coarse, np.ones((24, 24)))[:h, :w]
    mottle = blur(128 + 40 * coarse, 10) / 128.0 - 1.0
    grain = rng.normal(0, 1, (h, w))
    depth = 1.0 + 0.35 * rim + 0.12 * mottle + 0.04 * grain
    out = paper - (paper - thinned) * depth[..., None]
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))


DRAWN = {"pencil": pencil, "ink": ink, "engraving": engraving, "halftone": halftone,
         "watercolour": watercolour}


def fresh(folder, title_key):
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    title, description = ABOUT[title_key]
    (folder / "about.txt").write_text(f"{title}\n{description}\n")


def main():
    sources = []
    for needed in ("photos", "paintings"):
        if not any((DATA / needed).glob("*")):
            sys.exit(f"data/{needed} is empty: run scripts/fetch-data.py first")

    # People (content): face_recognition's test images.
    shutil.rmtree(PEOPLE, ignore_errors=True)
    PEOPLE.mkdir(parents=True)
    archive = sdist(*FACE_RECOGNITION)
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            name = pathlib.Path(member.name).name
            if member.isfile() and "/tests/test_images/" in member.name:
                image = Image.open(io.BytesIO(tar.extractfile(member).read()))
                fit(image.convert("RGB"), 1024).save(PEOPLE / f"{pathlib.Path(name).stem}.jpg",
                                                     quality=92)
    count = len(list(PEOPLE.iterdir()))
    sources.append(f"data/people: {count} photos from the PyPI sdist "
                   f"{FACE_RECOGNITION[0]} {FACE_RECOGNITION[1]}, tests/test_images/ (White House "
                   "photos of Barack Obama and Joe Biden: works of the US government, public domain)")
    for (package, version), folder, wanted, prefix, licence in [
        (KPHOTOALBUM, "/usr/share/kphotoalbum/demo/", KPHOTOALBUM_PEOPLE, "kpa",
         "the author's own demo photos, GPL-2+ with the package (its debian/copyright)"),
        (GRAMPS, "/usr/share/doc/gramps/example/gramps/", GRAMPS_PEOPLE, "gramps",
         "historic portraits in its example media, GPL-2+ per its debian/copyright"),
    ]:
        found = []
        for name, data in deb_members(deb(package, version), [folder]):
            stem = pathlib.Path(name).stem
            if stem in wanted and pathlib.Path(name).parent.name == pathlib.Path(folder).name:
                image = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
                fit(image, 1024).save(PEOPLE / f"{prefix}-{stem}.jpg", quality=92)
                found.append(stem)
        missing = sorted(set(wanted) - set(found))
        if missing:
            sys.exit(f"{package} {version} lacks {missing} in {folder}")
        sources.append(f"data/people: {len(found)} photos from Debian {package} {version}, "
                       f"{folder} ({', '.join(sorted(found))}): {licence}")
    people = sorted(PEOPLE.iterdir())

    fresh(STYLES / "vangogh", "vangogh")
    for path in sorted((DATA / "paintings").iterdir()):
        fit(Image.open(path).convert("RGB")).save(STYLES / "vangogh" / f"{path.stem}.png")
    sources.append("data/styles/vangogh: data/paintings (Van Gogh, public domain; reproductions "
                   "from Debian's gcompris-qt-data, see data/SOURCES.md)")

    fresh(STYLES / "old-master", "old-master")
    freecol = deb(*FREECOL)
    count = 0
    for name, data in deb_members(freecol, ["default/resources/images/monarch/"]):
        image = Image.open(io.BytesIO(data))
        flatten(image, (60, 48, 36)).save(STYLES / "old-master" / pathlib.Path(name).name)
        count += 1
    sources.append(f"data/styles/old-master: {count} portraits from Debian {FREECOL[0]} "
                   f"{FREECOL[1]}, images/monarch/ (public domain per its debian/copyright: "
                   "\"downloaded from Wikimedia and are in the public domain\")")

    fresh(STYLES / "fantasy", "fantasy")
    wesnoth = deb(*WESNOTH)
    wanted = [f"core/images/portraits/{d}/" for d in WESNOTH_DIRS]
    count = 0
    for name, data in deb_members(wesnoth, wanted):
        if not name.endswith(".png"):
            continue
        image = Image.open(io.BytesIO(data))
        fit(flatten(image, (150, 140, 122))).save(STYLES / "fantasy" / pathlib.Path(name).name)
        count += 1
    sources.append(f"data/styles/fantasy: {count} portraits from Debian {WESNOTH[0]} "
                   f"{WESNOTH[1]}, data/core/images/portraits/{{{','.join(WESNOTH_DIRS)}}} "
                   "(GPL-2+ per its debian/copyright)")

    subjects = sorted((DATA / "photos").iterdir()) + people
    rng = np.random.default_rng(7)
    for style, draw in DRAWN.items():
        fresh(STYLES / style, style)
        for path in subjects:
            image = fit(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
            draw(image, rng).save(STYLES / style / f"{path.stem}.png")
        sources.append(f"data/styles/{style}: {len(subjects)} drawings made by this script "
                       "(scripts/fetch-styles.py) from data/photos and data/people, under those "
                       "photos' licences")

    content = DATA / "content"
    shutil.rmtree(content, ignore_errors=True)
    (content / "avatars").mkdir(parents=True)
    for name in ("photos", "people"):
        (content / name).symlink_to(DATA / name, target_is_directory=True)
    for path in sorted((DATA / "avatars").iterdir())[:AVATARS]:
        shutil.copy(path, content / "avatars" / path.name)
    sources.append(f"data/content: data/photos, data/people and the first {AVATARS} of "
                   "data/avatars (see data/SOURCES.md)")

    text = "# Sources of data/styles and data/people\n\n" + "\n".join(f"- {s}" for s in sources)
    (STYLES / "SOURCES.md").write_text(text + "\n")
    log("\n".join(sources))


if __name__ == "__main__":
    main()
