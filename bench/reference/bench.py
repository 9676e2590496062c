"""PyTorch (CPU) reference for portraitist's benchmarks. Each subcommand prints one JSON object on
stdout; progress goes to stderr.

  check  --weights W.safetensors --data CHECK.safetensors   same output as Burn? (exit 1 if not)
  infer  --weights W --sizes 256,512,1024 --threads N --runs R   ms per image, GFLOP/s
  roof   --threads N                                      sgemm GFLOP/s (numpy/OpenBLAS, torch.mm)
  train  --weights W --side 128 --threads N --steps S     training steps/s, unpaired and paired
  styles --weights W --vgg19 V --side 256 --batch 4       the styles mode's (painterly) step/s
  noise  --preset tiny --side 64 --batch 16               the noise GAN's step/s
  onnx   --weights W --out model.onnx --side 512          export for ONNX Runtime (Web)

Every generator comes from a SafeTensors file written by Burn's export (`portraitist export
--format safetensors`, or `bench_native weights`): its metadata holds the layer table the network
is built from (models.py).
"""

import argparse
import contextlib
import json
import os
import statistics
import sys
import time

# numpy and torch are imported inside the commands: thread counts must be in the environment
# before their BLAS and OpenMP runtimes load.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
CHECK_TOLERANCE = 1e-3


def log(message):
    print(message, file=sys.stderr, flush=True)


