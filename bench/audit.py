"""The label audit measured on known noise (bench/audit.py).

    python bench/audit.py [--weights bench/source.pth] [--noise 0.03] [--seeds 0 1 2]

On a quiet machine (nothing else running):
1. The full generated sample with `label_noise` (3 % of the 2160 training labels flipped to another breed; the flipped
   ones are listed in flipped_labels.csv), prepared once at 64 px (timed apart).
2. `cat12.audit.audit` from `cat12 pretrain`'s weights (made with the defaults if --weights is missing), with its
   defaults: k folds on cached pooled features, each image's averaged with its mirror's. Its wall time, and precision
   and recall of its top k, with k = the number flipped (the top 3 %).
3. Three label files: the noisy one, the clean one (flipped_labels.csv's true labels put back) and the audited one
   (`write_clean`: the noisy file without the suspects scoring at most `cat12 audit`'s default threshold).
   For each, and each seed, `cat12 run DATA --labels FILE --weights W --seed S --epochs 5` (the CPU default strategy) in its own
   process; test accuracy against the answer key.
Results: bench/audit_results.md and bench/audit_results.csv.
"""
from __future__ import annotations
import argparse, atexit, shutil, json, os, re, subprocess, sys, tempfile, time
from pathlib import Path

HERE = Path(__file__).resolve().parent

