"""Benchmark `cat12 predict` (torch fp32, ONNX fp32, ONNX INT8) against a naive loop and against the machine's limit.

    python bench/predict.py [--img-size 224] [--repeats 3] [--trained RUN] [--out bench/predict_results.md]

From one run, on the 240 test images of `make_sample(tmp, 'full')` (about a minute to write):
- gemm: the best fp32 matrix-multiply speed, measured before and after the other runs; the *floor* is the time
  ResNet50's 8.2 GFLOP per 224 px image take at that speed, and every path is reported as a share of it;
- naive: PIL per image, full decode, torchvision eval transform, batch 1, NCHW, default allocator;
- torch fp32, ONNX fp32, ONNX INT8: `cat12 predict MODEL TEST` (`cat12.cli.main`), end to end (load the model,
  decode, predict, write result.csv), at batch 16 (throughput, all 240 images) and batch 1 (latency, 48 images);
- peak memory (max RSS) of each process;
- time to first prediction: one image, from a shell command to its label (`cat12 predict MODEL one.jpg`), so
  Python's start and the imports count; median of 3.
Each measurement runs in a fresh process; the runs alternate (repeats x every path) and medians are reported, because
the CPU may be shared. The speed model is an untrained create_model(12) (no ImageNet weights needed); its INT8 export
is calibrated on the small sample's training images.
With --trained RUN (a folder from `cat12 run`: RUN/model.pth and RUN/work), it also exports that model, predicts the
test images at its own size with each path, and reports the accuracy on the answer key and the agreement with fp32.
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
    from cat12.data import resize_size
    model = load_model(ckpt); m = model.meta
    tfm = v2.Compose([v2.Resize(resize_size(m["img_size"]), antialias=True), v2.CenterCrop(m['img_size']),
                      v2.ToDtype(torch.float32, scale=True), v2.Normalize(m['mean'], m['std'])])
    lines = []
    with torch.inference_mode():
        for name, src in list_images(test):
            x = tfm(v2.functional.pil_to_tensor(load_rgb(src)))[None]
            lines.append(f'{name},{int(model(x).argmax(1))}\n')
    Path(out).write_text(''.join(lines))
    return len(lines)

def worker(mode: str, model: str, test: str, out: str, batch: str):
    "Run one measurement in this (fresh) process and print it as JSON."
    import torch  # imported before the clock starts, in every mode
    import cat12.cli, cat12.predict
    if model.endswith('.onnx'): import cat12.deploy, onnxruntime  # noqa: F401
    t = time.perf_counter()
    if mode == 'gemm': r = dict(flops=gemm_flops())
    elif mode == 'naive': r = dict(n=naive(model, test, out))
    else:
        rc = cat12.cli.main(['predict', model, test, '--out', out, '--batch-size', batch])
        assert rc == 0, rc
        r = dict(n=len(Path(out).read_text().splitlines()))
    hwm = next(l for l in open('/proc/self/status') if l.startswith('VmHWM'))   # this process's peak (ru_maxrss counts the parent's)
    r.update(seconds=time.perf_counter() - t, threads=torch.get_num_threads(), peak_gb=int(hwm.split()[1]) / 1e6)
    print('RESULT ' + json.dumps(r))

def measure(mode: str, model, test, out, batch=16) -> dict:
    p = subprocess.run([sys.executable, __file__, '--worker', mode, str(model), str(test), str(out), str(batch)],
                       capture_output=True, text=True)
    line = [l for l in p.stdout.splitlines() if l.startswith('RESULT ')]
    if p.returncode or not line: sys.exit(f'{mode} failed:\n{p.stdout}\n{p.stderr}')
    return json.loads(line[-1][7:])

def first_prediction(model, image, out) -> float:
    "Seconds from a shell command to the label of one image: `cat12 predict MODEL IMAGE`."
    cat12 = Path(sys.executable).parent/'cat12'
    t = time.perf_counter()
    p = subprocess.run([str(cat12), 'predict', str(model), str(image), '--out', str(out)], capture_output=True, text=True)
    dt = time.perf_counter() - t
    if p.returncode: sys.exit(f'first prediction failed:\n{p.stdout}\n{p.stderr}')
    return dt

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--img-size', type=int, default=224)
    ap.add_argument('--repeats', type=int, default=3, help='alternating runs of every path (default: 3)')
    ap.add_argument('--trained', default=None, metavar='RUN', help='also measure accuracy with this run folder (model.pth, work/)')
    ap.add_argument('--key', default=None, help="the answer key for --trained (default: RUN/../cat12-sample/test_labels.csv)")
    ap.add_argument('--out', default=None, help='also write the tables to this markdown file')
    ap.add_argument('--worker', nargs=5, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker: return worker(*a.worker)
    from cat12.data import IMAGENET_MEAN, IMAGENET_STD, prepare, resize_size
    from cat12.deploy import export_onnx
    from cat12.learner import save_checkpoint
    from cat12.model import create_model
    from cat12.predict import list_images, score
    from cat12.sample import make_sample
    lines = []
    def say(s=''): print(s, flush=True); lines.append(s)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print('writing the full generated sample (about a minute) ...', flush=True)
        data = make_sample(tmp/'data', 'full'); test = data/'cat_12_test.zip'
        few = tmp/'few'; few.mkdir()   # 48 test images as files, for batch 1 and the one-image start-up
        for name, src in list_images(test)[:48]: (few/name).write_bytes(src if isinstance(src, bytes) else Path(src).read_bytes())
        ckpt = tmp/'model.pth'
        save_checkpoint(ckpt, create_model(12, pretrained=False), dict(
            arch='resnet50', classes=[f'{i:02d}' for i in range(12)], img_size=a.img_size,
            mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD)))
        print('exporting fp32 and INT8 ONNX ...', flush=True)
        calib = prepare(make_sample(tmp/'small', 'small'), tmp/'work', cache_size=resize_size(a.img_size), progress=False)
        models = {'torch fp32': ckpt, 'ONNX fp32': tmp/'model.onnx', 'ONNX INT8': tmp/'model-int8.onnx'}
        export_onnx(ckpt, models['ONNX fp32'])
        export_onnx(ckpt, models['ONNX INT8'], int8=True, calib=84, work=calib.work)
        gemm = [measure('gemm', ckpt, test, tmp/'x')]
        runs = {('naive', 1): []} | {(k, b): [] for k in models for b in (16, 1)}
        for r in range(a.repeats):
            for (k, b) in runs:
                src = test if b == 16 else few
                m = measure('naive' if k == 'naive' else 'cli', ckpt if k == 'naive' else models[k], src if k != 'naive' else test,
                            tmp/'out.csv', b)
                runs[(k, b)].append(m)
                print(f"  {k:10} batch {b:2} run {r + 1}: {m['n']} images in {m['seconds']:.1f} s = {m['n'] / m['seconds']:.2f} img/s, "
                      f"peak {m['peak_gb']:.2f} GB ({m['threads']} threads)", flush=True)
        gemm.append(measure('gemm', ckpt, test, tmp/'x'))
        one = sorted(few.iterdir())[0]
        start = {k: statistics.median(first_prediction(models[k], one, tmp/'one.csv') for _ in range(3)) for k in models}
        acc = {}
        if a.trained:
            run = Path(a.trained)
            from cat12.data import load_prepared
            prep = load_prepared(run/'work')
            key = Path(a.key) if a.key else run.resolve().parent/'cat12-sample'/'test_labels.csv'
            tm = {'torch fp32': run/'model.pth', 'ONNX fp32': tmp/'t.onnx', 'ONNX INT8': tmp/'t-int8.onnx'}
            export_onnx(tm['torch fp32'], tm['ONNX fp32'])
            rq = export_onnx(tm['torch fp32'], tm['ONNX INT8'], int8=True, work=run/'work')
            res = {}
            for k, m in tm.items():
                measure('cli', m, prep.test, tmp/f'{k}.csv', 16)
                res[k] = dict(l.split(',') for l in (tmp/f'{k}.csv').read_text().splitlines())
                acc[k] = score(tmp/f'{k}.csv', key) if key.is_file() else float('nan')
            agree = {k: sum(res[k][n] == res['torch fp32'][n] for n in res[k]) / len(res[k]) for k in res}
    flops = max(g['flops'] for g in gemm)  # a limit: the best measured (a shared CPU only lowers it)
    limit = flops / (GFLOP_224 * 1e9 * (a.img_size / 224) ** 2)
    med = {k: statistics.median(m['n'] / m['seconds'] for m in v) for k, v in runs.items()}
    peak = {k: max(m['peak_gb'] for m in v) for k, v in runs.items()}
    nv, fp = med[('naive', 1)], med[('torch fp32', 16)]
    say(f"**Prediction at {a.img_size} px** (`bench/predict.py`; 240 test images at batch 16, 48 at batch 1; medians of "
        f"{a.repeats} alternating runs, each in a fresh process; end to end: model load, decode, predict, result.csv)")
    say()
    each = ', '.join(f"{g['flops'] / 1e9:.1f}" for g in gemm)
    say(f"fp32 GEMM: {flops / 1e9:.1f} GFLOP/s (best of before/after: {each}); "
        f"floor: {limit:.2f} img/s ({GFLOP_224 * (a.img_size / 224) ** 2:.2f} GFLOP per image)")
    say()
    say('| path | batch | img/s | share of the fp32 floor | vs naive loop | vs torch fp32 (batch 16) | peak memory, GB |')
    say('|---|---|---|---|---|---|---|')
    for (k, b), v in med.items():
        say(f"| {k} | {b} | {v:.2f} | {v / limit:.0%} | {v / nv:.2f}x | {v / fp:.2f}x | {peak[(k, b)]:.2f} |")
    say()
    say('| model | time to first prediction (one image, shell command to label), s |')
    say('|---|---|')
    for k, v in start.items(): say(f'| {k} | {v:.2f} |')
    if acc:
        say()
        say(f"**Accuracy** of `{a.trained}/model.pth` at its own size, on the sample's 240 test images (answer key); INT8 "
            f"calibrated on {rq['calib']} training images, agreeing with fp32 on {rq['agreement']:.1%} of {rq['checked']} validation images")
        say()
        say('| model | test accuracy | agreement with torch fp32 |')
        say('|---|---|---|')
        for k in acc: say(f'| {k} | {acc[k]:.4f} | {agree[k]:.1%} |')
    i8 = med[('ONNX INT8', 16)]
    say()
    say(f"Goals: INT8 at batch 16 = {i8 / nv:.2f}x the naive loop (goal >= 2.0: {'met' if i8 / nv >= 2 else 'not met'}), "
        f"{i8 / fp:.2f}x torch fp32 (goal >= 1.5: {'met' if i8 / fp >= 1.5 else 'not met'}); first prediction with ONNX "
        f"{start['ONNX INT8']:.2f} s (goal <= 3 s: {'met' if start['ONNX INT8'] <= 3 else 'not met'})"
        + (f"; INT8 accuracy {acc['ONNX INT8'] - acc['torch fp32']:+.4f} against fp32 (goal within 0.01: "
           f"{'met' if abs(acc['ONNX INT8'] - acc['torch fp32']) <= 0.01 else 'not met'})" if acc else ''))
    if a.out: Path(a.out).write_text('\n'.join(lines) + '\n')

if __name__ == '__main__': main()
