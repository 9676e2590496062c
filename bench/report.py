"""Turn bench/run's measurements (bench/out/*.json, *.jsonl, hot_paths.txt) into bench/RESULTS.md.

  python bench/report.py bench/out > bench/RESULTS.md

GPU figures come from bench/gpu-run on a machine with a GPU; their JSON is kept in bench/gpu/ and
reported here when present, with the machine and date they were measured on.
"""

import datetime
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

OUT = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/out")
GPU = Path(os.environ.get("GPU_DIR") or Path(__file__).with_name("gpu"))


def read(name):
    path = OUT / name
    return json.loads(path.read_text()) if path.exists() else None


def median(values):
    """The median of a list of numbers (None for none)."""
    values = sorted(values)
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def rounds_median(runs):
    """Training runs measured in rounds (a line per case per round): a line per case, in first-seen
    order, with the median steps/s."""
    cases = {}
    for run in runs:
        cases.setdefault((run["mode"], run["preset"], run["side"]), []).append(run)
    return [dict(same[0], steps_per_s=median([r["steps_per_s"] for r in same])) for same in cases.values()]


def lines(name, folder=OUT):
    path = folder / name
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def command(*args):
    try:
        return subprocess.run(args, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def cpu_model():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def memory_gib():
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            return int(line.split()[1]) / 2**20
    return 0


def lock_version(crate):
    text = Path("Cargo.lock").read_text()
    match = re.search(rf'name = "{re.escape(crate)}"\nversion = "([^"]+)"', text)
    return match.group(1) if match else "?"


def npm_version(package):
    path = Path("node_modules", package, "package.json")
    return json.loads(path.read_text())["version"] if path.exists() else "?"


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(out)


def ms(value):
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def ratio(ours, theirs):
    """Our time over theirs: below 1.0 we are faster."""
    return f"**{ours / theirs:.2f}×**" if ours and theirs else "–"


def main():
    print("# Benchmark results\n")
    print(
        "Written by `bench/run` (see bench/README.md): every figure below was measured in that one run, "
        "on the machine named here. Ratios are our time ÷ the other's time: **below 1.0 we are faster**.\n"
    )
    roof = read("roof.json") or {}
    threads = roof.get("threads", os.cpu_count())
    torch_version = roof.get("torch", "?")
    web = read("web.json") or {}
    ort = read("ort.json") or {}
    print(
        table(
            ["", ""],
            [
                ["date", datetime.date.today().isoformat()],
                ["machine", f"{cpu_model()}, {os.cpu_count()} cores, {memory_gib():.0f} GiB, no GPU"],
                ["OS", f"{platform.system()} {platform.release()}"],
                ["Rust", command("rustc", "--version")],
                ["Burn", f"{lock_version('burn')} (flex and ndarray CPU backends)"],
                ["our CPU path", f"src/engine/cpu/: natively matrix products by gemm {lock_version('gemm')}; in the browser direct convolutions (direct.rs)"],
                ["PyTorch", f"{torch_version} on the CPU, {threads} threads, convolutions via {roof.get('conv', '?')}"],
                ["numpy", f"{roof.get('numpy', '?')} ({roof.get('numpy_blas', '?')})"],
                ["Chromium", web.get("chromium", "?")],
                ["ONNX Runtime Web", f"{ort.get('ort_version', npm_version('onnxruntime-web'))} (wasm backend)"],
            ],
        )
    )

    print("\n## Correctness anchor: Burn and the PyTorch reference on the same weights\n")
    print(
        "`portraitist export --format safetensors` writes each generator's weights; `bench/reference` "
        "rebuilds the network in PyTorch, loads them and runs the photo Burn ran (256², the astronaut). "
        "Our own CPU path (what the stylizer runs on the CPU, native and in the browser) is checked against the "
        "same reference. The bench stops if the outputs (in [-1, 1]) differ by more than the tolerance.\n"
    )
    rows = []
    for check in lines("check.jsonl"):
        name = Path(check["weights"]).stem
        config = check["config"]
        shape = f"width {config['width']}, {config['blocks']} blocks" + (", input skip" if config.get("input_skip") else "")
        cpu = check.get("cpu_max_abs_diff")
        rows.append([name, shape, f"{check['max_abs_diff']:.2e}", f"{check['mean_abs_diff']:.2e}",
                     f"{cpu:.2e}" if cpu is not None else "–", check["tolerance"], "yes" if check["pass"] else "**NO**"])
    print(table(["weights", "generator", "Burn: max abs diff", "Burn: mean abs diff", "our CPU path: max abs diff",
                 "tolerance", "pass"], rows))

    grads_section()

    print(f"\n## Native inference, CPU, {threads} threads, batch 1\n")
    roof_gflops = roof.get("roof_gflops_per_s")
    if roof_gflops:
        sgemm = ", ".join(
            f"{r['n']}²: numpy {r['numpy_gflops_per_s']:.0f}, torch.mm {r['torch_gflops_per_s']:.0f}" for r in roof["results"]
        )
        print(f"sgemm roof (square float32 matrix products, best of {roof['best_of']}, {threads} threads): "
              f"**{roof_gflops:.0f} GFLOP/s** ({sgemm} GFLOP/s).\n")
    burn = {(r["backend"], r["preset"], r["side"]): r for name in ("infer-cpu.jsonl", "infer-flex.jsonl", "infer-ndarray.jsonl")
            for r in lines(name)}
    rows = []
    for preset in ("tiny", "small"):
        torch_run = read(f"infer-torch-{preset}.json")
        if not torch_run:
            continue
        for result in torch_run["results"]:
            side, gflop, torch_ms = result["side"], result["gflop"], result["ms_median"]
            ours = burn.get(("cpu", preset, side), {}).get("ms_median")
            flex = burn.get(("flex", preset, side), {}).get("ms_median")
            ndarray = burn.get(("ndarray", preset, side), {}).get("ms_median")

            def rate(t):
                return f"{gflop / (t / 1e3):.1f} ({gflop / (t / 1e3) / roof_gflops:.0%})" if t and roof_gflops else "–"

            rows.append([
                preset, f"{side}²", f"{gflop:.1f}", ms(ours) if ours else "–", ms(flex) if flex else "–",
                ms(ndarray) if ndarray else "–", ms(torch_ms),
                ratio(ours, torch_ms), ratio(flex, torch_ms), ratio(ndarray, torch_ms),
                rate(ours), rate(flex),
                f"{result['gflops_per_s']:.1f} ({result['gflops_per_s'] / roof_gflops:.0%})" if roof_gflops else "–",
            ])
    print(table(["preset", "side", "GFLOP", "our CPU path ms", "Burn flex ms", "Burn ndarray ms", "PyTorch ms",
                 "ours ÷ PyTorch", "flex ÷ PyTorch", "ndarray ÷ PyTorch", "ours GFLOP/s (% roof)",
                 "flex GFLOP/s (% roof)", "PyTorch GFLOP/s (% roof)"], rows))
    print("\nms: median per image. GFLOP counts the convolutions' multiply-adds ×2 (bench/reference/models.py); "
          "instance norm, padding and upsampling are extra work on top that both sides do.")
    layers = lines("layers-cpu.jsonl")
    if layers and roof_gflops:
        first = layers[0]
        print(f"\nEach convolution of our CPU path, `{first['preset']}` at {first['side']}², timed inside a forward pass "
              f"(median of the runs; each time covers the convolution alone: its matrix products, im2col where used, bias and statistics, not the padding copy before it):\n")
        rows = []
        for layer in layers:
            rate = layer["gflop"] / (layer["ms_median"] / 1e3)
            rows.append([layer["index"], layer["layer"], f"{layer['gflop']:.2f}", f"{layer['ms_median']:.1f}",
                         f"{rate:.0f}", f"{rate / roof_gflops:.0%}"])
        total_gflop = sum(layer["gflop"] for layer in layers)
        total_ms = sum(layer["ms_median"] for layer in layers)
        rows.append(["", "all convolutions", f"{total_gflop:.2f}", f"{total_ms:.1f}",
                     f"{total_gflop / (total_ms / 1e3):.0f}", f"{total_gflop / (total_ms / 1e3) / roof_gflops:.0%}"])
        print(table(["#", "convolution", "GFLOP", "ms", "GFLOP/s", "% of roof"], rows))
    tiling = lines("tiling.jsonl")
    if len(tiling) == 2:
        whole, tiled = tiling
        print(f"\nTiling (the page's path for large photos), `{whole['preset']}` on a 1024² photo on the CPU (the stylizer, our CPU path): whole "
              f"{ms(whole['ms_median'])} ms, in 256² tiles {ms(tiled['ms_median'])} ms "
              f"(**{tiled['ms_median'] / whole['ms_median']:.2f}×**: the tiles' overlapping margins and the thumbnail's statistics).")

    # Ours and PyTorch ran in rounds taking turns (bench/run): each side's median over the rounds.
    our_runs = rounds_median(lines("train-flex.jsonl"))
    def torch_rounds(stem):
        return [r for r in [read(f"{stem}.json")] + [read(f"{stem}-r{i}.json") for i in range(1, 10)] if r]
    print(f"\n## Training steps/s, CPU, {threads} threads, batch 1\n")
    rounds = len(torch_rounds("noise-torch"))
    if rounds > 1:
        print(f"Medians of {rounds} rounds, ours and PyTorch taking turns in each.\n")
    rows = []
    burn_runs = {(r["mode"], r["preset"], r["side"]): r for r in lines("train-flex-burn.jsonl")}
    for run in our_runs:
        if run["mode"] not in ("unpaired", "paired"):
            continue
        theirs = median([t[run["mode"]]["steps_per_s"] for t in torch_rounds(f"train-torch-{run['preset']}-{run['side']}")
                         if run["mode"] in t])
        ours = run["steps_per_s"]
        burn = burn_runs.get((run["mode"], run["preset"], run["side"]), {}).get("steps_per_s")
        rows.append([run["mode"], run["preset"], f"{run['side']}²", f"{ours:.2f}",
                     f"{burn:.2f}" if burn else "–", f"{theirs:.2f}" if theirs else "–",
                     ratio(1 / ours, 1 / theirs) if theirs else "–",
                     ratio(1 / burn, 1 / theirs) if theirs and burn else "–"])
    print(table(["mode", "preset", "side", "ours steps/s (CPU path)", "Burn autodiff steps/s", "PyTorch steps/s",
                 "ours: time ÷ PyTorch", "Burn autodiff: time ÷ PyTorch"], rows))
    included = next(iter(torch_rounds("train-torch-tiny-128")), {}).get("included", {})
    if included:
        print("\nSame networks, losses and optimiser on both sides: " + "; ".join(f"{k}: {v}" for k, v in included.items())
              + ". Ours is the real trainer (`Trainer::run`, `bench_native train flex`; the reference row with "
              "`BENCH_BURN_AUTODIFF=1`): it also crops and jitters photos from disk each step.")

    noise = next((r for r in our_runs if r["mode"] == "noise"), None)
    noise_rounds = torch_rounds("noise-torch")
    noise_torch = noise_rounds[0] if noise_rounds else None
    if noise:
        burn = burn_runs.get(("noise", noise["preset"], noise["side"]), {}).get("steps_per_s")
        ours, theirs = noise["steps_per_s"], median([t["steps_per_s"] for t in noise_rounds])
        print(f"\n## The noise GAN's training step, CPU, {threads} threads, batch {noise['batch']}\n")
        print(table(["preset", "side", "ours steps/s (CPU path)", "Burn autodiff steps/s", "PyTorch steps/s",
                     "ours: time ÷ PyTorch", "Burn autodiff: time ÷ PyTorch"],
                    [[noise["preset"], f"{noise['side']}²", f"{ours:.2f}", f"{burn:.2f}" if burn else "–",
                      f"{theirs:.2f}" if theirs else "–", ratio(1 / ours, 1 / theirs) if theirs else "–",
                      ratio(1 / burn, 1 / theirs) if theirs and burn else "–"]]))
        if noise_torch:
            print(f"\nPyTorch: {noise_torch['included']}. Ours: the real trainer (`bench_native train flex`), "
                  "portraits cropped from disk each step.")

    styles_ours = OUT / "styles-ours.txt"
    if styles_ours.exists():
        print(f"\n## The styles mode's (painterly) training step, CPU, {threads} threads, batch 4\n")
        ours = {}
        for line in styles_ours.read_text().splitlines():
            m = re.match(r"Styles( \(Burn\))?\s+(\S+)\s+(\d+)\s+(\d+)\s+([\d.]+)\s+[\d.]+\s+(\S+)", line)
            if m:
                ours[(int(m.group(3)), bool(m.group(1)))] = (float(m.group(5)), m.group(6))
        rows = []
        for side in sorted({side for side, _ in ours}):
            torch_run = read(f"styles-torch-{side}.json") or {}
            theirs = torch_run.get("s_per_step")
            (fast, fast_peak), (burn, _) = ours.get((side, False), (None, "–")), ours.get((side, True), (None, "–"))
            rows.append([f"{side}²", f"{fast:.2f}" if fast else "–", f"{burn:.2f}" if burn else "–",
                         f"{theirs:.2f}" if theirs else "–", ratio(fast, theirs), ratio(burn, theirs), fast_peak,
                         f"{torch_run['peak_rss_mib']:.0f}" if "peak_rss_mib" in torch_run else "–"])
        print(table(["side", "ours s/step (CPU path)", "Burn autodiff s/step",
                     "PyTorch s/step", "ours ÷ PyTorch", "Burn autodiff ÷ PyTorch", "ours peak RSS MiB",
                     "PyTorch peak RSS MiB"], rows))
        included = (read("styles-torch-128.json") or {}).get("included")
        if included:
            print(f"\nPyTorch: {included}. Ours: the real trainer (`cargo bench --bench training -- styles`: "
                  "two styles, `tiny`, photos cropped from disk each step).")

    print("\n## Browser, headless Chromium, 512² photo, the page's default style\n")
    cpu = web.get("cpu", {})
    gpu = web.get("webgpu", {})
    rows = []
    duel = ort.get("duel")
    if duel:
        rows.append([f"ms per photo, pixels → pixels, taking turns in one browser (median of {duel['pairs']} pairs)",
                     f"{duel['ours_ms_median']:.0f} (CPU path, 1 thread)", f"{duel['ort_ms_median']:.0f} (wasm, 1 thread)",
                     f"**{duel['ratio_median']:.2f}×** (pairs {duel['ratio_min']:.2f}–{duel['ratio_max']:.2f})"])
    if cpu.get("available") and ort.get("total_ms_median"):
        label = "  the same, separate runs a minute apart (median)" if duel else "ms per photo, pixels → pixels (median)"
        rows.append([label, f"{cpu['ms_median']} (CPU path, 1 thread)",
                     f"{ort['total_ms_median']:.0f} (wasm, 1 thread)", ratio(cpu["ms_median"], ort["total_ms_median"])])
        rows.append(["  network alone (ORT `session.run`)", "", f"{ort['run_ms_median']:.0f}", ""])
        rows.append(["first run after load", "", f"{ort['first_ms']:.0f}", ""])
        if ort.get("threads2"):
            rows.append(["2 threads (cross-origin isolated page)", "not built", f"{ort['threads2']['total_ms_median']:.0f}", ""])
    if gpu.get("available"):
        rows.append(["our WebGPU path (SwiftShader: software, no GPU here)", f"{gpu['ms_median']}", "", ""])
    if web:
        rows.append(["wasm, raw / gzip -9", f"{web['wasm_bytes'] / 1e6:.2f} / {web['wasm_gzip_bytes'] / 1e6:.2f} MB",
                     "14 MB wasm (ort-wasm-simd-threaded.wasm) + JS", ""])
        rows.append([f"style pack `{web['style']}` (weights {web['weights_dtype']})", f"{web['pack_bytes'] / 1e6:.2f} MB",
                     f"{(read('onnx.json') or {}).get('bytes', 0) / 1e6:.2f} MB ONNX (f32)", ""])
        if cpu.get("first_result_ms"):
            rows.append(["navigation → first result (wasm start, style load, warm-up)", f"{cpu['first_result_ms']} ms (CPU)",
                         f"{ort.get('session_ms', 0) + ort.get('first_ms', 0):.0f} ms (session + first run)", ""])
    print(table(["", "Portraitist page", "ONNX Runtime Web", "ours ÷ ORT"], rows))
    if duel:
        print("\nThis machine's speed drifts by up to 1.5× within seconds, so the main figure takes the two pages in "
              "turn, one photo each, in the same browser (`bench/ort.mjs` with `SITE`); the ratio is the median of the "
              "pairs' ratios. The separate runs are each page's own median, taken about a minute apart.")

    hot = (OUT / "hot_paths.txt")
    if hot.exists():
        print("\n## Rust hot paths (criterion, `cargo bench --bench hot_paths`)\n")
        # Criterion prints "NAME time: [low mid high]" (a long NAME on a line of its own), then
        # "thrpt: [low mid high]"; with an earlier run on record, a "change:" block follows with
        # relative figures, which are skipped.
        rows, name, in_change = [], None, False
        for line in hot.read_text().splitlines():
            if line and not line[0].isspace() and not line.startswith(("Benchmarking", "Found", "Gnuplot", "WARNING")):
                name = line.split("time:")[0].strip() or name
                in_change = False
            if line.strip() == "change:":
                in_change = True
            values = re.search(r"(time|thrpt):\s+\[(.*)\]", line)
            if not values or not name or in_change:
                continue
            middle = " ".join(values.group(2).split()[2:4])
            if values.group(1) == "time":
                rows.append([name, middle, ""])
            elif rows:
                rows[-1][2] = middle
        print(table(["path", "time (median estimate)", "throughput"], rows))

    gpu_section()
    lavapipe_section()


def grads_section():
    results = [r for r in (read(f"grads-{case}.json") for case in ("unpaired", "paired", "styles", "noise")) if r]
    if not results:
        return
    print("\n## Correctness of the training step: our losses and gradients against PyTorch\n")
    print(
        "`bench_native grads` runs each timed training step once on our CPU path (the trainer's default on "
        "the CPU) from fixed seeds and writes every network's weights, the inputs, our losses and gradients "
        "and Burn autodiff's gradients into one SafeTensors file per step; `bench.py grads` rebuilds the "
        "networks in PyTorch from those weights and computes the same losses and gradients in float64 (the "
        "yardstick) and float32. Figures: the largest difference from float64 over each tensor's largest "
        "value, worst over every parameter of every network. Float32 rounding flips a few ReLU and "
        "leaky-ReLU inputs that lie within rounding of zero, in any float32 implementation, which moves the "
        "gradients of the layers before them by up to about 1e-2: a step passes when its losses are within "
        f"{results[0]['loss_tolerance']:g} of float64 and no network's gradients are further from it than "
        f"{results[0]['gradient_factor']}× PyTorch's or Burn's float32 gradients (at least "
        f"{results[0]['gradient_tolerance']:g}). The bench stops where one does not.\n"
    )
    rows = []
    for r in results:
        s = r["settings"]
        what = f"{s['mode']} tiny {s['size']}², batch {s['batch']}" + (f", {s['styles']} styles" if s.get("styles") else "")
        burn = r.get("burn_worst_gradient")
        rows.append([what, ", ".join(x["loss"] for x in r["losses"]), f"{r['worst_loss_relative']:.1e}",
                     f"{r['ours_worst_gradient']:.1e}", f"{r['torch_worst_gradient']:.1e}",
                     f"{burn:.1e}" if burn is not None else "–", "yes" if r["pass"] else "**NO**"])
    print(table(["step", "losses", "losses vs float64", "our gradients", "PyTorch float32", "Burn autodiff",
                 "pass"], rows))


def lavapipe_section():
    """bench/lavapipe-check: the wgpu training path on Mesa's CPU-emulated Vulkan, for correctness."""
    folder = Path(__file__).with_name("lavapipe")
    checks = [(file, lines(file, folder)) for file in ("check-wgpu.jsonl", "check-wgpu-fused.jsonl",
              "check-wgpu-no-elementwise.jsonl", "check-wgpu-f16.jsonl")]
    checks = [(file, run) for file, run in checks if run]
    if not checks:
        return
    machine = (folder / "machine.txt").read_text().splitlines() if (folder / "machine.txt").exists() else []
    print("\n## wgpu without a GPU: Mesa's lavapipe (correctness only)\n")
    print(f"`bench/lavapipe-check` on {machine[2] if len(machine) > 2 else '?'} ({'; '.join(machine[:2])}): Burn's "
          "wgpu backend on Vulkan emulated by the CPU, the same checks as on a lent GPU. Its times mean nothing; "
          "the figures say which settings compute what the CPU computes (`bench/lavapipe/`).")
    errors = [(file, (folder / file.replace('.jsonl', '.jsonl.err')).read_text().strip().splitlines())
              for file, _ in checks if (folder / file.replace('.jsonl', '.jsonl.err')).exists()]
    gpu_checks(checks)
    for file, err in errors:
        if err:
            print(f"\n`{file}` printed: `{err[-1][:200]}`")


def gpu_section():
    """bench/gpu-run's figures (bench/gpu/), where a GPU machine has been lent: inference and training
    on wgpu (Vulkan) and CUDA against PyTorch CUDA, the GPU-vs-CPU checks, and the page's WebGPU path
    under Node + Dawn."""
    machine = GPU / "gpu-machine.txt"
    if not machine.exists():
        return
    gpu_name, cpu_line, day = (machine.read_text().splitlines() + ["?", "?", "?"])[:3]
    print("\n## GPU: Burn (wgpu on Vulkan, CUDA) vs PyTorch CUDA\n")
    print(f"Measured separately with `bench/gpu-run` on {day}: {gpu_name} ({cpu_line}); the JSON is in "
          "`bench/gpu/` (our build machines have no GPU, so `bench/run` does not repeat it). Batch 1, "
          "median of the timed runs after warm-up; Burn's autotune cache was filled by a first pass.")
    parts = [line for name in ("parts-native.txt", "parts-web.txt") if (GPU / name).exists()
             for line in (GPU / name).read_text().splitlines()]
    failed = [p for p in parts if not p.endswith(" s") or " exit 0 " not in p]
    if failed:
        print("Parts of that run that did not finish cleanly (`parts-*.txt`; their `.err` files say why): "
              + "; ".join(f"`{p}`" for p in failed) + ".")
    burn = {(r["preset"], r["side"]): r for r in lines("gpu-infer-burn.jsonl", GPU)}
    readback = [r["ms_median"] - r["ms_computed_median"] for r in burn.values() if "ms_computed_median" in r]
    if readback:
        print(f"Each of Burn's runs waits for the device before the output is read back (`Device::sync`); the "
              f"read-back itself is at most {max(readback):.2f} ms of these times.")
    memory = lines("gpu-infer-memory.jsonl", GPU)
    pools = {}
    for r in memory:
        pools.setdefault(r["memory"].split()[0], {}).setdefault((r["preset"], r["side"]), []).append(r["ms_median"])
    if {"adaptive", "exclusive"} <= pools.keys():
        gaps = [abs(pools["exclusive"][k][0] / min(v) - 1) for k, v in pools["adaptive"].items() if k in pools["exclusive"]]
        print(f"wgpu's memory pool makes no difference here: with one buffer per allocation "
              f"(`BENCH_WGPU_MEMORY=exclusive`) the medians were within {100 * max(gaps):.0f} % of the adaptive "
              "pool's (`gpu-infer-memory.jsonl`).")
    print()
    # Inference: a column per Burn route that was measured, the best of them against PyTorch.
    routes = [(name, {(r["preset"], r["side"]): r for r in lines(file, GPU)})
              for name, file in (("wgpu f32", "gpu-infer-burn.jsonl"), ("wgpu f16", "gpu-infer-burn-f16.jsonl"),
                                 ("CUDA f32", "gpu-infer-cuda.jsonl"))]
    routes = [(name, runs) for name, runs in routes if runs]
    sizes = {12: "tiny", 16: "small", 64: "large"}
    rows = []
    for run in lines("gpu-infer-torch.jsonl", GPU):
        preset = sizes.get(run["config"]["width"], "?")
        for result in run["results"]:
            ours = [runs.get((preset, result["side"]), {}).get("ms_median") for _, runs in routes]
            best = min((v for v in ours if v), default=None)
            rows.append([preset, f"{result['side']}²"] + [f"{v:.1f}" if v else "–" for v in ours]
                        + [f"{result['ms_median']:.1f}", ratio(best, result["ms_median"])])
    print(table(["preset", "side"] + [f"Burn {name} ms" for name, _ in routes]
                + ["PyTorch CUDA ms", "best Burn ÷ PyTorch"], rows))

    # Training: the trainer's step on each backend; PyTorch's same networks and losses.
    trained = {name: lines(file, GPU) for name, file in (("wgpu", "gpu-train-burn.jsonl"), ("CUDA", "gpu-train-cuda.jsonl"))}
    trained = {name: runs for name, runs in trained.items() if runs or (GPU / file_err(name)).exists()}
    torch = {}
    for preset in ("tiny", "small"):
        path = GPU / f"gpu-train-torch-{preset}.json"
        if path.exists():
            run = json.loads(path.read_text())
            for mode in ("unpaired", "paired"):
                if mode in run:
                    torch[(mode, preset, run["side"])] = run[mode]["steps_per_s"]
    styles = GPU / "gpu-styles-torch.json"
    if styles.exists():
        run = json.loads(styles.read_text())
        torch[("styles", run["preset"], run["side"])] = run["steps_per_s"]
    cases = [("unpaired", "tiny", 128), ("paired", "tiny", 128), ("unpaired", "small", 256),
             ("paired", "small", 256), ("styles", "tiny", 256)]
    rows = []
    for mode, preset, side in cases:
        ours = {name: next((r for r in runs if (r["mode"], r["preset"], r["side"]) == (mode, preset, side)), None)
                for name, runs in trained.items()}
        if not any(ours.values()) and (mode, preset, side) not in torch:
            continue
        batch = next((r["batch"] for r in ours.values() if r), 8 if mode == "styles" else 1)
        rates = [r["steps_per_s"] if r else None for r in ours.values()]
        theirs = torch.get((mode, preset, side))
        best = max((v for v in rates if v), default=None)
        rows.append([mode, preset, f"{side}²", batch] + [f"{v:.2f}" if v else "not run" for v in rates]
                    + [f"{theirs:.2f}" if theirs else "–", f"{best / theirs:.2f}×" if best and theirs else "–"])
    if rows:
        print("\nTraining steps/s (the painterly styles step is the GPU issue's target: best Burn ≥ 0.8× PyTorch):\n")
        print(table(["mode", "preset", "side", "batch"] + [f"Burn {name}" for name in trained]
                    + ["PyTorch CUDA", "best Burn ÷ PyTorch (steps/s)"], rows))
    for name in trained:
        err = GPU / file_err(name)
        if err.exists() and err.read_text().strip():
            print(f"\nBurn's training on {name} printed: `{err.read_text().strip().splitlines()[-1]}`")

    cli = GPU / "stylize-cuda.txt"
    if cli.exists() and cli.read_text().strip():
        print(f"\n`portraitist stylize --backend cuda` against `--backend cpu` on the same portrait (`image_diff`): "
              f"{cli.read_text().strip().splitlines()[-1]}")

    checks = [(file, lines(file, GPU)) for file in ("check-wgpu.jsonl", "check-cuda.jsonl",
              "check-wgpu-no-elementwise.jsonl", "check-wgpu-f16.jsonl", "check-cuda-f16.jsonl")]
    checks = [(file, run) for file, run in checks if run]
    if checks:
        gpu_checks(checks)
    else:
        check_section(lines("check-fused.jsonl", GPU), lines("check-unfused.jsonl", GPU))
    webgpu_section()


def file_err(name):
    """The training part's stderr: gpu-run names it after the part (an older run wrote
    gpu-train-burn.err)."""
    stem = {"wgpu": "gpu-train-burn", "CUDA": "gpu-train-cuda"}[name]
    current = f"{stem}.jsonl.err"
    return current if (GPU / f"{stem}.jsonl").exists() or (GPU / current).exists() else f"{stem}.err"


def gpu_checks(checks):
    """One row per `bench_native check` run: the same losses and gradients on the CPU and the GPU,
    then a few steps side by side."""
    rows = []
    for file, run in checks:
        head = run[0]
        backend = head.get("backend", "?")
        number = lambda v: isinstance(v, (int, float))
        loss_lines = [r for r in run if "loss" in r]
        losses = [abs(r[backend] - r["flex"]) / abs(r["flex"]) for r in loss_lines
                  if number(r.get(backend)) and number(r.get("flex")) and r["flex"]]
        bad_losses = len(loss_lines) - len(losses)
        grad_lines = [r for r in run if "grad_of" in r]
        # A gradient with NaN or infinite values (`non_finite`), or one the GPU did not give
        # (`error`), is counted, not compared: `relative` skips NaN.
        bad_grads = sum(1 for r in grad_lines if r.get("non_finite") or "error" in r or not number(r.get("relative")))
        grads = [r["relative"] for r in grad_lines if number(r.get("scale")) and r["scale"] > 1e-4
                 and number(r.get("relative")) and not r.get("non_finite") and "error" not in r]
        steps = [r for r in run if "step" in r]
        error = next((r[f"{backend}_error"] for r in steps if f"{backend}_error" in r), None)
        drift = [r.get("worst_relative") for r in steps if "worst_relative" in r]
        drift_text = ("" if not drift else f", parameters at most {100 * max(d for d in drift if number(d)):.1f} % apart"
                      if all(number(d) for d in drift) else ", a parameter became NaN")
        fusion = "off" if head.get("unfused") else "on" + (f" without {head['fusion_removed']}" if head.get("fusion_removed") else "")
        rows.append([f"`{file}`", backend, head.get("precision", "f32"), fusion,
                     (f"{max(losses):.0e}" if losses else "–") + (f" ({bad_losses} NaN)" if bad_losses else ""),
                     (f"{100 * max(grads):.2f} %" if grads else "–")
                     + (f" ({bad_grads} NaN or missing)" if bad_grads else ""),
                     f"{len(steps) - (1 if error else 0)}" + drift_text + (f" (then: {error[:60]})" if error else "")])
    print("\n`bench_native check BACKEND 3` computes the same losses and gradients of the same networks on the "
          "CPU (flex, f32) and on the GPU, then runs the real trainer on both side by side:\n")
    print(table(["file", "backend", "precision", "fusion", "losses apart (relative, largest)",
                 "gradients apart (of each tensor's largest value)", "steps run"], rows))


def webgpu_section():
    """The page's WebGPU inference (the wasm harness of bench/dawn) on the GPU under Node + Dawn."""
    path = GPU / "dawn.json"
    if not path.exists():
        return
    run = json.loads(path.read_text())
    adapter = run.get("adapter", {})
    print(f"\n## The page's WebGPU path on the GPU (Node + Dawn)\n")
    print(f"`bench/dawn/run.mjs`: the page's wasm (`src/web/harness.rs`, the same code path as the page) on Dawn's "
          f"adapter `{adapter.get('vendor', '?')} {adapter.get('architecture', '')} {adapter.get('description', '')}`"
          f" ({run.get('backend', '?')}), style `{run.get('style', '?')}`. Against the CLI's output of the same "
          f"portrait: max difference **{run.get('max_difference_vs_cli')}** 8-bit levels. {run.get('note', '')}.\n")
    targets = {512: 30, 2048: 300}
    rows = [[f"{t['side']}²", t["runs"], f"{t['median_ms']:.1f}", f"{t['min_ms']:.1f}",
             f"≤ {targets[t['side']]} ms" if t["side"] in targets else ""] for t in run.get("timings", [])]
    print(table(["side", "runs", "median ms", "min ms", "target"], rows))
    learn_section()


def learn_section():
    """The page's "Learn a style" on the GPU (bench/dawn/learn.mjs), against the CLI's loss curve."""
    path = GPU / "dawn-learn.json"
    if not path.exists():
        return
    run = json.loads(path.read_text())
    print(f"\n`bench/dawn/learn.mjs`: \"Learn a style\" (the worker's `Lesson`, through `LearnHarness`) on the same "
          f"adapter ({run.get('backend', '?')}): {run['steps']} steps at {run['size']}², batch {run['batch']} (the "
          f"page's settings), **{run['steps_per_s']:.2f} steps/s** (median {run['median_step_ms']:.0f} ms a step "
          f"after the first, which took {run['first_step_ms']:.0f} ms with its shaders' compilation; the lesson "
          f"opened in {run['open_ms']:.0f} ms). Against `portraitist learn` on the CPU from the same seed: worst "
          f"relative difference of any loss at any step {run['worst_relative_difference_vs_cli']:.1e} "
          f"(bound {run['tolerance']:.0e}).")


def check_section(fused, unfused):
    """`bench_native check` on the GPU, fused (before the fix) and unfused."""
    if not fused or not unfused:
        return
    backend = next((r["backend"] for r in unfused if "unfused" in r), "wgpu")
    value = lambda v: f"{v:.6f}" if isinstance(v, (int, float)) else "NaN/inf"
    losses = lambda run: {r["loss"]: (r["flex"], r.get(backend)) for r in run if "loss" in r}
    failed_at = next((r["step"] for r in fused if f"{backend}_error" in r), None)
    rows = [[name, value(cpu), value(losses(fused).get(name, (None, "–"))[1]), value(gpu)]
            for name, (cpu, gpu) in losses(unfused).items()]
    print("\nTraining runs with Burn's kernel fusion off (`train::trainer::unfused`). `bench_native check "
          f"{backend} 10` computes the same losses of the same networks on the CPU (flex) and the GPU, then "
          "trains both side by side (`bench/gpu/check-*.jsonl`):\n")
    print(table(["loss", "CPU", "GPU, fused", "GPU, unfused"], rows))
    forward = next((r for r in fused if r.get("forward") == "G(a)" and "relative" in r), None)
    if forward and forward["relative"] is not None:
        print(f"\nThe networks' outputs agree fused as well (the generator's, to {forward['relative']:.0e} of its "
              "largest value, computed fused on the training device): inference (the table above) keeps fusion on.")
    if failed_at is not None:
        print(f"\nFused, the GPU's run stopped with NaN at step {failed_at} (that check ran with "
              "`CUBECL_AUTOTUNE_LEVEL=minimal`; with default autotuning `bench_native train` stopped at step 6 in "
              "two earlier runs).")

    def apart(step):
        """Largest relative difference of one step's losses (infinite where the GPU has none)."""
        gaps = [abs(step[backend][k] - v) / abs(v) if isinstance(step[backend].get(k), (int, float)) else float("inf")
                for k, v in step["flex"].items() if isinstance(v, (int, float)) and v != 0]
        return max(gaps, default=float("inf"))

    grads = sorted(r["relative"] for r in unfused
                   if "grad_of" in r and isinstance(r.get("scale"), (int, float)) and r["scale"] > 1e-4
                   and isinstance(r.get("relative"), (int, float)))
    ran = [r for r in unfused if "step" in r and f"{backend}_error" not in r and backend in r]
    if grads:
        print(f"\nUnfused, every gradient tensor agrees with the CPU's to {100 * grads[-1]:.1f} % of its largest value "
              f"(median {100 * grads[len(grads) // 2]:.2f} %; tensors whose largest value is under 1e-4, such as "
              "biases before a normalisation, left out).")
    if ran:
        print(f"All {len(ran)} unfused steps ran: the losses were {apart(ran[0]):.0e} apart (relative) at step 1 "
              f"and up to {100 * max(map(apart, ran)):.0f} % by step {ran[-1]['step']}, as two GAN runs drift apart "
              "from small differences.")


if __name__ == "__main__":
    main()