def top_loss_hits(run: Path, flipped_names, k: int) -> tuple[int, int, int]:
    """The trained model's own judge: rank its run's labelled images by their loss under the given label (eval crop);
    how many flipped labels are in the top k, and in the top k_train of the training split alone (the labels it trained on)."""
    import torch
    from torch.utils.data import DataLoader
    from cat12.audit import labelled
    from cat12.data import load_prepared
    from cat12.loaders import CachedImages, eval_tfms
    from cat12.predict import load_model
    from cat12.viz import top_losses
    prep, model = load_prepared(run/'work'), load_model(run/'model.pth', device='cpu').eval()
    rows, tfm = labelled(prep), eval_tfms(model.meta['img_size'], model.meta['mean'], model.meta['std'])
    with torch.inference_mode():   # the decoded squares of the work folder's cache: nothing is read or decoded again
        probs = torch.cat([model(x).softmax(1) for s in ('train', 'val')
                           for x, _ in DataLoader(CachedImages(*prep.arrays(s), tfm), batch_size=64)]).numpy()
    y, bad, train = rows.label.to_numpy(), rows.name.isin(flipped_names).to_numpy(), (rows.split == 'train').to_numpy()
    k_train = int((bad & train).sum())
    return (int(bad[top_losses(probs, y, k).idx].sum()),
            int(bad[train][top_losses(probs[train], y[train], k_train).idx].sum()), k_train)

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--weights', default=str(HERE/'source.pth'))
    p.add_argument('--noise', type=float, default=0.03)
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--img-size', type=int, default=64)
    p.add_argument('--epochs', type=int, default=5, help="each run's epochs (5: DEFAULTS['pretrained']; without it, a run fills --budget)")
    p.add_argument('--out', default=str(HERE/'audit_results'))
    a = p.parse_args()
    import pandas as pd
    from cat12.audit import audit, write_clean
    from cat12.cli import parser
    from cat12.data import prepare, resize_size
    from cat12.sample import make_sample
    weights = Path(a.weights)
    if not weights.is_file():
        from cat12.transfer import pretrain
        pretrain(weights, progress=False)
    side = json.loads(weights.with_suffix('.json').read_text())
    tmp = Path(tempfile.mkdtemp(prefix='cat12-audit-bench-'))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)   # its data and runs take GBs
    data = make_sample(tmp/'data', 'full', label_noise=a.noise)
    flipped = pd.read_csv(data/'flipped_labels.csv')
    t0 = time.perf_counter(); prep = prepare(data, tmp/'work', cache_size=resize_size(a.img_size), progress=False)
    prepare_s = time.perf_counter() - t0
    t0 = time.perf_counter(); res = audit(prep, weights=weights, img_size=a.img_size, progress=False)
    audit_s = time.perf_counter() - t0
    k, n = len(flipped), len(res.table)
    top = res.table.name[:k]
    hits = int(top.isin(flipped.name).sum())
    threshold = parser().parse_args(['audit', 'x', '--out', 'y']).threshold
    drop = res.suspects.name[res.suspects.score <= threshold]
    dropped_hits = int(drop.isin(flipped.name).sum())
    # the three label files
    noisy = data/'train_list.txt'
    true = dict(zip(flipped.name, flipped.true))
    lines = noisy.read_text().splitlines()
    clean = tmp/'clean.txt'
    clean.write_text(''.join(f"{l.split(chr(9))[0]}\t{true.get(l.split(chr(9))[0].split('/')[-1], l.split(chr(9))[1])}\n" for l in lines))
    audited, _ = write_clean(noisy, drop, tmp/'audited.txt')
    rows = []
    for seed in a.seeds:
        for name, labels in (('clean', clean), ('noisy', noisy), ('audited', audited)):
            out = tmp/f'run-{name}-{seed}'
            t = time.perf_counter()
            r = subprocess.run([sys.executable, '-c', 'import sys; from cat12.cli import main; sys.exit(main())', 'run', str(data), '--out', str(out), '--labels', str(labels),
                                '--weights', str(weights), '--seed', str(seed), '--img-size', str(a.img_size),
                                '--epochs', str(a.epochs)],
                               capture_output=True, text=True)
            if r.returncode: print(r.stdout[-3000:], r.stderr[-3000:]); raise SystemExit(f'{name} seed {seed} failed')
            acc = float(re.search(r'test accuracy: ([0-9.]+)', r.stdout).group(1))
            strategy = re.search(r'strategy auto -> (\w+)', r.stdout)
            rows.append(dict(labels=name, seed=seed, test_acc=acc, seconds=round(time.perf_counter() - t, 1),
                             strategy=strategy.group(1) if strategy else '?'))
            print(rows[-1], flush=True)
    for r in rows:
        if r['labels'] == 'noisy': r['top_loss_hits'], r['top_loss_hits_train'], r['flipped_train'] = top_loss_hits(tmp/f"run-noisy-{r['seed']}", set(flipped.name), k)
    df = pd.DataFrame(rows); df.to_csv(a.out + '.csv', index=False)
    tl = df[df.labels == 'noisy']
    med = df.groupby('labels').test_acc.median()
    spread = df.groupby('labels').test_acc.agg(lambda s: f'{s.median():.3f} ({s.min():.3f}-{s.max():.3f})')
    lost, back = med['clean'] - med['noisy'], med['audited'] - med['noisy']
    text = '\n'.join([
        f"Measured by `bench/audit.py` on {os.cpu_count()} CPU cores ({time.strftime('%Y-%m-%d')}), nothing else running.",
        f"Data: the full generated sample, {a.noise:.0%} of its {len(lines)} training labels flipped ({k} images); prepared at "
        f"{a.img_size} px in {prepare_s:.0f} s. Weights: `cat12 pretrain` ({side['epochs']} epochs at {side['img_size']} px, "
        f"source accuracy {side['source_acc']:.3f}).",
        '',
        f"**The audit** (`audit(prep, weights=...)`, {res.info['folds']} folds on cached pooled features at {a.img_size} px"
        f"{', averaged with the mirror image' if res.info['flip'] else ''}): {audit_s:.1f} s; "
        f"out-of-fold accuracy {res.info['oof_accuracy']:.3f}; {res.info['flagged']} images flagged.",
        '',
        '| cut-off | images | flipped among them | precision | recall |', '|---|---|---|---|---|',
        f'| top {k} (the top {k / n:.1%}, k = number flipped) | {k} | {hits} | {hits / k:.3f} | {hits / k:.3f} |',
        f'| suspects with score <= {threshold} (`--write-clean` default) | {len(drop)} | {dropped_hits} | '
        f'{dropped_hits / max(len(drop), 1):.3f} | {dropped_hits / k:.3f} |',
        '',
        f"**The trained model's own top losses**, for comparison (each noisy run's `model.pth`; every labelled image ranked by "
        f"its loss under its given label, at the validation crop): its top {k} held "
        f"{', '.join(str(int(h)) for h in tl.top_loss_hits)} of the {k} flipped labels (seeds {', '.join(map(str, tl.seed))}: recall "
        f"{(tl.top_loss_hits / k).median():.3f} median); on the training split alone, the labels it trained on, "
        f"{', '.join(f'{int(h)} of {int(n)}' for h, n in zip(tl.top_loss_hits_train, tl.flipped_train))}.",
        '',
        f"**Training on each label file** (`cat12 run DATA --labels FILE --weights W --epochs {a.epochs}`, CPU default strategy "
        f"{', '.join(sorted(df.strategy.unique()))}; seeds {', '.join(map(str, a.seeds))}; test accuracy, median (min-max)):",
        '', '| labels | test accuracy | seconds per run |', '|---|---|---|',
        *[f"| {l} | {spread[l]} | {df[df.labels == l].seconds.median():.0f} |" for l in ('clean', 'noisy', 'audited')],
        '',
        f"Noise cost {lost:+.3f} (clean - noisy, medians); the audited labels recover {back:+.3f}"
        + (f" ({back / lost:.0%} of it)." if lost > 0 else "."),
        f"Goals: top {k / n:.0%} finds {hits / k:.0%} of the flipped labels (goal >= 80 %: {'met' if hits / k >= 0.8 else 'not met'}); "
        f"audit {audit_s:.0f} s (goal <= 120 s: {'met' if audit_s <= 120 else 'not met'}); recovered "
        + (f"{back / lost:.0%}" if lost > 0 else 'n/a (no loss)') + f" of the loss (goal >= 50 %: {'met' if lost > 0 and back / lost >= 0.5 else 'not met'}).",
    ]) + '\n'
    Path(a.out + '.md').write_text(text)
    print(text)

if __name__ == '__main__':
    main()
