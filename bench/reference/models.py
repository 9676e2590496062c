"""PyTorch mirrors of portraitist's networks, for the benchmarks' correctness anchor and timings.

The generator is built from the layer table Burn's export writes into the SafeTensors metadata
(see `Generator`); the norm and discriminator follow `src/model/norm.rs` and
`src/model/discriminator.rs` exactly, and parameter names are Burn's module paths joined with '.', so the SafeTensors files
written by `portraitist export --format safetensors` load with `load_state_dict(strict=True)`.
"""

import json

import torch
import torch.nn.functional as F
from safetensors import safe_open
from torch import nn

EPSILON = 1e-5
# Metadata keys under which Burn's export stores the generator's shape and its layer table (JSON).
GENERATOR_METADATA = "portraitist.generator"
LAYERS_METADATA = "portraitist.layers"


def reflect(x, pad):
    return F.pad(x, (pad, pad, pad, pad), mode="reflect") if pad else x


class StatNorm(nn.Module):
    """Instance norm with biased variance: (x - mean) / sqrt(var + eps) * gamma + beta."""

    def __init__(self, channels):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        # PyTorch's fused kernel computes exactly that formula (statistics of each sample).
        return F.instance_norm(x, weight=self.gamma, bias=self.beta, eps=EPSILON)


def _attach(root, path, module):
    """Register `module` under the dotted `path` (e.g. `blocks.0.first.conv`), creating the
    containers on the way, so that parameter names are Burn's module paths."""
    *parents, name = path.split(".")
    for part in parents:
        if not hasattr(root, part):
            root.add_module(part, nn.Module())
        root = getattr(root, part)
    root.add_module(name, module)


class Generator(nn.Module):
    """The generator its layer table describes: `GeneratorConfig::layers` in
    src/model/generator.rs, which Burn's export stores in the SafeTensors metadata. Nothing about
    the network's shape is written here: this walks the table as Burn's forward pass does."""

    def __init__(self, layers, config=None, styles=0):
        super().__init__()
        self.layers = layers
        self.config = config or {}
        widths = []
        for layer in layers:
            conv = nn.Conv2d(layer["cin"], layer["cout"], layer["kernel"], stride=layer["stride"])
            _attach(self, layer["conv"], conv)
            if layer["norm"]:
                _attach(self, layer["norm"], StatNorm(layer["cout"]))
                widths.append(layer["cout"])
        # A multi-style network (src/model/styles.rs): per norm layer, each style's offsets of the
        # scale and shift (`styles.gamma.K`, `styles.beta.K`, [styles, channels]).
        if styles:
            table = nn.Module()
            table.gamma = nn.ParameterList([nn.Parameter(torch.zeros(styles, c)) for c in widths])
            table.beta = nn.ParameterList([nn.Parameter(torch.zeros(styles, c)) for c in widths])
            self.styles = table

    def forward(self, x, mix=None):
        """`mix` ([batch, styles]): each sample's blend of a multi-style network's styles, whose
        offsets are added to every norm's scale and shift."""
        image, kept, k = x, None, 0
        for layer in self.layers:
            if layer["residual"] == "open":
                kept = x
            if layer["upsample"]:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            if layer["concat_input"]:
                x = torch.cat([x, image], dim=1)
            x = self.get_submodule(layer["conv"])(reflect(x, layer["pad"]))
            if layer["norm"]:
                norm = self.get_submodule(layer["norm"])
                if mix is None:
                    x = norm(x)
                else:
                    b, c = x.shape[:2]
                    gamma = norm.gamma + mix @ self.styles.gamma[k]
                    beta = norm.beta + mix @ self.styles.beta[k]
                    x = F.instance_norm(x, eps=EPSILON) * gamma.reshape(b, c, 1, 1) + beta.reshape(b, c, 1, 1)
                k += 1
            if layer["activation"] == "relu":
                x = F.relu(x)
            elif layer["activation"] == "tanh":
                x = torch.tanh(x)
            if layer["residual"] == "close":
                x = kept + x
        return x


class Stage(nn.Module):
    def __init__(self, cin, cout, stride, norm):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 4, stride=stride, padding=1)
        self.norm = StatNorm(cout) if norm else None

    def forward(self, x):
        x = self.conv(x)
        if self.norm is not None:
            x = self.norm(x)
        return F.leaky_relu(x, 0.2)


class Discriminator(nn.Module):
    """PatchGAN: stride-2 4×4 convolutions (zero padding 1), the last stage stride 1, then a
    one-channel head giving patch logits."""

    def __init__(self, width, layers=3, channels=3, heads=1):
        super().__init__()

        def width_at(layer):
            return width * (1 << min(layer, 3))

        stages = [Stage(channels, width, 2, norm=False)]
        for layer in range(1, layers + 1):
            stride = 2 if layer < layers else 1
            stages.append(Stage(width_at(layer - 1), width_at(layer), stride, norm=True))
        self.stages = nn.ModuleList(stages)
        # One head per style in the styles mode (each sample is judged by its style's head).
        self.head = nn.Conv2d(width_at(layers), heads, 4, padding=1)

    def forward(self, x):
        for stage in self.stages:
            x = stage(x)
        return self.head(x)


