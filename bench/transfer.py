"""Training strategies ranked by time to accuracy, from the weights of `cat12 pretrain` (bench/transfer.py).

    python bench/transfer.py [--weights FILE] [--sizes 64] [--seeds 0 1 2] [--epochs 3] [--rows features partial ...]

The rows with a peak learning rate in their name ('finetune, lr 3e-3', ...) run only when named in --rows.

What it does, on a quiet machine (nothing else running):
1. `cat12 pretrain`'s defaults (`cat12.transfer.pretrain`) into --weights, unless that file exists; its sidecar
   records how long it took.
2. The full generated sample (2160 + 240 images, `make_sample(..., 'full')`), prepared once per size (not timed:
   `cat12 run` does the same once).
3. For each size, seed and row, a fresh subprocess (so that its peak memory, `ru_maxrss`, is its own, and no
   activation cache is shared): `create_model` from the pretrained file or from random weights, `fit` with the row's
   strategy, then `predict` the 240 test images and score them against the answer key. Wall time is the whole
   `fit`, caching and head warm-up included; the setup part (caching, warm-up) and the median epoch are recorded
   too.
4. Medians and spreads (min-max over seeds) per size and row, and the test accuracies for `cat12.strategies.CPU_BENCH`
   (`auto` ranks by them; it times the strategies on the machine that runs, not from these seconds). `probe_speed(64)`'s
   training step (seconds per image) is measured in the same run, to compare machines.
Results: bench/transfer_results.csv (one row per run) and bench/transfer_results.md (the tables). `--merge A.csv B.csv`
rewrites the report from several runs' CSVs, a later file's runs replacing an earlier one's (same size, row and seed).
"""
from __future__ import annotations
import argparse, json, os, resource, statistics, subprocess, sys, tempfile, time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROWS = {  # name: (weights, strategy, lr_mult, peak lr; None: `TrainConfig`'s and `DEFAULTS`')
    'features': ('pretrained', 'features', None, None),
    'partial': ('pretrained', 'partial', None, None),
    'finetune': ('pretrained', 'finetune', None, None),
    'finetune, lr_mult 10': ('pretrained', 'finetune', 10, None),   # gentler discriminative rates: the stem at lr/10
    'finetune, lr_mult 3': ('pretrained', 'finetune', 3, None),
    'finetune, lr 3e-3': ('pretrained', 'finetune', None, 3e-3),   # each way at a higher peak: near lr_find's suggestion
    'finetune, lr 1e-2': ('pretrained', 'finetune', None, 1e-2),
    'full, one lr': ('pretrained', 'full', None, None),
    'full, one lr 3e-3': ('pretrained', 'full', None, 3e-3),
    'from scratch': ('random', 'full', None, None),
}
DEFAULT_ROWS = [r for r, (_, _, _, lr) in ROWS.items() if lr is None]   # the rows at `DEFAULTS`' peak; the others on request

def one(cfg: dict) -> dict:
    "One run in this process: train with the row's strategy, predict the test images, score them."
    import pandas as pd
    from cat12.data import get_dls, load_prepared
    from cat12.learner import fit
    from cat12.hardware import tune_malloc
    from cat12.model import create_model
    from cat12.predict import predict
    tune_malloc()
    prep = load_prepared(cfg['work'])
    pre = cfg['weights_kind'] == 'pretrained'
    model = create_model(12, pretrained=pre, weights_path=cfg['weights'] if pre else None, seed=cfg['seed'])
    info = model.weights_info
    dls = get_dls(prep, img_size=cfg['size'], batch_size=32, mean=info['mean'] or (0.485, 0.456, 0.406),
                  std=info['std'] or (0.229, 0.224, 0.225), seed=cfg['seed'])
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        extra = {k: cfg[k] for k in ('lr_mult', 'lr') if cfg.get(k)}
        model, hist = fit(model, dls, epochs=cfg['epochs'], seed=cfg['seed'], strategy=cfg['strategy'],
                          cache_dir=cache, progress=False, **extra)
        train_s = time.perf_counter() - t0
    model.meta = dict(img_size=cfg['size'], mean=list(dls.mean), std=list(dls.std))
    t0 = time.perf_counter()
    preds = predict(model.cpu().eval(), prep.test, progress=False)
    predict_s = time.perf_counter() - t0
    key = pd.read_csv(Path(cfg['data'])/'test_labels.csv', header=None, names=['name', 'label'])
    test_acc = float((preds.set_index('name').label.reindex(key.name).to_numpy() == key.label.to_numpy()).mean())
    return dict(train_s=round(train_s, 1), setup_s=round(train_s - float(hist.seconds.sum()), 1),
                epoch_s=round(float(hist.seconds.median()), 2), epochs=len(hist), valid_acc=round(float(hist.valid_acc.iloc[-1]), 4),
                test_acc=round(test_acc, 4), predict_s=round(predict_s, 1),
                peak_gb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2))

