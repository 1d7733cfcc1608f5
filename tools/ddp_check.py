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
- the two ranks augment differently: on a training set of 96 copies of one image, their first batches differ
  (each image's crop comes from its own seed; with one shared random stream they would be identical);
- a cached strategy ('features') trains in rank 0 alone, so 2 processes give exactly the 1-process history;
- two machines that do not share --out (simulated: two torchrun agents, --nnodes 2, each in its own folder with a
  relative --out): each prepares its own work folder, only rank 0's machine gets model.pth and result.csv, and the
  run says so in one line.
"""
import argparse, os, shutil, socket, subprocess, sys, tempfile, time
from pathlib import Path

import pandas as pd

def sh(cmd, **kw):
    "Run `cmd`, print its tail on failure, return (seconds, completed process)."
    t = time.time(); r = subprocess.run(cmd, capture_output=True, text=True, **kw); dt = time.time() - t
    if r.returncode: print(' '.join(map(str, cmd)), '\n', (r.stdout + r.stderr)[-3000:])
    return dt, r

def first_batches(work, out):
    "Under torchrun: this rank's first training batch over 96 copies of one image, saved to out/rank<r>.pt."
    import numpy as np, torch
    from cat12.data import load_prepared, get_dls
    from cat12.hardware import init_distributed, distributed_loaders
    import torch.distributed as dist
    init_distributed('cpu')
    prep = load_prepared(work)
    x, y = prep.arrays('train')
    prep.arrays = lambda split: (np.repeat(x[:1], 96, 0), np.zeros(96, dtype=y.dtype)) if split == 'train' else (x[:8], y[:8])
    train, _, _ = distributed_loaders(get_dls(prep, img_size=32, batch_size=8, seed=0), seed=0)
    torch.save(next(iter(train))[0], Path(out)/f'rank{dist.get_rank()}.pt')
    dist.destroy_process_group()

def free_port() -> int:
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def main():
    ap = argparse.ArgumentParser(); ap.add_argument('--keep', default=None)
    ap.add_argument('--first-batches', nargs=2, metavar=('WORK', 'OUT'), help=argparse.SUPPRESS)   # the per-rank helper above
    a = ap.parse_args()
    if a.first_batches: return first_batches(*a.first_batches)
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
                'import torch; from cat12.data import get_dls; from cat12.hardware import autocast_dtype; from cat12.learner import evaluate; '
                f'prep = load_prepared({str(d/"two"/"work")!r}); m = load_model({str(d/"two"/"last.pth")!r}); '
                'dls = get_dls(prep, img_size=32, batch_size=16, mean=m.meta["mean"], std=m.meta["std"]); '
                'print(json.dumps(evaluate(m, dls.valid, amp=autocast_dtype(torch.device("cpu")))))')   # in the precision fit chose
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

        # the two ranks draw different crops: first batches over 96 copies of the same image
        _, r = sh(torchrun[:-1] + [__file__, '--first-batches', d/'two'/'work', d], env=env)
        if r.returncode: fails.append('first-batches helper failed')
        else:
            import torch
            b0, b1 = torch.load(d/'rank0.pt'), torch.load(d/'rank1.pt')
            diff = (b0 - b1).abs().mean().item()
            print(f'the same image in both ranks\' first batches: mean |difference| {diff:.3f} (identical augmentation would give 0)')
            if diff == 0: fails.append('both ranks applied the same augmentation')

        # a cached strategy: rank 0 trains alone, the other waits and gets its weights
        cached = ['--epochs', '2', '--img-size', '32', '--no-pretrained', '--seed', '0', '--strategy', 'features', '--batch-size', '16']
        _, r1 = sh(cat12 + ['train', d/'one'/'work', '--out', d/'f1'] + cached)
        _, r2 = sh(torchrun + [launcher, 'train', d/'one'/'work', '--out', d/'f2'] + cached, env=env)
        if r1.returncode or r2.returncode: fails.append('features runs failed')
        else:
            f1, f2 = (pd.read_csv(d/f/'history.csv').drop(columns='seconds') for f in ('f1', 'f2'))
            if not f1.equals(f2): fails.append(f'features: 2 processes gave another history\n{f1}\n{f2}')
            else: print(f'features under torchrun: the same history as 1 process ({len(f1)} epochs)')

        # two machines that do not share --out: each agent runs in its own folder, with a relative --out
        port, nodes = free_port(), []
        for k in (0, 1):
            (d/f'node{k}').mkdir()
            agent = [py, '-m', 'torch.distributed.run', '--nnodes', '2', '--node_rank', str(k), '--nproc_per_node', '1',
                     '--master_addr', '127.0.0.1', '--master_port', str(port), '--no-python', launcher,
                     'run', d/'data', '--out', 'run', '--batch-size', '8'] + common
            nodes.append(subprocess.Popen(agent, cwd=d/f'node{k}', env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        outs = [p.communicate(timeout=600)[0] for p in nodes]
        if any(p.returncode for p in nodes): fails.append('two-machine run failed:\n' + '\n'.join(o[-2000:] for o in outs))
        else:
            n0, n1 = d/'node0'/'run', d/'node1'/'run'
            ok = ((n0/'result.csv').is_file() and (n0/'model.pth').is_file() and (n1/'work'/'manifest.csv').is_file()
                  and not (n1/'model.pth').exists() and 'is not shared by all the machines' in outs[0])
            if not ok: fails.append('two-machine run without a shared --out: ' + outs[0][-1500:])
            else: print('two machines, --out not shared: each prepared its own work folder; rank 0 wrote model.pth and result.csv')
    print(f'1 process: {t1:.1f} s, 2 processes: {t2:.1f} s (small sample, 2 epochs, 32 px)')
    for f in fails: print('FAIL', f)
    if not a.keep: shutil.rmtree(d, ignore_errors=True)
    print(f"ddp check: {'passed' if not fails else 'failed'}")
    sys.exit(1 if fails else 0)

if __name__ == '__main__': sys.exit(main())
