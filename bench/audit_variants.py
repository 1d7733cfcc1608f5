"""Which audit settings find the most flipped labels (bench/audit_variants.py): the choice behind `audit`'s defaults.

    python bench/audit_variants.py [--weights bench/source.pth] [--draws 0 1 2] [--noise 0.03]

On a quiet machine: for each draw (the full generated sample with seed DRAW and 3 % of its training labels flipped),
`audit` from `cat12 pretrain`'s weights at 64 px with 5 or 10 folds, on the pooled features of each image alone or
averaged with its mirror image's. Recall of the top k (k = the number flipped, 65: the top 3 %), and the out-of-fold
accuracy. Results: bench/audit_variants.md.
"""
from __future__ import annotations
import argparse, atexit, shutil, statistics, tempfile, time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VARIANTS = {'5 folds, image alone (before)': dict(folds=5, flip=False), '5 folds, with the mirror': dict(folds=5, flip=True),
            '10 folds, image alone': dict(folds=10, flip=False), '10 folds, with the mirror (the default)': dict(folds=10, flip=True)}

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--weights', default=str(HERE/'source.pth'))
    p.add_argument('--draws', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--noise', type=float, default=0.03)
    p.add_argument('--out', default=str(HERE/'audit_variants.md'))
    a = p.parse_args()
    import pandas as pd
    from cat12.audit import audit
    from cat12.data import prepare, resize_size
    from cat12.model import create_model
    from cat12.sample import make_sample
    model = create_model(12, weights_path=a.weights)
    tmp, rows = Path(tempfile.mkdtemp(prefix='cat12-audit-variants-')), []
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)   # its data and runs take GBs
    for draw in a.draws:
        data = make_sample(tmp/f'data-{draw}', 'full', seed=draw, label_noise=a.noise)
        flipped = set(pd.read_csv(data/'flipped_labels.csv').name)
        prep = prepare(data, tmp/f'work-{draw}', cache_size=resize_size(64), progress=False)
        for name, kw in VARIANTS.items():
            t0 = time.perf_counter(); res = audit(prep, model=model, img_size=64, progress=False, **kw)
            k = len(flipped); hits = int(res.table.name[:k].isin(flipped).sum())
            rows.append(dict(draw=draw, variant=name, flipped=k, found=hits, recall=hits / k,
                             oof_accuracy=res.info['oof_accuracy'], seconds=time.perf_counter() - t0))
            print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    lines = [f"Measured by `bench/audit_variants.py` ({time.strftime('%Y-%m-%d')}), nothing else running. Draws (sample seeds) "
             f"{', '.join(map(str, a.draws))}, {a.noise:.0%} of the 2160 training labels flipped in each; `audit` from {Path(a.weights).name} at 64 px. "
             "Found: flipped labels among the top k, k = the number flipped (the top 3 %). Seconds: the first variant of a draw also computes and caches the features.", '',
             '| variant | found, per draw | recall, median (min-max) | out-of-fold accuracy, median | seconds, median |', '|---|---|---|---|---|']
    for name in VARIANTS:
        g = df[df.variant == name]
        lines.append(f"| {name} | {', '.join(f'{f}/{k}' for f, k in zip(g.found, g.flipped))} | {statistics.median(g.recall):.3f} "
                     f"({g.recall.min():.3f}-{g.recall.max():.3f}) | {statistics.median(g.oof_accuracy):.3f} | {statistics.median(g.seconds):.1f} |")
    Path(a.out).write_text('\n'.join(lines) + '\n'); print('\n'.join(lines))

if __name__ == '__main__':
    main()