@torch.no_grad()
def init_weights(module, generator=None):
    """Our trainer's initialisation: conv weights N(0, 0.02), biases 0, gamma 1, beta 0."""
    for name, param in module.named_parameters():
        if name.endswith("weight"):
            param.normal_(0.0, 0.02, generator=generator)
        elif name.endswith("gamma"):
            param.fill_(1.0)
        else:
            param.zero_()
    return module


def load(path, styles=0):
    """The generator stored in a SafeTensors file written by Burn's export, in eval mode (float32);
    with `styles`, a multi-style network of it whose style offsets start at zero."""
    with safe_open(path, framework="pt") as f:
        metadata = f.metadata() or {}
        tensors = {name: f.get_tensor(name).float() for name in f.keys()}
    if LAYERS_METADATA not in metadata:
        raise SystemExit(
            f"{path} has no layer table ({LAYERS_METADATA} in its metadata): "
            "export it again with `portraitist export --format safetensors`"
        )
    layers = json.loads(metadata[LAYERS_METADATA])
    config = json.loads(metadata.get(GENERATOR_METADATA, "{}"))
    model = Generator(layers, config, styles=styles)
    if styles:
        tensors.update({k: v for k, v in model.state_dict().items() if k.startswith("styles.")})
    model.load_state_dict(tensors, strict=True)
    return model.eval()


def generator_flops(layers, height, width):
    """Forward FLOPs (2 × multiply-adds) of the generator's convolutions for one image.

    Norms, activations, padding, upsampling and biases are left out: together they are a few
    operations per activation, against tens to hundreds per activation in the convolutions.
    """
    macs, pixels = 0, height * width  # pixels of the current layer's input
    for layer in layers:
        if layer["upsample"]:
            pixels *= 4
        pixels //= layer["stride"] ** 2
        macs += pixels * layer["cout"] * layer["cin"] * layer["kernel"] ** 2
    return 2 * macs


# VGG19's convolutions up to relu4_1 in data/vgg19/vgg19.bin (scripts/convert-vgg19.py).
VGG_LAYERS = 9
VGG_FEATURES = (0, 2, 4, 8)  # relu1_1, relu2_1, relu3_1, relu4_1
VGG_POOLED = (1, 3, 7)
BGR_MEAN = (103.939, 116.779, 123.68)


class Vgg19(nn.Module):
    """`src/model/vgg.rs`: RGB in [-1, 1] → BGR 0..255 minus Caffe's means, then VGG19's first
    four blocks; `forward` returns the four features the losses use."""

    def __init__(self, path):
        super().__init__()
        import struct

        data = open(path, "rb").read()
        assert data[:8] == b"PTVGG19\n", f"{path}: not a vgg19.bin"
        at, (count,) = 12, struct.unpack_from("<I", data, 8)
        convs = []
        for _ in range(count):
            (length,) = struct.unpack_from("<I", data, at)
            at += 4 + length
            cout, cin, kh, kw = struct.unpack_from("<4I", data, at)
            at += 16
            table = torch.tensor(struct.unpack_from("<256f", data, at))
            at += 1024
            n = cout * cin * kh * kw
            index = torch.frombuffer(bytearray(data[at:at + n]), dtype=torch.uint8).long()
            at += n
            bias = torch.tensor(struct.unpack_from(f"<{cout}f", data, at))
            at += 4 * cout
            conv = nn.Conv2d(cin, cout, 3, padding=1)
            with torch.no_grad():
                conv.weight.copy_(table[index].reshape(cout, cin, kh, kw))
                conv.bias.copy_(bias)
            convs.append(conv)
        self.convs = nn.ModuleList(convs)
        self.register_buffer("mean", torch.tensor(BGR_MEAN).reshape(1, 3, 1, 1))
        for p in self.parameters():
            p.requires_grad_(False)

    def forward(self, images):
        x = ((images + 1) * 127.5).flip(1) - self.mean
        out = []
        for i, conv in enumerate(self.convs):
            x = F.relu(conv(x))
            if i in VGG_FEATURES:
                out.append(x)
            if i in VGG_POOLED:
                x = F.max_pool2d(x, 2)
        return out


def gram(features):
    b, c, h, w = features.shape
    f = features.reshape(b, c, h * w)
    return f @ f.transpose(1, 2) / (c * h * w)


# --- The noise GAN (`src/model/latent.rs`), parameter names and layouts as Burn's (linear weights
# [in, out], convolutions [out, in, k, k]).

