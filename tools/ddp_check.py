#!/usr/bin/env python
"""Check that `fit` runs unchanged under torchrun: 2 CPU processes (gloo) against 1 process, on the small sample.

Usage: python tools/ddp_check.py [--keep DIR]

What it checks, and why these tolerances:
- both runs finish (exit code 0);
- the 2-process run writes exactly one model.pth, one last.pth, one history.csv and one result.csv (only rank 0 writes);
- the validation metrics that rank 0 reports were reduced over both ranks: they equal a single-process evaluation
  of the saved checkpoint on the whole validation set (|difference| <= 1e-4: float sums in another order);
- training agrees with the single-process run: same seed, same initial weights, same global batch (2 x 8 = 16),
  so the per-epoch train loss may differ only through which images share a batch and BatchNorm statistics computed
  over 8 instead of 16 images. On this tiny sample that moves the mean train loss by a few percent; we allow 15 %.
"""
import argparse, os, shutil, subprocess, sys, tempfile, time
from pathlib import Path

import pandas as pd

def sh(cmd, **kw):
    "Run `cmd`, print its tail on failure, return (seconds, completed process)."
    t = time.time(); r = subprocess.run(cmd, capture_output=True, text=True, **kw); dt = time.time() - t
    if r.returncode: print(' '.join(map(str, cmd)), '\n', (r.stdout + r.stderr)[-3000:])
    return dt, r

def main():
    ap = argparse.ArgumentParser(); ap.add_argument('--keep', default=None); a = ap.parse_args()
    d = Path(a.keep or tempfile.mkdtemp(prefix='cat12-ddp-')); d.mkdir(parents=True, exist_ok=True)
    py = sys.executable; cat12 = [py, '-c', 'import sys; from cat12.cli import main; sys.exit(main())']
    torchrun = [py, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2', '--no-python']
    fails = []
    _, r = sh(cat12 + ['sample', d/'data', '--preset', 'small']); assert r.returncode == 0
    common = ['--epochs', '2', '--img-size', '32', '--no-pretrained', '--seed', '0', '--strategy', 'full']
    t1, r1 = sh(cat12 + ['run', d/'data', '--out', d/'one', '--batch-size', '16'] + common)
    # torchrun needs an executable: a tiny launcher script for `cat12` in the same interpreter
    launcher = d/'cat12-launch'; launcher.write_text(f'#!{py}\nimport sys\nfrom cat12.cli import main\nsys.exit(main())\n')
    launcher.chmod(0o755)
    env = dict(os.environ, OMP_NUM_THREADS='1')
    t2, r2 = sh(torchrun + [launcher, 'run', d/'data', '--out', d/'two', '--batch-size', '8'] + common, env=env)
    if r1.returncode: fails.append(f'1-process run failed (rc {r1.returncode})')
    if r2.returncode: fails.append(f'2-process run failed (rc {r2.returncode})')
    if not fails:
        files = sorted(p.name for p in (d/'two').iterdir() if p.is_file())
        for f in ('model.pth', 'last.pth', 'history.csv', 'result.csv'):
            if files.count(f) != 1: fails.append(f'{f}: expected exactly one in the 2-process run folder, found {files}')
        stray = [f for f in files if f.endswith('.tmp') or f.startswith('.')]
        if stray: fails.append(f'stray files: {stray}')
        h1, h2 = pd.read_csv(d/'one'/'history.csv'), pd.read_csv(d/'two'/'history.csv')
        if len(h1) != 2 or len(h2) != 2: fails.append(f'history rows: {len(h1)} and {len(h2)}, expected 2')
        # the reduced metrics equal a single-process evaluation of the checkpoint (last epoch = last.pth)
        code = ('import sys, json; from cat12.data import load_prepared; from cat12.predict import load_model; '
                'from cat12.data import get_dls; from cat12.learner import evaluate; '
                f'prep = load_prepared({str(d/"two"/"work")!r}); m = load_model({str(d/"two"/"last.pth")!r}); '
                'dls = get_dls(prep, img_size=32, batch_size=16, mean=m.meta["mean"], std=m.meta["std"]); '
                'print(json.dumps(evaluate(m, dls.valid)))')
        _, r = sh([py, '-c', code])
        if r.returncode: fails.append('re-evaluation failed')
        else:
            import json
            vloss, vacc = json.loads(r.stdout.strip().splitlines()[-1])
            if abs(vloss - h2.valid_loss.iloc[-1]) > 1e-4 or abs(vacc - h2.valid_acc.iloc[-1]) > 1e-6:
                fails.append(f'reduced metrics {h2.valid_loss.iloc[-1]:.5f}/{h2.valid_acc.iloc[-1]:.4f} != '
                             f'single-process evaluation {vloss:.5f}/{vacc:.4f}')
        rel = abs(h2.train_loss.iloc[0] - h1.train_loss.iloc[0]) / h1.train_loss.iloc[0]
        print(f'epoch-1 train loss: 1 process {h1.train_loss.iloc[0]:.4f}, 2 processes {h2.train_loss.iloc[0]:.4f} '
              f'(relative difference {rel:.3f}, tolerance 0.15)')
        if rel > 0.15: fails.append(f'train loss differs by {rel:.1%} (> 15%)')
        print(h1.to_string(index=False)); print(h2.to_string(index=False))
    print(f'1 process: {t1:.1f} s, 2 processes: {t2:.1f} s (small sample, 2 epochs, 32 px)')
    for f in fails: print('FAIL', f)
    if not a.keep: shutil.rmtree(d, ignore_errors=True)
    print(f"ddp check: {'passed' if not fails else 'failed'}")
    sys.exit(1 if fails else 0)

if __name__ == '__main__': main()
