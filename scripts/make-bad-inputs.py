#!/usr/bin/env python3
"""Write the bad-input corpus, tests/fixtures/bad/, and its expected outcomes, expected.json.

Every kind of broken or unusual photo a user may hand the app: empty, not an image, truncated, corrupt,
too small, absurdly large headers, formats we do not read, and the unusual-but-valid (16-bit, greyscale,
CMYK, palette with transparency, animations, all eight EXIF orientations). `tests/suite/bad_inputs.rs` checks
that `image_io::decode` gives exactly the outcome in expected.json for each file, and that the CLI names
every refused file with its message and never panics.

expected.json maps each file name to {"ok": [width, height]} (after EXIF orientation, optionally with
"mean_rgb": [r, g, b], the mean colour of the upright, white-flattened picture as Pillow reads it) or to
{"error": "<substring of the message>"}.

Deterministic and idempotent: fixed seeds, no timestamps; running it twice writes the same bytes. Photo
content comes from tests/fixtures/astronaut.jpg (public domain, NASA). The valid 64-megapixel photo is
not stored here: the Rust test makes it at run time.
Usage: scripts/make-bad-inputs.py   (needs Pillow and numpy: pip install pillow numpy)
"""
import io
import json
import pathlib
import struct
import warnings
import zlib

import numpy as np
from PIL import Image, ImageOps

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "bad"
SOURCE = ROOT / "tests" / "fixtures" / "astronaut.jpg"

TOO_SMALL = "it must be at least 16×16"
TOO_LARGE = "the largest supported is 100 megapixels"
CORRUPT = "the image data is corrupt or truncated"
UNSUPPORTED = "images are not supported: convert it to JPEG, PNG or WebP first"


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(width, height, bit_depth, colour_type, rows: bytes) -> bytes:
    """A minimal PNG from raw scanlines (each already prefixed with its filter byte)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
            + png_chunk(b"IDAT", zlib.compress(rows, 9)) + png_chunk(b"IEND", b""))


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **options)
    return buf.getvalue()


def mean_rgb(image: Image.Image) -> list:
    """Mean colour of what a viewer shows: upright, transparency flattened onto white."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    pixels = np.asarray(image.convert("RGB"), dtype=np.float64)
    return [round(float(v), 1) for v in pixels.reshape(-1, 3).mean(axis=0)]


