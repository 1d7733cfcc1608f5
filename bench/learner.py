"""Benchmark of cat12.learner on the full generated sample (2160 + 240 images): the naive loop against fit's step,
and every training strategy. Run from the repository root:

    python bench/learner.py [--data DIR] [--size 64] [--epochs 2]

What it does (about 10 minutes on a 2-core CPU):
1. `make_sample(tmp, 'full')` (or --data), then `prepare` once (cache size for --size).
2. Step throughput, each in a fresh subprocess so that the allocator settings and the peak memory (maxrss) are the
   process's own: `naive` (NCHW, glibc's default malloc) and `tuned` (channels_last, `tune_malloc()`, as `fit` and
   the CLI run), ResNet50 from random weights, fp32, AdamW, batch 32, at --size and at 224 px (images from the
   cached squares, upscaled for 224). 1 warm-up step, then the median of --steps timed steps.
3. Strategies, each in a fresh tuned subprocess: `fit(..., strategy=s)` for features, partial and full at --size,
   --epochs epochs (features: 10 head epochs), ResNet50 from RANDOM weights (no ImageNet weights on this machine), and
   the choice of `auto`. The naive loop's time to the same accuracy is estimated as full's time x the step ratio at
   --size (the naive loop computes the same thing, only slower).
Results: bench/learner_results.csv (read by nbs/15_learner.ipynb) and bench/learner_results.md.
"""
from __future__ import annotations
import argparse, json, os, resource, statistics, subprocess, sys, tempfile, time
from pathlib import Path

HERE = Path(__file__).resolve().parent

def maxrss_gb() -> float:
    "Peak resident memory of this process in GB (Linux reports KiB)."
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20

def step_bench(work: str, mode: str, sizes: list[int], steps: int, bs: int = 32) -> dict:
    "Images/s of full ResNet50 training steps, `naive` or `tuned`, at each size."
    import torch, torch.nn.functional as F
    from cat12.hardware import tune_malloc
    from cat12.data import get_dls, load_prepared
    from cat12.model import create_model
    tuned = mode == 'tuned'
    if tuned: tune_malloc()
    prep, res = load_prepared(work), {}
    for size in sizes:
        torch.manual_seed(0)
        model = create_model(12, pretrained=False)
        if tuned: model = model.to(memory_format=torch.channels_last)
        opt = torch.optim.AdamW(model.parameters(), 1e-3)
        dl, ts = get_dls(prep, img_size=size, batch_size=bs).train, []
        it = iter(dl)
        model.train()
        for i in range(steps + 1):
            t = time.perf_counter()
            xb, yb = next(it)
            if tuned: xb = xb.contiguous(memory_format=torch.channels_last)
            loss = F.cross_entropy(model(xb), yb); opt.zero_grad(); loss.backward(); opt.step()
            ts.append(time.perf_counter() - t)
        res[size] = bs / statistics.median(ts[1:])
    return dict(mode=mode, img_s={str(k): v for k, v in res.items()}, maxrss_gb=maxrss_gb())

def strategy_bench(work: str, strategy: str, size: int, epochs: int) -> dict:
    "Time and accuracy of `fit(..., strategy=strategy)` from random weights, in a tuned process."
    from cat12.learner import fit
    from cat12.hardware import tune_malloc
    from cat12.data import get_dls, load_prepared
    from cat12.model import create_model
    tune_malloc()
    prep = load_prepared(work)
    dls = get_dls(prep, img_size=size, batch_size=32)
    model = create_model(12, pretrained=False)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        model, hist = fit(model, dls, epochs=epochs, lr=2e-3, strategy=strategy, progress=False, out=out,
                          cache_dir=Path(out)/'cache')   # a fresh cache: the timing includes computing it
    return dict(strategy=strategy, seconds=time.perf_counter() - t0, valid_acc=float(hist.valid_acc.iloc[-1]),
                best_acc=float(hist.valid_acc.max()), epochs=len(hist), maxrss_gb=maxrss_gb())

def markdown_table(df) -> str:
    "A GitHub markdown table (without the optional tabulate package)."
    cell = lambda v: '' if v is None or v != v else str(v)
    lines = ['| ' + ' | '.join(df.columns) + ' |', '|' + '---|' * len(df.columns)]
    return '\n'.join(lines + ['| ' + ' | '.join(cell(v) for v in r) + ' |' for r in df.itertuples(index=False)])