def spread(xs) -> str:
    "median (min-max)"
    return f'{statistics.median(xs):.3f} ({min(xs):.3f}-{max(xs):.3f})' if len(xs) > 1 else f'{xs[0]:.3f}'

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--weights', default=str(HERE/'source.pth'), help='pretrained weights (made with the pretrain defaults if missing)')
    p.add_argument('--sizes', type=int, nargs='+', default=[64])
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--epochs', type=int, default=3, help='epochs of every row (features: 10 head epochs)')
    p.add_argument('--rows', nargs='+', default=DEFAULT_ROWS, choices=list(ROWS))
    p.add_argument('--data', default=None, help='the full generated sample (default: drawn into a temporary folder)')
    p.add_argument('--out', default=str(HERE/'transfer_results'), help='results: OUT.csv and OUT.md')
    p.add_argument('--merge', nargs='+', default=None, metavar='CSV', help='only write the report of these runs (later files replace earlier runs)')
    p.add_argument('--one', default=None, help=argparse.SUPPRESS)   # internal: one run, JSON config
    a = p.parse_args()
    if a.one: print('RESULT ' + json.dumps(one(json.loads(a.one)))); return
    if a.merge: merge(a.merge, a.out, a.weights); return

    from cat12.data import prepare, resize_size
    from cat12.strategies import probe_speed
    from cat12.sample import make_sample
    weights = Path(a.weights)
    if not weights.is_file():
        from cat12.transfer import pretrain
        print(f'pretraining with the defaults into {weights} ...', flush=True)
        pretrain(weights, progress=False)
    side = json.loads(weights.with_suffix('.json').read_text())
    print(f"weights: {weights}: {side['source']}, {side['epochs']} epochs at {side['img_size']} px, "
          f"source accuracy {side['source_acc']}, pretrained in {side['seconds']} s", flush=True)
    probe_s = probe_speed(64)['train']
    tmp = tempfile.TemporaryDirectory()
    data = Path(a.data) if a.data else make_sample(Path(tmp.name)/'data', 'full')
    rows = []
    for size in a.sizes:
        work = Path(tmp.name)/f'work-{size}'
        prep = prepare(data, work, cache_size=resize_size(size), progress=False)
        n = prep.manifest[prep.manifest.status == 'ok'].split.value_counts()
        target = (f"{'the full generated sample' if a.data is None else f'`{a.data}`'}, "
                  f"{n.get('train', 0)} train / {n.get('val', 0)} valid / {n.get('test', 0)} test images")
        for seed in a.seeds:
            for name in a.rows:
                kind, strategy, lr_mult, lr = ROWS[name]
                cfg = dict(work=str(work), data=str(data), weights=str(weights), weights_kind=kind, strategy=strategy,
                           size=size, seed=seed, epochs=a.epochs, lr_mult=lr_mult, lr=lr)
                t0 = time.perf_counter()
                out = subprocess.run([sys.executable, __file__, '--one', json.dumps(cfg)], capture_output=True, text=True)
                line = [l for l in out.stdout.splitlines() if l.startswith('RESULT ')]
                if out.returncode or not line: print(out.stdout[-2000:], out.stderr[-3000:]); raise SystemExit(f'{name} failed')
                r = dict(size=size, seed=seed, row=name, strategy=strategy, weights=kind, lr_mult=lr_mult, lr=lr, **json.loads(line[0][7:]),
                         process_s=round(time.perf_counter() - t0, 1))
                rows.append(r); print(r, flush=True)
    import pandas as pd
    df = pd.DataFrame(rows)
    df['probe_s'] = round(probe_s, 3)
    df.to_csv(a.out + '.csv', index=False)
    print(write_report(df, a.out, side, a.rows, target))

