"""PyTorch mirrors of portraitist's networks, for the benchmarks' correctness anchor and timings.

The math follows `src/model/generator.rs`, `src/model/norm.rs` and `src/model/discriminator.rs`
exactly, and parameter names are Burn's module paths joined with '.', so the SafeTensors files
written by `portraitist export --format safetensors` load with `load_state_dict(strict=True)`.
"""

import json

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

EPSILON = 1e-5
# Metadata key under which Burn's export stores the generator's shape (JSON).
GENERATOR_METADATA = "portraitist.generator"
# `Preset::generator` in src/model/generator.rs.
PRESETS = {
    "tiny": {"width": 12, "blocks": 5},
    "small": {"width": 16, "blocks": 6},
    "large": {"width": 64, "blocks": 9},
}


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


class ConvNormRelu(nn.Module):
    """Reflect-pad, convolve (no padding), instance-normalise, ReLU."""

    def __init__(self, cin, cout, kernel, stride):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride)
        self.norm = StatNorm(cout)
        self.pad = kernel // 2

    def forward(self, x):
        return F.relu(self.norm(self.conv(reflect(x, self.pad))))


class ResidualBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.first = ConvNormRelu(channels, channels, 3, 1)
        self.conv = nn.Conv2d(channels, channels, 3)
        self.norm = StatNorm(channels)

    def forward(self, x):
        return x + self.norm(self.conv(reflect(self.first(x), 1)))


class Generator(nn.Module):
    """Encoder → residual blocks → nearest-upsampling decoder → tanh; input sides multiple of 4."""

    def __init__(self, width, blocks, channels=3, input_skip=None):
        super().__init__()
        self.config = {
            "width": width,
            "blocks": blocks,
            "channels": channels,
            "input_skip": input_skip,
        }
        self.input_skip = bool(input_skip)
        w = width
        self.stem = ConvNormRelu(channels, w, 7, 1)
        self.down1 = ConvNormRelu(w, 2 * w, 3, 2)
        self.down2 = ConvNormRelu(2 * w, 4 * w, 3, 2)
        self.blocks = nn.ModuleList(ResidualBlock(4 * w) for _ in range(blocks))
        self.up1 = ConvNormRelu(4 * w, 2 * w, 3, 1)
        self.up2 = ConvNormRelu(2 * w, w, 3, 1)
        self.head = nn.Conv2d(w + channels if self.input_skip else w, channels, 7)

    def forward(self, x):
        image = x
        x = self.down2(self.down1(self.stem(x)))
        for block in self.blocks:
            x = block(x)
        x = self.up1(F.interpolate(x, scale_factor=2, mode="nearest"))
        x = self.up2(F.interpolate(x, scale_factor=2, mode="nearest"))
        if self.input_skip:
            x = torch.cat([x, image], dim=1)
        return torch.tanh(self.head(reflect(x, 3)))


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

    def __init__(self, width, layers=3, channels=3):
        super().__init__()

        def width_at(layer):
            return width * (1 << min(layer, 3))

        stages = [Stage(channels, width, 2, norm=False)]
        for layer in range(1, layers + 1):
            stride = 2 if layer < layers else 1
            stages.append(Stage(width_at(layer - 1), width_at(layer), stride, norm=True))
        self.stages = nn.ModuleList(stages)
        self.head = nn.Conv2d(width_at(layers), 1, 4, padding=1)

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


def config_from_tensors(tensors):
    """Generator shape read off the weights, for files without the metadata entry."""
    stem = tensors["stem.conv.weight"]
    width, channels = stem.shape[0], stem.shape[1]
    blocks = len({name.split(".")[1] for name in tensors if name.startswith("blocks.")})
    input_skip = tensors["head.weight"].shape[1] != width
    return {
        "width": width,
        "blocks": blocks,
        "channels": channels,
        "input_skip": True if input_skip else None,
    }


def load(path):
    """The generator stored in a SafeTensors file written by Burn, in eval mode (float32)."""
    with safe_open(path, framework="pt") as f:
        metadata = f.metadata() or {}
        tensors = {name: f.get_tensor(name).float() for name in f.keys()}
    if GENERATOR_METADATA in metadata:
        config = json.loads(metadata[GENERATOR_METADATA])
    else:
        config = config_from_tensors(tensors)
    model = Generator(
        config["width"],
        config["blocks"],
        config.get("channels", 3),
        config.get("input_skip"),
    )
    model.load_state_dict(tensors, strict=True)
    return model.eval()


def save(model, path):
    """Write a generator like Burn's export does (names, float32, shape in the metadata)."""
    tensors = {name: t.detach().contiguous() for name, t in model.state_dict().items()}
    save_file(tensors, path, metadata={GENERATOR_METADATA: json.dumps(model.config)})


def generator_flops(config, height, width):
    """Forward FLOPs (2 × multiply-adds) of the generator's convolutions for one image.

    Norms, activations, padding, upsampling and biases are left out: together they are a few
    operations per activation, against tens to hundreds per activation in the convolutions.
    """
    w, c = config["width"], config["channels"]
    head_in = w + c if config.get("input_skip") else w
    full = height * width  # pixels at full resolution
    half = full // 4
    quarter = full // 16
    macs = (
        full * w * c * 7 * 7  # stem
        + half * 2 * w * w * 3 * 3  # down1 (output at half resolution)
        + quarter * 4 * w * 2 * w * 3 * 3  # down2
        + config["blocks"] * 2 * quarter * (4 * w) ** 2 * 3 * 3  # residual blocks
        + half * 2 * w * 4 * w * 3 * 3  # up1
        + full * w * 2 * w * 3 * 3  # up2
        + full * c * head_in * 7 * 7  # head
    )
    return 2 * macs