def with_app1(jpeg: bytes, payload: bytes) -> bytes:
    """Insert an APP1 segment right after the start-of-image marker."""
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def main():
    warnings.filterwarnings("ignore", message="Corrupt EXIF data")  # bad-exif.jpg, on purpose
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20261122)
    astronaut = Image.open(SOURCE).convert("RGB")  # 227×229
    small = astronaut.resize((64, 64), Image.LANCZOS)
    files: dict[str, bytes] = {}
    expected: dict[str, dict] = {}

    def ok(name, data):
        files[name] = data
        image = Image.open(io.BytesIO(data))
        image.seek(0)  # animations: the first frame
        expected[name] = {"ok": list(ImageOps.exif_transpose(image).size), "mean_rgb": mean_rgb(image)}

    def error(name, data, message):
        files[name] = data
        expected[name] = {"error": message}

    photo_jpeg = encoded(small, "JPEG", quality=90)
    photo_png = encoded(small, "PNG", optimize=True)

    # --- not an image at all ---
    error("empty.jpg", b"", "the file is empty")
    error("text-renamed.jpg", b"Holiday notes: bring the camera charger.\n" * 4,
          "not an image: the content is not JPEG, PNG, WebP or GIF")
    # Text that happens to start with another format's two-byte signature ("BM" is BMP's).
    error("bmw-notes.jpg", b"BMW service booked for Monday 9:00, bring the logbook.\n",
          "not an image: the content is not JPEG, PNG, WebP or GIF")

    # --- corrupt or truncated ---
    # Cut in the middle of the entropy-coded scan: the decoder would pad with grey; we refuse.
    error("truncated.jpg", photo_jpeg[: len(photo_jpeg) // 2], "ends before its end-of-image marker")
    # Cut inside the header tables, before any start-of-scan marker.
    sos = photo_jpeg.index(b"\xff\xda")
    error("truncated-header.jpg", photo_jpeg[: sos // 2], CORRUPT)
    error("truncated.png", photo_png[: len(photo_png) // 2], CORRUPT)
    idat = photo_png.index(b"IDAT")
    idat_end = idat + 4 + struct.unpack(">I", photo_png[idat - 4: idat])[0]
    # The pixel data intact, its checksum wrong.
    bad_crc = bytearray(photo_png)
    bad_crc[idat_end: idat_end + 4] = bytes(b ^ 0xFF for b in bad_crc[idat_end: idat_end + 4])
    error("bad-crc.png", bytes(bad_crc), CORRUPT)
    # A byte of the compressed pixel data changed (and so the checksum no longer fits).
    corrupt_data = bytearray(photo_png)
    corrupt_data[idat + 4 + 20] ^= 0x55
    error("corrupt-data.png", bytes(corrupt_data), CORRUPT)

    # --- sizes ---
    error("one-pixel.png", encoded(Image.new("RGB", (1, 1), (200, 100, 50)), "PNG"),
          "the image is 1×1 pixels; " + TOO_SMALL)
    error("one-by-10000.png", encoded(Image.new("RGB", (1, 10000), (200, 100, 50)), "PNG", optimize=True),
          "the image is 1×10000 pixels; " + TOO_SMALL)
    # Valid headers claiming enormous pictures, with next to no data behind them: must be refused
    # from the header, before any pixel memory is allocated.
    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    junk = rng.integers(0, 256, 64, dtype=np.uint8).tobytes()
    error("huge-header.png",
          b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", junk) + png_chunk(b"IEND", b""),
          "the image is 20000×20000 pixels; " + TOO_LARGE)
    tiny_jpeg = bytearray(encoded(Image.new("RGB", (16, 16), (90, 120, 200)), "JPEG", quality=90))
    sof = tiny_jpeg.index(b"\xff\xc0")
    tiny_jpeg[sof + 5: sof + 9] = struct.pack(">HH", 30000, 30000)  # height, width
    error("huge-header.jpg", bytes(tiny_jpeg), "the image is 30000×30000 pixels; " + TOO_LARGE)
    tiny_gif = bytearray(encoded(Image.new("RGB", (32, 32), (90, 120, 200)), "GIF"))
    huge_screen = bytearray(tiny_gif)
    huge_screen[6:10] = struct.pack("<HH", 65535, 65535)  # logical screen
    error("huge-header.gif", bytes(huge_screen), "the image is 65535×65535 pixels; " + TOO_LARGE)
    # A 32×32 GIF whose first frame claims 60000×60000: the decoder would need a 14 GB frame buffer.
    huge_frame = bytearray(tiny_gif)
    descriptor = huge_frame.index(b"\x2c\x00\x00\x00\x00\x20\x00\x20\x00")
    huge_frame[descriptor + 5: descriptor + 9] = struct.pack("<HH", 60000, 60000)
    error("huge-frame.gif", bytes(huge_frame), CORRUPT)
    # Lossless WebP (VP8L) whose header claims 16383×16383. (The format's maximum, 16384, is read as
    # 0 by image-webp 0.2, (1 + header) & 0x3FFF, and refused as inconsistent: fine, but not this case.)
    bits = 0x2F | (16382 << 8) | (16382 << 22)  # signature, width-1, height-1, no alpha, version 0
    vp8l = struct.pack("<BI", bits & 0xFF, bits >> 8) + rng.integers(0, 256, 59, dtype=np.uint8).tobytes()
    vp8l_chunk = b"VP8L" + struct.pack("<I", len(vp8l)) + vp8l
    error("huge-header.webp", b"RIFF" + struct.pack("<I", 4 + len(vp8l_chunk)) + b"WEBP" + vp8l_chunk,
          "the image is 16383×16383 pixels; " + TOO_LARGE)

    # --- formats we recognise but do not read ---
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"
    heic += b"\x00\x00\x01\x00meta" + rng.integers(0, 256, 248, dtype=np.uint8).tobytes()
    error("iphone.heic", heic, "HEIC/HEIF " + UNSUPPORTED)
    avif = b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf"
    avif += rng.integers(0, 256, 200, dtype=np.uint8).tobytes()
    error("camera.avif", avif, "AVIF " + UNSUPPORTED)
    svg = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
           b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">\n'
           b'  <circle cx="32" cy="28" r="14" fill="#c96"/>\n</svg>\n')
    error("drawing.svg", svg, "SVG " + UNSUPPORTED)
    error("scan.bmp", encoded(small.resize((32, 32)), "BMP"), "BMP " + UNSUPPORTED)
    error("scan.tiff", encoded(small.resize((32, 32)), "TIFF"), "TIFF " + UNSUPPORTED)

    # --- unusual but valid: must decode, with the right size and colours ---
    # 16-bit RGB PNG (Pillow cannot write one, so by hand).
    rgb16 = np.asarray(small.resize((48, 32)), dtype=np.uint16) * 257
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in rgb16)
    ok("rgb16.png", png_bytes(48, 32, 16, 2, rows))
    expected["rgb16.png"]["mean_rgb"] = [round(float(v), 1)
                                         for v in (rgb16 / 257).reshape(-1, 3).mean(axis=0)]
    ok("grey.jpg", encoded(small.convert("L"), "JPEG", quality=90))
    ok("cmyk.jpg", encoded(small.convert("CMYK"), "JPEG", quality=90))
    ok("progressive.jpg", encoded(small, "JPEG", quality=90, progressive=True))
    # A JPEG named .png: the content decides, not the name.
    ok("jpeg-named.png", photo_jpeg)
    # Phones append data after the end-of-image marker (Samsung trailers, Google "motion photos" append
    # a whole MP4). Arbitrary bytes there may contain FF DA (start-of-scan) and no FF D9 after it.
    trailer = (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
               + rng.integers(0, 256, 200, dtype=np.uint8).tobytes() + b"\xff\xda\x00\x0c"
               + rng.integers(0, 256, 56, dtype=np.uint8).tobytes().replace(b"\xff\xd9", b"\xff\x00"))
    ok("motion-photo.jpg", photo_jpeg + trailer)
    # An EXIF block carrying its own little JPEG (a thumbnail, with its own scan and end marker)
    # must not be mistaken for the photo, whole or cut short.
    thumbnail = encoded(small.resize((16, 16)), "JPEG", quality=80)
    ifd0 = struct.pack(">HHHIHHI", 1, 0x0112, 3, 1, 1, 0, 26)  # orientation 1; IFD1 at 26
    ifd1 = struct.pack(">HHHII", 2, 0x0201, 4, 1, 56) + struct.pack(">HHII", 0x0202, 4, 1, len(thumbnail))
    tiff = b"MM\x00\x2a\x00\x00\x00\x08" + ifd0 + ifd1 + struct.pack(">I", 0)
    assert len(tiff) == 56
    with_thumbnail = with_app1(photo_jpeg, b"Exif\x00\x00" + tiff + thumbnail)
    ok("with-thumbnail.jpg", with_thumbnail)
    main_scan = with_thumbnail.rindex(b"\xff\xda")
    error("truncated-with-thumbnail.jpg", with_thumbnail[: (main_scan + len(with_thumbnail)) // 2],
          "ends before its end-of-image marker")
    # Palette PNG with a transparent entry (tRNS): transparency is flattened onto white.
    quantized = small.resize((40, 40)).quantize(colors=15, method=Image.Quantize.MEDIANCUT,
                                                dither=Image.Dither.NONE)
    indices = np.asarray(quantized).copy()
    indices[:, :12] = 15  # a transparent band on the left
    palette = Image.fromarray(indices, "P")
    colours = quantized.getpalette()[: 15 * 3]
    palette.putpalette(colours + [0] * (16 * 3 - len(colours)))
    ok("palette-trns.png", encoded(palette, "PNG", transparency=15))
    # Animations: the first frame is what we decode (red, not blue).
    red = Image.new("RGB", (32, 24), (200, 30, 30))
    blue = Image.new("RGB", (32, 24), (30, 30, 200))
    ok("animated-gif.gif", encoded(red, "GIF", save_all=True, append_images=[blue], duration=200, loop=0))
    try:
        animated_webp = encoded(red, "WEBP", save_all=True, append_images=[blue], duration=200, loop=0,
                                lossless=True)
    except (OSError, ValueError) as err:
        print(f"note: this Pillow cannot write animated WebP ({err}); animated-webp.webp left out")
    else:
        ok("animated-webp.webp", animated_webp)

    # All eight EXIF orientations of one upright 40×24 picture: each file stores the pixels a camera
    # held that way would, with the tag that turns them back upright.
    upright = astronaut.crop((60, 20, 180, 92)).resize((40, 24), Image.LANCZOS)
    # How a viewer turns stored pixels upright for each orientation (as Pillow's exif_transpose) ...
    to_upright = {1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
                  4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
                  6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}
    # ... and its inverse, to make the stored pixels.
    inverse = {**to_upright, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}
    for n in range(1, 9):
        stored = upright if inverse[n] is None else upright.transpose(inverse[n])
        exif = Image.Exif()
        exif[0x0112] = n
        data = encoded(stored, "JPEG", quality=95, subsampling=0, exif=exif.tobytes())
        shown = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
        diff = np.abs(np.asarray(shown, dtype=np.int16) - np.asarray(upright, dtype=np.int16)).mean()
        assert shown.size == (40, 24) and diff < 3, (n, shown.size, diff)
        ok(f"orient-{n}.jpg", data)
    # An out-of-range orientation (9) and an EXIF block that is cut short: ignored, photo kept as stored.
    exif = Image.Exif()
    exif[0x0112] = 9
    ok("orient-invalid.jpg", encoded(upright, "JPEG", quality=95, subsampling=0, exif=exif.tobytes()))
    broken_exif = b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\x00\x05\x01\x12\x00\x03"
    ok("bad-exif.jpg", with_app1(encoded(upright, "JPEG", quality=95, subsampling=0), broken_exif))

    # --- write, removing files from an earlier run that are no longer made ---
    for old in OUT.iterdir():
        if old.name not in files and old.name != "expected.json":
            old.unlink()
    for name, data in files.items():
        assert len(data) < 100_000, (name, len(data))
        path = OUT / name
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)
    lines = [f"  {json.dumps(name)}: {json.dumps(outcome, ensure_ascii=False)}"
             for name, outcome in sorted(expected.items())]
    text = "{\n" + ",\n".join(lines) + "\n}\n"
    (OUT / "expected.json").write_text(text, encoding="utf-8")
    total = sum(len(d) for d in files.values())
    print(f"wrote {len(files)} files ({total / 1000:.1f} KB) and expected.json to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