def _sub(args: list[str]) -> dict:
    "Run this script in a fresh process with the default environment; return its JSON line."
    env = {k: v for k, v in os.environ.items() if not k.startswith('MALLOC_')}
    r = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=env, cwd=HERE.parent)
    if r.returncode: raise RuntimeError(r.stderr[-2000:])
    return json.loads(r.stdout.strip().splitlines()[-1])

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--data', help='a Cat-12 folder (default: make_sample full into a temp folder)')
    p.add_argument('--size', type=int, default=64); p.add_argument('--epochs', type=int, default=2)
    p.add_argument('--steps', type=int, default=3); p.add_argument('--big', type=int, default=224); p.add_argument('--child', nargs='+', help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        kind, work, *rest = a.child
        r = (step_bench(work, rest[0], [int(s) for s in rest[1].split(',')], int(rest[2])) if kind == 'step' else
             strategy_bench(work, rest[0], int(rest[1]), int(rest[2])))
        print(json.dumps(r)); return
    import pandas as pd
    from cat12.sample import make_sample
    from cat12.data import prepare, get_dls, resize_size
    from cat12.strategies import choose_strategy
    from cat12.hardware import default_device
    from cat12.model import create_model
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        data = Path(a.data) if a.data else make_sample(Path(tmp)/'data', 'full')
        prep = prepare(data, Path(tmp)/'work', cache_size=resize_size(a.size), progress=False)
        n_train = int(((prep.manifest.split == 'train') & (prep.manifest.status == 'ok')).sum())
        print(f'data + prepare: {time.perf_counter() - t:.0f} s, {n_train} training images', flush=True)
        work, sizes = str(prep.work), f'{a.size},{a.big}'
        steps, strat = {}, {}
        for m in ('naive', 'tuned'):   # each result is printed as soon as it is there
            steps[m] = _sub(['--child', 'step', work, m, sizes, str(a.steps)]); print(json.dumps(steps[m]), flush=True)
        for s in ('features', 'partial', 'full'):
            strat[s] = _sub(['--child', 'strategy', work, s, str(a.size), str(a.epochs)]); print(json.dumps(strat[s]), flush=True)
        auto = choose_strategy(create_model(12, pretrained=False), get_dls(prep, img_size=a.size), default_device(), a.epochs)
    naive, tuned = steps['naive'], steps['tuned']
    ratio = {s: tuned['img_s'][s] / naive['img_s'][s] for s in tuned['img_s']}
    rows = []
    for s in tuned['img_s']:
        rows.append(dict(run=f'step {s}px naive (NCHW, default malloc)', images_per_s=naive['img_s'][s], ratio_vs_naive=1.0,
                         seconds=None, valid_acc=None, peak_rss_gb=naive['maxrss_gb']))
        rows.append(dict(run=f'step {s}px fit (channels_last, tune_malloc)', images_per_s=tuned['img_s'][s],
                         ratio_vs_naive=ratio[s], seconds=None, valid_acc=None, peak_rss_gb=tuned['maxrss_gb']))
    full = strat['full']
    rows.append(dict(run=f'naive loop, {a.epochs} epochs at {a.size}px (estimated: full x step ratio)', images_per_s=None,
                     ratio_vs_naive=1.0, seconds=full['seconds'] * ratio[str(a.size)], valid_acc=full['valid_acc'], peak_rss_gb=None))
    for s, r in strat.items():
        rows.append(dict(run=f"strategy {s}, {r['epochs']} epochs at {a.size}px, random weights", images_per_s=None,
                         ratio_vs_naive=full['seconds'] * ratio[str(a.size)] / r['seconds'], seconds=r['seconds'],
                         valid_acc=r['valid_acc'], peak_rss_gb=r['maxrss_gb']))
    df = pd.DataFrame(rows).round(3)
    df.to_csv(HERE/'learner_results.csv', index=False)
    note = (f"CPU: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end (shared machine). "
            f"ResNet50 from random weights (no ImageNet weights here). auto chose: {auto[0]} ({auto[1]}). "
            f"ratio_vs_naive: images/s ratio for steps; for strategies, the naive loop's (estimated) time over the "
            f"strategy's time. Total {time.perf_counter() - t_all:.0f} s.")
    (HERE/'learner_results.md').write_text(markdown_table(df) + '\n\n' + note + '\n')
    print(df.to_string(index=False)); print(note)

if __name__ == '__main__': main()