SLOPE = 0.2
POWER_STEPS = 4


def pixel_norm(x):
    return x / (x.square().mean(1, keepdim=True) + 1e-8).sqrt()


def act(x):
    return pixel_norm(F.leaky_relu(x, SLOPE))


class BurnLinear(nn.Module):
    def __init__(self, d_in, d_out):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(d_in, d_out))
        self.bias = nn.Parameter(torch.zeros(d_out))

    def forward(self, x):
        return x @ self.weight + self.bias


class LatentGenerator(nn.Module):
    """z → pixel norm → linear → 4×4, then per doubling a nearest upsample, a 3×3 convolution,
    leaky ReLU and pixel norm; a 3×3 convolution and tanh give the image."""

    def __init__(self, latent, size, width, channels=3):
        super().__init__()

        def at(side):
            return min(width * size // side, 8 * width)

        self.base_channels = at(4)
        self.project = BurnLinear(latent, self.base_channels * 16)
        self.base = nn.Conv2d(at(4), at(4), 3, padding=1)
        ups, side = [], 4
        while side < size:
            ups.append(nn.Conv2d(at(side), at(side * 2), 3, padding=1))
            side *= 2
        self.ups = nn.ModuleList(ups)
        self.head = nn.Conv2d(at(size), channels, 3, padding=1)

    def forward(self, z):
        b = z.shape[0]
        z = pixel_norm(z.reshape(b, -1, 1, 1)).reshape(b, -1)
        x = act(self.project(z).reshape(b, self.base_channels, 4, 4))
        x = act(self.base(x))
        for conv in self.ups:
            x = act(conv(F.interpolate(x, scale_factor=2, mode="nearest")))
        return torch.tanh(self.head(x))


def spectral_norm(w):
    """σ of `w` [m, n] as ours computes it: power iteration from a fixed start, the vectors
    constants, so the gradient is u vᵀ."""
    n = w.shape[1]
    # `power_start` in src/model/latent.rs, in float32 arithmetic as there: four steps do not
    # converge, so the vectors (and the gradient u vᵀ) depend on the start's every bit.
    i = torch.arange(n, dtype=torch.float32)
    start = (((i * 0.618034 + 0.1) % 1.0 - 0.5) * 2.0).to(w.dtype)

    def unit(t):
        return t / (t.square().sum() + 1e-12).sqrt()

    with torch.no_grad():
        fixed = w.detach()
        v = unit(start.reshape(n, 1))
        for _ in range(POWER_STEPS):
            u = unit(fixed @ v)
            v = unit(fixed.T @ u)
        u = unit(fixed @ v)
    return (u.T @ (w @ v)).reshape(())


class SnConv(nn.Module):
    def __init__(self, cin, cout, kernel, stride, padding):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(cout, cin, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.stride, self.padding = stride, padding

    def forward(self, x):
        w = self.weight
        sigma = spectral_norm(w.reshape(w.shape[0], -1))
        return F.conv2d(x, w / sigma, self.bias, stride=self.stride, padding=self.padding)


class SnLinear(BurnLinear):
    def forward(self, x):
        return x @ (self.weight / spectral_norm(self.weight)) + self.bias


class ImageDiscriminator(nn.Module):
    """A 3×3 stem, stride-2 4×4 convolutions down to 4×4, a minibatch standard-deviation
    channel, a 3×3 convolution and a linear layer to one logit; all spectrally normalised."""

    def __init__(self, size, width, channels=3):
        super().__init__()

        def at(side):
            return min(width * size // side, 8 * width)

        self.stem = SnConv(channels, at(size), 3, 1, 1)
        downs, side = [], size
        while side > 4:
            downs.append(SnConv(at(side), at(side // 2), 4, 2, 1))
            side //= 2
        self.downs = nn.ModuleList(downs)
        self.base = SnConv(at(4) + 1, at(4), 3, 1, 1)
        self.head = SnLinear(at(4) * 16, 1)

    def forward(self, x):
        x = F.leaky_relu(self.stem(x), SLOPE)
        for conv in self.downs:
            x = F.leaky_relu(conv(x), SLOPE)
        b, _, h, w = x.shape
        std = (x.var(0, unbiased=False) + 1e-8).sqrt().mean()
        x = torch.cat([x, std.expand(b, 1, h, w)], 1)
        x = F.leaky_relu(self.base(x), SLOPE)
        return self.head(x.reshape(b, -1)).reshape(b, 1, 1, 1)


@torch.no_grad()
def init_he(module, generator=None):
    """The noise mode's initialisation: weights N(0, 2 / fan-in), biases 0."""
    for name, param in module.named_parameters():
        if name.endswith("weight"):
            fan_in = param.shape[0] if param.dim() == 2 else param[0].numel()
            param.normal_(0.0, (2.0 / fan_in) ** 0.5, generator=generator)
        else:
            param.zero_()
    return module