def _made_by(side: dict) -> str:
    "'defaults' when the sidecar's epochs, size and images per breed are `pretrain`'s defaults; else 'with other settings'."
    import inspect
    from cat12.transfer import pretrain
    d = {k: p.default for k, p in inspect.signature(pretrain).parameters.items()}
    same = (side['epochs'], side['img_size'], side.get('per_class', d['per_class'])) == (d['epochs'], d['img_size'], d['per_class'])
    return 'defaults' if same else 'with other settings'

def write_report(df, out: str, side: dict, rows: list,
                 target: str = 'the full generated sample, 1944 train / 216 valid / 240 test images') -> str:
    "The tables of `df` (one row per run) as markdown, written to OUT.md; also the values for CPU_BENCH."
    seeds = sorted(df.seed.unique()); epochs = int(df[df.strategy != 'features'].epochs.max()) if (df.strategy != 'features').any() else 3
    probe_s = float(df.probe_s.dropna().iloc[0]) if 'probe_s' in df and df.probe_s.notna().any() else float('nan')
    lines = [f"Measured by `bench/transfer.py` on {os.cpu_count()} CPU cores ({time.strftime('%Y-%m-%d')}), nothing else running.",
             f"Weights: `cat12 pretrain` {_made_by(side)} ({side['epochs']} epochs at {side['img_size']} px on {side['train_images']} "
             f"images of {len(side['classes'])} source breeds): source accuracy {side['source_acc']:.3f}, {side['seconds']:.0f} s.",
             f"Target: {target}; {epochs} epochs "
             f"(features: 10 head epochs on cached features; partial and finetune: after 1 head epoch); seeds {', '.join(map(str, seeds))}. "
             f"Time: `fit`, caching and warm-up included. Accuracy: median (min-max) over the seeds. `probe_speed(64)['train']`: {probe_s:.4f} s per image (of the first run listed).", '']
    for size, g in df.groupby('size'):
        lines += [f'**{size} px**', '', '| row | strategy | train time, s | valid accuracy | test accuracy | peak memory, GB |', '|---|---|---|---|---|---|']
        for name in ROWS:
            r = g[g.row == name]
            if len(r): lines.append(f"| {name} | {r.strategy.iloc[0]} | {statistics.median(r.train_s):.0f} ({r.train_s.min():.0f}-{r.train_s.max():.0f}) "
                                    f"| {spread(r.valid_acc.tolist())} | {spread(r.test_acc.tolist())} | {r.peak_gb.max():.1f} |")
        lines.append('')
        best = {s: g[g.row == r] for s, r in (('features', 'features'), ('partial', 'partial'), ('finetune', 'finetune'), ('full', 'full, one lr'))}
        bench = ', '.join(f'{s}={statistics.median(r.test_acc):.3f}' for s, r in best.items() if len(r))
        lines += [f'For `cat12.strategies.CPU_BENCH`: `{size}: dict({bench})`', '']
    text = '\n'.join(lines) + '\n'
    Path(out + '.md').write_text(text)
    return text

def merge(paths: list, out: str, weights: str):
    "Several runs' CSVs as one report: a later file's runs replace an earlier one's with the same size, row and seed."
    import pandas as pd
    df = pd.concat([pd.read_csv(p).assign(_order=i) for i, p in enumerate(paths)])
    df = df.sort_values('_order').drop_duplicates(['size', 'row', 'seed'], keep='last').drop(columns='_order')
    df = df.sort_values(['size', 'seed']).reset_index(drop=True)
    df.to_csv(out + '.csv', index=False)
    print(write_report(df, out, json.loads(Path(weights).with_suffix('.json').read_text()), list(ROWS)))

if __name__ == '__main__':
    main()
