"""Benchmark `cat12 predict` against a naive loop and against the machine's limit.

    python bench/predict.py [TEST] [--img-size 224] [--repeats 3]

TEST is a test zip or folder (default: the 240 test images of `make_sample(tmp, 'full')`, about a minute to write).
Prints, from one run:
- naive: PIL per image, full decode, torchvision eval transform, batch 1, NCHW, default allocator;
- cat12: `cat12 predict` (`cat12.cli.main`), end to end: load the checkpoint, decode, predict, write result.csv;
- limit: the best measured fp32 GEMM FLOP/s (before and after) divided by ResNet50's 8.2 GFLOP per 224 px image (scaled by (size/224)^2).
Each measurement runs in its own fresh process (the allocator setting is process-wide); the model is an untrained
create_model(12, pretrained=False) saved as a cat12 checkpoint (no ImageNet weights needed). The naive and cat12
runs alternate, and medians are reported, because the CPU may be shared. Import time is not counted in either.
"""
import argparse, json, statistics, subprocess, sys, tempfile, time
from pathlib import Path

GFLOP_224 = 8.2   # ResNet50 forward pass at 224 x 224, in GFLOP (4.1 G multiply-adds)

def gemm_flops(n: int = 2048, reps: int = 7) -> float:
    "The best fp32 matrix-multiply speed of this process, in FLOP/s (all torch threads)."
    import torch
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b; best = float('inf')
    for _ in range(reps):
        t = time.perf_counter(); a @ b; best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best

def naive(ckpt: str, test: str, out: str) -> int:
    "The loop most people write first: one image at a time through PIL and torchvision, NCHW, batch 1."
    import torch
    from torchvision.transforms import v2
    from cat12.images import load_rgb
    from cat12.predict import list_images, load_model
    model = load_model(ckpt); m = model.meta
    tfm = v2.Compose([v2.Resize(round(m['img_size'] / 0.875), antialias=True), v2.CenterCrop(m['img_size']),
                      v2.ToDtype(torch.float32, scale=True), v2.Normalize(m['mean'], m['std'])])
    lines = []
    with torch.inference_mode():
        for name, src in list_images(test):
            x = tfm(v2.functional.pil_to_tensor(load_rgb(src)))[None]
            lines.append(f'{name},{int(model(x).argmax(1))}\n')
    Path(out).write_text(''.join(lines))
    return len(lines)

def worker(mode: str, ckpt: str, test: str, out: str):
    "Run one measurement in this (fresh) process and print it as JSON."
    import torch  # imported before the clock starts, in every mode
    import cat12.cli, cat12.predict
    t = time.perf_counter()
    if mode == 'gemm': r = dict(flops=gemm_flops())
    elif mode == 'naive': r = dict(n=naive(ckpt, test, out))
    elif mode == 'cat12':
        rc = cat12.cli.main(['predict', ckpt, test, '--out', out])
        assert rc == 0, rc
        r = dict(n=len(Path(out).read_text().splitlines()))
    r.update(seconds=time.perf_counter() - t, threads=torch.get_num_threads())
    print('RESULT ' + json.dumps(r))

def measure(mode: str, *args) -> dict:
    p = subprocess.run([sys.executable, __file__, '--worker', mode, *map(str, args)], capture_output=True, text=True)
    line = [l for l in p.stdout.splitlines() if l.startswith('RESULT ')]
    if p.returncode or not line: sys.exit(f'{mode} failed:\n{p.stdout}\n{p.stderr}')
    return json.loads(line[-1][7:])

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('test', nargs='?', help='test zip or folder (default: the full generated sample)')
    ap.add_argument('--img-size', type=int, default=224)
    ap.add_argument('--repeats', type=int, default=3, help='alternating naive / cat12 runs (default: 3)')
    ap.add_argument('--worker', nargs=4, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker: return worker(*a.worker)
    from cat12.data import IMAGENET_MEAN, IMAGENET_STD
    from cat12.learner import save_checkpoint
    from cat12.model import create_model
    from cat12.sample import make_sample
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        test = a.test
        if test is None:
            print('writing the full generated sample (about a minute) ...', flush=True)
            test = make_sample(tmp/'data', 'full')/'cat_12_test.zip'
        ckpt = tmp/'model.pth'
        save_checkpoint(ckpt, create_model(12, pretrained=False), dict(
            arch='resnet50', classes=[f'{i:02d}' for i in range(12)], img_size=a.img_size,
            mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD)))
        gemm, rate = [], {'naive': [], 'cat12': []}
        gemm.append(measure('gemm', ckpt, test, tmp/'x'))
        for r in range(a.repeats):
            for mode in rate:
                m = measure(mode, ckpt, test, tmp/f'{mode}.csv')
                rate[mode].append(m['n'] / m['seconds'])
                print(f"  {mode:6} run {r + 1}: {m['n']} images in {m['seconds']:.1f} s = {rate[mode][-1]:.2f} img/s "
                      f"({m['threads']} threads)", flush=True)
        gemm.append(measure('gemm', ckpt, test, tmp/'x'))
        naive_l = dict(l.split(',') for l in (tmp/'naive.csv').read_text().splitlines())
        cat_l = dict(l.split(',') for l in (tmp/'cat12.csv').read_text().splitlines())
        agree = sum(naive_l[k] == cat_l.get(k) for k in naive_l) / len(naive_l)
    flops = max(g['flops'] for g in gemm)  # a limit: the best measured (a shared CPU only lowers it)
    limit = flops / (GFLOP_224 * 1e9 * (a.img_size / 224) ** 2)
    nv, ct = statistics.median(rate['naive']), statistics.median(rate['cat12'])
    print(f"\n{len(naive_l)} images at {a.img_size} px, medians of {a.repeats} alternating runs:")
    each = ', '.join(f"{g['flops'] / 1e9:.1f}" for g in gemm)
    print(f"  GEMM fp32:      {flops / 1e9:6.1f} GFLOP/s (best of before, after: {each})")
    print(f"  limit:          {limit:6.2f} img/s  (GEMM / {GFLOP_224 * (a.img_size / 224) ** 2:.2f} GFLOP per image)")
    print(f"  naive loop:     {nv:6.2f} img/s  = {nv / limit:.0%} of the limit")
    print(f"  cat12 predict:  {ct:6.2f} img/s  = {ct / limit:.0%} of the limit, {ct / nv:.2f}x the naive loop")
    print(f"  labels agreeing between the two (untrained model, different resizers): {agree:.0%}")

if __name__ == '__main__': main()