def timed(fn, runs, warmup):
    """Run `fn` `warmup` times, then `runs` times; return the times in seconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def torch_setup(threads):
    import torch

    if threads:
        torch.set_num_threads(threads)
    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "conv": "oneDNN" if torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled else "native",
    }


def device_name(device):
    import torch

    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def check(args):
    import torch
    from safetensors.torch import load_file

    import models

    model = models.load(args.weights)
    data = load_file(args.data)
    with torch.inference_mode():
        output = model(data["input"].float())
    expected = data["output"].float()
    if output.shape != expected.shape:
        raise SystemExit(f"output shape {list(output.shape)} differs from Burn's {list(expected.shape)}")
    diff = (output - expected).abs()
    result = {
        "weights": args.weights,
        "config": model.config,
        "shape": list(output.shape),
        "max_abs_diff": diff.max().item(),
        "mean_abs_diff": diff.mean().item(),
        "tolerance": CHECK_TOLERANCE,
    }
    result["pass"] = result["max_abs_diff"] <= CHECK_TOLERANCE
    # Our own CPU path (the stylizer's on the CPU), checked against the same reference.
    if "output_cpu" in data:
        cpu_diff = (output - data["output_cpu"].float()).abs().max().item()
        result["cpu_max_abs_diff"] = cpu_diff
        result["pass"] = result["pass"] and cpu_diff <= CHECK_TOLERANCE
    return result, 0 if result["pass"] else 1


def infer(args):
    import torch

    import models

    setup = torch_setup(args.threads)
    device = torch.device(args.device)
    model = models.load(args.weights).to(device)

    def forward(x):
        y = model(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return y

    results = []
    with torch.inference_mode():
        for side in args.sizes:
            x = (torch.rand(1, model.config["channels"], side, side) * 2 - 1).to(device)
            times = timed(lambda: forward(x), args.runs, args.warmup)
            median = statistics.median(times)
            gflop = models.generator_flops(model.layers, side, side) / 1e9
            log(f"infer {side}²: {median * 1e3:.1f} ms")
            results.append({
                "side": side,
                "ms_median": median * 1e3,
                "ms_min": min(times) * 1e3,
                "gflop": gflop,
                "gflops_per_s": gflop / median,
            })
    return {
        **setup,
        "device": device_name(device),
        "weights": args.weights,
        "config": model.config,
        "parameters": sum(p.numel() for p in model.parameters()),
        "batch": 1,
        "runs": args.runs,
        "warmup": args.warmup,
        "mode": "torch.inference_mode, float32, NCHW",
        "results": results,
    }, 0


def roof(args):
    import numpy as np
    import torch

    setup = torch_setup(args.threads)
    rng = np.random.default_rng(0)
    results = []
    for n in args.sizes:
        a = rng.standard_normal((n, n), dtype=np.float32)
        b = rng.standard_normal((n, n), dtype=np.float32)
        out = np.empty((n, n), dtype=np.float32)
        numpy_best = min(timed(lambda: np.matmul(a, b, out=out), args.runs, 1))
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        tout = torch.empty(n, n)
        torch_best = min(timed(lambda: torch.mm(ta, tb, out=tout), args.runs, 1))
        flop = 2 * n**3
        log(f"sgemm {n}: numpy {flop / numpy_best / 1e9:.1f}, torch {flop / torch_best / 1e9:.1f} GFLOP/s")
        results.append({
            "n": n,
            "numpy_gflops_per_s": flop / numpy_best / 1e9,
            "torch_gflops_per_s": flop / torch_best / 1e9,
        })
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    return {
        **setup,
        "numpy": np.__version__,
        "numpy_blas": f'{blas["name"]} {blas.get("version", "")}'.strip(),
        "torch_blas": "MKL" if torch.backends.mkl.is_available() else "other",
        "best_of": args.runs,
        "results": results,
        "roof_gflops_per_s": max(max(r["numpy_gflops_per_s"], r["torch_gflops_per_s"]) for r in results),
    }, 0


def train(args):
    import torch

    import models

    setup = torch_setup(args.threads)
    device = torch.device(args.device)
    name = os.path.splitext(os.path.basename(args.weights))[0]
    # TrainConfig::default() (src/train/config.rs) for the unpaired and paired modes.
    defaults = {
        "adversarial": "lsgan",
        "cycle_weight": 10.0,
        "identity_weight": 0.5,
        "l1_weight": 100.0,
        "perceptual_weight": 0.0,
        "style_weight": 0.0,
        "learning_rate": 2e-4,
        "betas": [0.5, 0.999],
        "adam_epsilon": 1e-8,
        "discriminator_width": 32,
        "discriminator_layers": 3,
    }
    seed = torch.Generator().manual_seed(1)

    def generator():
        # The file's network and weights (Burn's, from a fixed seed).
        return models.load(args.weights).train().to(device)

    def discriminator(channels):
        return models.init_weights(
            models.Discriminator(defaults["discriminator_width"], defaults["discriminator_layers"], channels),
            seed,
        ).to(device)

    def adam(module):
        return torch.optim.Adam(
            module.parameters(),
            lr=defaults["learning_rate"],
            betas=tuple(defaults["betas"]),
            eps=defaults["adam_epsilon"],
        )

    def lsgan(scores, real):
        return (scores - (1.0 if real else 0.0)).square().mean()

    def l1(a, b):
        return (a - b).abs().mean()

    def batch():
        return [(torch.rand(1, 3, args.side, args.side) * 2 - 1).to(device) for _ in range(2)]

    # Unpaired (CycleGAN), as `transfer_step` in src/train/trainer.rs: g: content → style,
    # f: back, d judges the style domain, d_content the content domain. As in ours, the
    # generators' backward pass also computes (then drops) the discriminators' gradients.
    g, f, d, d_content = generator(), generator(), discriminator(3), discriminator(3)
    opt_g, opt_f, opt_d, opt_dc = adam(g), adam(f), adam(d), adam(d_content)
    nets = [g, f, d, d_content]

    def unpaired_step():
        a, b = batch()
        for net in nets:
            net.zero_grad(set_to_none=True)
        fake_b, fake_a = g(a), f(b)
        g_adv = lsgan(d(fake_b), True)
        f_adv = lsgan(d_content(fake_a), True)
        cycle = l1(f(fake_b), a) + l1(g(fake_a), b)
        identity = l1(g(b), b) + l1(f(a), a)
        weight = defaults["cycle_weight"]
        loss = g_adv + f_adv + cycle * weight + identity * (weight * defaults["identity_weight"])
        loss.backward()
        opt_g.step()
        opt_f.step()
        for net in nets:
            net.zero_grad(set_to_none=True)
        d_style = (lsgan(d(b), True) + lsgan(d(fake_b.detach()), False)) * 0.5
        d_cont = (lsgan(d_content(a), True) + lsgan(d_content(fake_a.detach()), False)) * 0.5
        (d_style + d_cont).backward()
        opt_d.step()
        opt_dc.step()
        # Ours reads the losses back every step.
        return torch.stack([g_adv, f_adv, cycle, identity, d_style, d_cont]).tolist()

    # Paired (pix2pix): the discriminator judges (before, after) pairs; L1 to the target.
    pg, pd = generator(), discriminator(6)
    opt_pg, opt_pd = adam(pg), adam(pd)

    def paired_step():
        before, after = batch()
        pg.zero_grad(set_to_none=True)
        pd.zero_grad(set_to_none=True)
        fake = pg(before)
        g_adv = lsgan(pd(torch.cat([before, fake], 1)), True)
        l1_loss = l1(fake, after)
        (g_adv + l1_loss * defaults["l1_weight"]).backward()
        opt_pg.step()
        pd.zero_grad(set_to_none=True)
        d_loss = (
            lsgan(pd(torch.cat([before, after], 1)), True)
            + lsgan(pd(torch.cat([before, fake.detach()], 1)), False)
        ) * 0.5
        d_loss.backward()
        opt_pd.step()
        return torch.stack([g_adv, l1_loss, d_loss]).tolist()

    results = {}
    for mode, step in (("unpaired", unpaired_step), ("paired", paired_step)):
        times = timed(step, args.steps, args.warmup)
        per_step = sum(times) / len(times)
        log(f"train {mode} {name} {args.side}²: {1 / per_step:.2f} steps/s")
        results[mode] = {
            "s_per_step": per_step,
            "steps_per_s": 1 / per_step,
            "s_per_step_median": statistics.median(times),
        }
    return {
        **setup,
        "device": device_name(device),
        "preset": name,
        "side": args.side,
        "batch": 1,
        "steps": args.steps,
        "warmup": args.warmup,
        "losses": defaults,
        "included": {
            "unpaired": "2 generators + 2 PatchGANs; LSGAN adversarial, cycle L1 ×10, identity L1 ×5; "
            "no VGG (perceptual and style weights are 0 by default); Adam on all four",
            "paired": "1 generator + PatchGAN on 6 channels; LSGAN adversarial, L1 ×100; Adam on both",
            "data": "random tensors in [-1, 1] (no image cropping or colour jitter)",
        },
        **results,
    }, 0


def styles(args):
    """The styles mode's step (`styles_step` in src/learn/step.rs): the generator, VGG19 content
    (relu3_1, relu4_1) and Gram (relu1_1…relu4_1) relative distances to the photo and to each
    sample's style target, total variation, and a PatchGAN with one head per style (LSGAN), both
    trained by Adam. Default weights of the styles mode (src/learn/config.rs)."""
    import torch
    import torch.nn.functional as F

    import models

    setup = torch_setup(args.threads)
    device = torch.device(args.device)
    name = os.path.splitext(os.path.basename(args.weights))[0]
    weights = {"content": 1.0, "style": 3.0, "adversarial": 0.05, "tv": 0.3}
    seed = torch.Generator().manual_seed(1)
    # A multi-style generator (conditional instance norm, as ours in the styles mode).
    g = models.load(args.weights, styles=args.styles).train().to(device)
    d = models.init_weights(models.Discriminator(32, 3, 3, heads=args.styles), seed).to(device)
    vgg = models.Vgg19(args.vgg19).to(device)
    opt_g = torch.optim.Adam(g.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    opt_d = torch.optim.Adam(d.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    b, side = args.batch, args.side

    def rand(*shape):
        return (torch.rand(*shape, generator=seed) * 2 - 1).to(device)

    # Each style's fixed target Gram matrices (ours: the mean of 16 crops; here: of one).
    with torch.no_grad():
        targets = [[models.gram(f) for f in vgg(rand(1, 3, side, side))] for _ in range(args.styles)]
    tables = [torch.cat([t[l] for t in targets]).reshape(args.styles, -1) for l in range(4)]

    def heads(scores, mix):
        return (scores * mix.reshape(b, args.styles, 1, 1)).sum(1, keepdim=True)

    def lsgan(scores, real):
        return (scores - (1.0 if real else 0.0)).square().mean()

    def per_sample(x):
        return x.flatten(1).sum(1)

    def step():
        photo, style = rand(b, 3, side, side), rand(b, 3, side, side)
        chosen = torch.randint(args.styles, (b,), generator=seed)
        mix = F.one_hot(chosen, args.styles).float().to(device)
        opt_g.zero_grad(set_to_none=True)
        d.zero_grad(set_to_none=True)
        fake = g(photo, mix)
        out = vgg(fake)
        with torch.no_grad():
            target = vgg(photo)
        content = sum(
            (per_sample((out[l] - target[l]).square()) / (per_sample(target[l].square()) + 1e-6)).mean()
            for l in (2, 3)
        )
        style_loss = 0
        for l, o in enumerate(out):
            gm = models.gram(o)
            c = gm.shape[1]
            t = (mix @ tables[l]).reshape(b, c, c)
            style_loss = style_loss + (per_sample((gm - t).square()) / (per_sample(t.square()) + 1e-12)).mean()
        tv = (fake[:, :, 1:] - fake[:, :, :-1]).abs().mean() + (fake[..., 1:] - fake[..., :-1]).abs().mean()
        g_adv = lsgan(heads(d(fake), mix), True)
        loss = (g_adv * weights["adversarial"] + content * weights["content"]
                + style_loss * weights["style"] + tv * weights["tv"])
        loss.backward()
        opt_g.step()
        d.zero_grad(set_to_none=True)
        d_loss = (lsgan(heads(d(style), mix), True) + lsgan(heads(d(fake.detach()), mix), False)) * 0.5
        d_loss.backward()
        opt_d.step()
        return torch.stack([g_adv, d_loss, content, style_loss, tv]).tolist()

    import resource

    times = timed(step, args.steps, args.warmup)
    per_step = sum(times) / len(times)
    log(f"styles {name} {side}² batch {b}: {per_step:.3f} s/step")
    return {
        **setup,
        "device": device_name(device),
        "preset": name,
        "side": side,
        "batch": b,
        "styles": args.styles,
        "steps": args.steps,
        "warmup": args.warmup,
        "weights": weights,
        "s_per_step": per_step,
        "steps_per_s": 1 / per_step,
        "s_per_step_median": statistics.median(times),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "included": "generator, VGG19 to relu4_1 on output and photo (content relu3_1+relu4_1, Gram "
        "relu1_1..relu4_1, relative), TV, PatchGAN with a head per style (LSGAN), Adam on both; "
        "random tensors as data; the generator's norms conditional on the sample's style",
    }, 0


def noise(args):
    """The noise GAN's step (`noise_step` in src/learn/step.rs) at the noise mode's defaults
    (src/learn/config.rs): the discriminator learns real (random tensors here) from generated,
    then the generator learns to fool it on fresh noise (non-saturating BCE) plus the mode-seeking
    term; Adam (lr 2e-4, betas 0.5/0.999) on both; the moving average follows the generator."""
    import copy

    import torch
    import torch.nn.functional as F

    import models

    setup = torch_setup(args.threads)
    device = torch.device(args.device)
    seed = torch.Generator().manual_seed(1)
    width = {"tiny": 16, "small": 32, "large": 64}[args.preset]
    g = models.init_he(models.LatentGenerator(args.latent, args.side, width), seed).to(device)
    d = models.init_he(models.ImageDiscriminator(args.side, 16), seed).to(device)
    ema = copy.deepcopy(g).requires_grad_(False)
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999), eps=1e-8)
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999), eps=1e-8)
    b = args.batch
    step_number = [0]

    def z():
        return torch.randn(b, args.latent, generator=seed).to(device)

    def step():
        real = (torch.rand(b, 3, args.side, args.side, generator=seed) * 2 - 1).to(device)
        with torch.no_grad():
            fake = g(z())
        d.requires_grad_(True)
        opt_d.zero_grad(set_to_none=True)
        real_scores, fake_scores = d(real), d(fake)
        d_loss = F.softplus(-real_scores).mean() + F.softplus(fake_scores).mean()
        d_loss.backward()
        opt_d.step()
        # The generator's step: gradients through the discriminator to the image, not into it.
        d.requires_grad_(False)
        opt_g.zero_grad(set_to_none=True)
        noise = z()
        fake = g(noise)
        g_adv = F.softplus(-d(fake)).mean()
        half = b // 2
        seeking = 1 / ((fake[:half] - fake[half:2 * half]).abs().mean()
                       / (noise[:half] - noise[half:2 * half]).abs().mean() + 1e-5)
        (g_adv + seeking).backward()
        opt_g.step()
        decay = min(0.999, (1 + step_number[0]) / (10 + step_number[0]))
        step_number[0] += 1
        with torch.no_grad():
            for a, p in zip(ema.parameters(), g.parameters()):
                a.mul_(decay).add_(p, alpha=1 - decay)
        return torch.stack([g_adv, d_loss, real_scores.mean(), fake_scores.mean(), seeking]).tolist()

    import resource

    times = timed(step, args.steps, args.warmup)
    per_step = sum(times) / len(times)
    log(f"noise {args.preset} {args.side}² batch {b}: {per_step:.3f} s/step")
    return {
        **setup,
        "device": device_name(device),
        "preset": args.preset,
        "side": args.side,
        "batch": b,
        "latent": args.latent,
        "steps": args.steps,
        "warmup": args.warmup,
        "s_per_step": per_step,
        "steps_per_s": 1 / per_step,
        "s_per_step_median": statistics.median(times),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "included": "latent generator + spectrally normalised whole-image discriminator (minibatch "
        "stddev), BCE, mode seeking, Adam on both, moving average; random tensors as real portraits",
    }, 0


# `grads`: our losses within LOSS_TOLERANCE of PyTorch's in float64 (relative); each network's
# gradients (largest difference over the tensor's largest value) no further from float64 than
# GRADS_FACTOR times the float32 autodiffs' (PyTorch's, Burn's) own results are, or
# GRADS_TOLERANCE where that is larger. Float32 rounding puts a few ReLU and leaky-ReLU inputs
# that lie within rounding of zero on the other side, in any float32 implementation, and each
# such flip moves the gradients of the layers before it by up to 1e-2 of their largest value:
# the float32 results' distance from float64 is set by those flips, which fall where rounding
# puts them (bench/HISTORY.md, 2026-12-07 third session, traces two to single units).
LOSS_TOLERANCE = 1e-5
GRADS_TOLERANCE = 1e-4
GRADS_FACTOR = 3


def grads(args):
    """Our CPU training path's losses and gradients (`bench_native grads`: weights, inputs, our
    losses and gradients, and Burn autodiff's gradients, in one SafeTensors file per case) against
    PyTorch's autograd on the same weights and inputs, every loss and every parameter of every
    network. The yardstick is PyTorch in float64; PyTorch's and Burn's float32 results are
    measured against it too, so that a difference shows as ours or as float32 rounding. A
    tensor's difference is its largest absolute difference over its largest gradient (or a tenth
    of its network's largest, for gradients that are zero in exact arithmetic, such as a bias
    before a norm)."""
    import torch
    import torch.nn.functional as F
    from safetensors import safe_open

    import models

    torch_setup(args.threads)
    torch.manual_seed(0)
    with safe_open(args.data, framework="pt") as f:
        meta = {k: json.loads(v) for k, v in (f.metadata() or {}).items()}
        t = {k: f.get_tensor(k).float() for k in f.keys()}
    tensors = t
    case, s = meta["case"], meta["settings"]
    kind = s["adversarial"]

    def state(net):
        prefix = f"w.{net}."
        return {k[len(prefix):]: v for k, v in t.items() if k.startswith(prefix)}

    def load(module, net):
        module.load_state_dict(state(net), strict=True)
        return module.to(dtype_now[0])

    def generator(net, styles=0):
        return load(models.Generator(meta["layers"], styles=styles), net)

    def discriminator(net, channels, heads=1):
        return load(models.Discriminator(s["discriminator_width"], s["discriminator_layers"], channels, heads), net)

    def adversarial(scores, real):
        if kind == "lsgan":
            return (scores - (1.0 if real else 0.0)).square().mean()
        if kind == "bce":
            return F.softplus(-scores if real else scores).mean()
        return F.relu(1 - scores if real else 1 + scores).mean()

    def maker_adversarial(scores):
        return -scores.mean() if kind == "hinge" else adversarial(scores, True)

    def l1(a, b):
        return (a - b).abs().mean()

    def frozen(module):
        for p in module.parameters():
            p.requires_grad_(False)
        return module

    def thawed(module):
        for p in module.parameters():
            p.requires_grad_(True)
        return module

    dtype_now = [torch.float32]

    def compute(dtype):
        """The losses and gradients in `dtype` (float32 as ours; float64 as the yardstick)."""
        dtype_now[0] = dtype
        t = {k: v.to(dtype) for k, v in tensors.items()}
        losses, grad_of = {}, {}

        def keep(net, module):
            for name, p in module.named_parameters():
                grad_of[f"{net}.{name}"] = p.grad.clone() if p.grad is not None else torch.zeros_like(p)
            module.zero_grad(set_to_none=True)

        if case == "unpaired":
            g, f_, d, dc = generator("G"), generator("F"), discriminator("D", 3), discriminator("Dc", 3)
            a, b = t["in.a"], t["in.b"]
            frozen(d), frozen(dc)
            fake_b, fake_a = g(a), f_(b)
            losses["g_adv"] = maker_adversarial(d(fake_b))
            losses["f_adv"] = maker_adversarial(dc(fake_a))
            losses["cycle"] = l1(f_(fake_b), a) + l1(g(fake_a), b)
            losses["identity"] = l1(g(b), b) + l1(f_(a), a)
            w = s["cycle_weight"]
            (losses["g_adv"] + losses["f_adv"] + losses["cycle"] * w
             + losses["identity"] * (w * s["identity_weight"])).backward()
            keep("G", g), keep("F", f_)
            thawed(d), thawed(dc)
            losses["d_style"] = (adversarial(d(b), True) + adversarial(d(fake_b.detach()), False)) * 0.5
            losses["d_content"] = (adversarial(dc(a), True) + adversarial(dc(fake_a.detach()), False)) * 0.5
            (losses["d_style"] + losses["d_content"]).backward()
            keep("D", d), keep("Dc", dc)
        elif case == "paired":
            g, d = generator("G"), discriminator("D", 6)
            before, after = t["in.a"], t["in.b"]
            frozen(d)
            fake = g(before)
            losses["g_adv"] = maker_adversarial(d(torch.cat([before, fake], 1)))
            losses["l1"] = l1(fake, after)
            (losses["g_adv"] + losses["l1"] * s["l1_weight"]).backward()
            keep("G", g)
            thawed(d)
            losses["d"] = (adversarial(d(torch.cat([before, after], 1)), True)
                           + adversarial(d(torch.cat([before, fake.detach()], 1)), False)) * 0.5
            losses["d"].backward()
            keep("D", d)
        elif case == "styles":
            n = s["styles"]
            g, d = generator("G", styles=n), discriminator("D", 3, heads=n)
            vgg = models.Vgg19(args.vgg19).to(dtype)
            content, style, mix = t["in.content"], t["in.style"], t["in.mix"]
            b = content.shape[0]

            def heads(scores):
                return (scores * mix.reshape(b, n, 1, 1)).sum(1, keepdim=True)

            def per_sample(x):
                return x.flatten(1).sum(1)

            frozen(d)
            fake = g(content, mix)
            out = vgg(fake)
            with torch.no_grad():
                photo = vgg(content)
            losses["content"] = sum(
                (per_sample((out[l] - photo[l]).square()) / (per_sample(photo[l].square()) + 1e-6)).mean()
                for l in (2, 3))
            style_loss = 0
            for l, o in enumerate(out):
                gm = models.gram(o)
                c = gm.shape[1]
                target = (mix @ t[f"in.grams.{l}"].reshape(n, -1)).reshape(b, c, c)
                style_loss = style_loss + per_sample((gm - target).square()) / (per_sample(target.square()) + 1e-12)
            losses["style"] = style_loss.mean()
            losses["tv"] = (fake[:, :, 1:] - fake[:, :, :-1]).abs().mean() + (fake[..., 1:] - fake[..., :-1]).abs().mean()
            losses["g_adv"] = maker_adversarial(heads(d(fake)))
            (losses["g_adv"] * s["adversarial_weight"] + losses["content"] * s["content_weight"]
             + losses["style"] * s["style_weight"] + losses["tv"] * s["tv_weight"]).backward()
            keep("G", g)
            thawed(d)
            losses["d"] = (adversarial(heads(d(style)), True) + adversarial(heads(d(fake.detach())), False)) * 0.5
            losses["d"].backward()
            keep("D", d)
        elif case == "noise":
            gw, dw = state("G"), state("D")
            g = load(models.LatentGenerator(s["latent"], s["size"], gw["head.weight"].shape[1]), "G")
            d = load(models.ImageDiscriminator(s["size"], dw["stem.weight"].shape[0]), "D")
            real, z, z2 = t["in.real"], t["in.z"], t["in.z2"]
            with torch.no_grad():
                fake = g(z)
            real_scores, fake_scores = d(real), d(fake)
            losses["d"] = adversarial(real_scores, True) + adversarial(fake_scores, False)
            losses["d_real"], losses["d_fake"] = real_scores.mean(), fake_scores.mean()
            losses["d"].backward()
            keep("D", d)
            frozen(d)
            fake = g(z2)
            losses["g_adv"] = maker_adversarial(d(fake))
            half = fake.shape[0] // 2
            images = (fake[:half] - fake[half:2 * half]).abs().mean()
            noise = (z2[:half] - z2[half:2 * half]).abs().mean()
            losses["mode_seeking"] = 1 / (images / noise + 1e-5)
            (losses["g_adv"] + losses["mode_seeking"] * s["mode_seeking_weight"]).backward()
            keep("G", g)
        else:
            raise SystemExit(f"{args.data}: unknown case {case!r}")
        return losses, grad_of

    losses, grad_of = compute(torch.float32)
    exact_losses, exact = compute(torch.float64)

    loss_rows = []
    for name, value in exact_losses.items():
        ours = t.get(f"loss.{name}")
        if ours is None:
            raise SystemExit(f"{args.data}: our file has no loss {name!r}")
        exact_value, ours, theirs = value.item(), ours.item(), losses[name].item()
        scale = max(abs(exact_value), 1e-6)
        loss_rows.append({"loss": name, "ours": ours, "torch": theirs, "float64": exact_value,
                          "ours_relative": abs(ours - exact_value) / scale,
                          "torch_relative": abs(theirs - exact_value) / scale})
    ours_grads = {k[len("grad."):]: v.double() for k, v in t.items() if k.startswith("grad.")}
    burn_grads = {k[len("burn."):]: v.double() for k, v in t.items() if k.startswith("burn.")}
    sides = [("ours", ours_grads), ("torch", grad_of)] + ([("burn", burn_grads)] if burn_grads else [])
    missing = sorted(set(ours_grads) ^ set(exact))
    if missing:
        raise SystemExit(f"{args.data}: parameters on one side only: {missing[:6]}")
    nets = {}
    for key in exact:
        nets.setdefault(key.split(".")[0], []).append(key)
    net_rows = []
    for net, keys in nets.items():
        floor = max(exact[k].abs().max().item() for k in keys) * 0.1
        row = {"net": net, "parameters": len(keys), "values": sum(exact[k].numel() for k in keys)}
        for side, grads_of_side in sides:
            worst, worst_key, worst_norm = 0.0, None, 0.0
            for k in keys:
                got, want = grads_of_side[k].double(), exact[k]
                if got.shape != want.shape:
                    raise SystemExit(f"{args.data}: {side} {k} is {list(got.shape)}, float64 {list(want.shape)}")
                diff = (got - want).abs()
                rel = diff.max().item() / max(want.abs().max().item(), floor, 1e-30)
                worst_norm = max(worst_norm, diff.norm().item() / max(want.norm().item(), floor, 1e-30))
                if rel >= worst:
                    worst, worst_key = rel, k
            row[f"{side}_worst"] = worst
            row[f"{side}_worst_parameter"] = worst_key
            row[f"{side}_worst_norm"] = worst_norm
        net_rows.append(row)
    worst_loss = max(r["ours_relative"] for r in loss_rows)
    ours_worst = max(r["ours_worst"] for r in net_rows)
    torch_worst = max(r["torch_worst"] for r in net_rows)
    burn_worst = max(r.get("burn_worst", 0.0) for r in net_rows)
    # Pass: our losses as PyTorch's float64 ones, and no network's gradients further from float64
    # than GRADS_FACTOR × the float32 autodiffs' (PyTorch's, Burn's) own distance, or
    # GRADS_TOLERANCE where that is larger.
    bounds = [max(GRADS_FACTOR * max(r["torch_worst"], r.get("burn_worst", 0.0)), GRADS_TOLERANCE)
              for r in net_rows]
    passed = worst_loss <= LOSS_TOLERANCE and all(r["ours_worst"] <= bound for r, bound in zip(net_rows, bounds))
    result = {
        "case": case,
        "settings": s,
        "losses": loss_rows,
        "gradients": net_rows,
        "worst_loss_relative": worst_loss,
        "ours_worst_gradient": ours_worst,
        "torch_worst_gradient": torch_worst,
        "burn_worst_gradient": burn_worst if burn_grads else None,
        "loss_tolerance": LOSS_TOLERANCE,
        "gradient_tolerance": GRADS_TOLERANCE,
        "gradient_factor": GRADS_FACTOR,
        "pass": passed,
    }
    log(f"grads {case}: losses within {worst_loss:.1e} of float64; gradients within {ours_worst:.1e} "
        f"(PyTorch float32: {torch_worst:.1e}{f', Burn autodiff: {burn_worst:.1e}' if burn_grads else ''})"
        f"{'' if passed else ' FAILED'}")
    return result, 0 if result["pass"] else 1


def export_onnx(args):
    import onnx
    import torch

    import models

    model = models.load(args.weights)
    channels = model.config["channels"]
    example = torch.rand(1, channels, args.side, args.side) * 2 - 1
    dynamic = None
    if not args.static:
        # Heights and widths are multiples of 4 (two stride-2 layers).
        dynamic = {"x": {2: 4 * torch.export.Dim("h4", min=4), 3: 4 * torch.export.Dim("w4", min=4)}}
    torch.onnx.export(
        model,
        (example,),
        args.out,
        input_names=["input"],
        output_names=["output"],
        opset_version=args.opset,
        dynamic_shapes=dynamic,
        external_data=False,
    )
    onnx.checker.check_model(args.out, full_check=True)
    result = {
        "out": args.out,
        "bytes": os.path.getsize(args.out),
        "opset": args.opset,
        "dynamic_height_width": not args.static,
        "ops": sorted({node.op_type for node in onnx.load(args.out).graph.node}),
        "checker": "ok",
    }
    try:
        import onnxruntime
    except ImportError:
        return result, 0
    # Same output as torch, at the export size and (dynamic export) another one.
    session = onnxruntime.InferenceSession(args.out, providers=["CPUExecutionProvider"])
    diffs = {}
    sides = [args.side] if args.static else [args.side, args.side // 2 + 4]
    for side in sides:
        x = torch.rand(1, channels, side, side) * 2 - 1
        with torch.inference_mode():
            expected = model(x)
        (got,) = session.run(None, {"input": x.numpy()})
        diffs[str(side)] = float((torch.from_numpy(got) - expected).abs().max())
    result["onnxruntime"] = onnxruntime.__version__
    result["max_abs_diff_vs_torch"] = diffs
    failed = max(diffs.values()) > CHECK_TOLERANCE
    return result, 1 if failed else 0


def sizes(text):
    return [int(s) for s in text.split(",")]


def parse():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("check", help="compare with Burn's output on the same input")
    p.add_argument("--weights", required=True)
    p.add_argument("--data", required=True, help="SafeTensors with `input` and Burn's `output`")
    p.set_defaults(run=check, threads=None)

    p = commands.add_parser("infer", help="inference time per image, batch 1")
    p.add_argument("--weights", required=True)
    p.add_argument("--sizes", type=sizes, default=[256, 512, 1024])
    p.add_argument("--threads", type=int)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.set_defaults(run=infer)

    p = commands.add_parser("roof", help="sgemm GFLOP/s on square float32 matrices")
    p.add_argument("--threads", type=int)
    p.add_argument("--sizes", type=sizes, default=[1024, 2048])
    p.add_argument("--runs", type=int, default=5, help="best of this many")
    p.set_defaults(run=roof)

    p = commands.add_parser("train", help="training steps/s, unpaired and paired")
    p.add_argument("--weights", required=True, help="the generator (trained from these weights)")
    p.add_argument("--side", type=int, default=128)
    p.add_argument("--threads", type=int)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.set_defaults(run=train)

    p = commands.add_parser("styles", help="the styles mode's (painterly) training step/s")
    p.add_argument("--weights", required=True, help="the generator (trained from these weights)")
    p.add_argument("--vgg19", default="data/vgg19/vgg19.bin")
    p.add_argument("--side", type=int, default=256)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--styles", type=int, default=2)
    p.add_argument("--threads", type=int)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.set_defaults(run=styles)

    p = commands.add_parser("noise", help="the noise GAN's training step/s")
    p.add_argument("--preset", default="tiny", choices=["tiny", "small", "large"])
    p.add_argument("--side", type=int, default=64)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--latent", type=int, default=128)
    p.add_argument("--threads", type=int)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.set_defaults(run=noise)

    p = commands.add_parser("grads", help="our losses and gradients against PyTorch's on the same weights and inputs")
    p.add_argument("--data", required=True, help="a grads-CASE.safetensors from `bench_native grads`")
    p.add_argument("--vgg19", default="data/vgg19/vgg19.bin")
    p.add_argument("--threads", type=int)
    p.set_defaults(run=grads)

    p = commands.add_parser("onnx", help="export the generator to ONNX and verify it")
    p.add_argument("--weights", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--side", type=int, default=512)
    p.add_argument("--opset", type=int, default=18)
    p.add_argument("--static", action="store_true", help="fix the input at --side (no dynamic H/W)")
    p.set_defaults(run=export_onnx, threads=None)

    return parser.parse_args()


def main():
    args = parse()
    if args.threads:
        for variable in THREAD_VARIABLES:
            os.environ[variable] = str(args.threads)
    # Libraries print progress to stdout (torch.onnx does): keep stdout for the one JSON object.
    with contextlib.redirect_stdout(sys.stderr):
        result, code = args.run(args)
    print(json.dumps(result))
    sys.exit(code)


if __name__ == "__main__":
    main()
