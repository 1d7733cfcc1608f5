#!/usr/bin/env python
"""The GPU check: what cat12 does on this machine's accelerator, in under 5 minutes. Run it on the first GPU machine.

Usage: tools/gpu_check [--dry-run] [--out DIR]

Steps (each one reported, and any failure named at the end):
1. the device, its compute capability, how many there are, and the precision `fit` chooses (`autocast_dtype`);
2. `cat12 run` on the small sample with `--strategy full`, uninterrupted;
3. the same run killed (SIGKILL) after its first epoch, then continued with `--resume`: its history is compared with
   the uninterrupted run's (exactly equal on a CPU; on a GPU cuDNN may pick other kernels, so the difference is reported);
4. `torchrun --nproc_per_node N` on the N GPUs there (2 CPU processes with --dry-run);
5. training and prediction speed at 224 px, in images per second;
6. `cat12 pretrain` with its defaults, timed (on the GPU: `fit` trains on the default device), and its source accuracy;
7. a report, DIR/gpu_check.md and DIR/gpu_check.json with --out DIR; without it the report is printed and the
   temporary folder (about 1.2 GB of runs) removed.

--dry-run runs every step on the CPU, at 32 px and with a few images, so that CI can check the script itself.
"""
import argparse, json, os, platform, shutil, signal, subprocess, sys, tempfile, time
from pathlib import Path

import pandas as pd
import torch

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--dry-run', action='store_true', help='run every step on the CPU, small and fast')
    ap.add_argument('--out', default=None, help='folder for the runs and the report, kept (default: a temporary folder, removed at the end, the report printed)')
    a = ap.parse_args()
    d = Path(a.out or tempfile.mkdtemp(prefix='cat12-gpu-check-')); d.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', '1' if a.dry_run else '4'))
    if a.dry_run: env['CUDA_VISIBLE_DEVICES'] = ''; os.environ['CUDA_VISIBLE_DEVICES'] = ''
    from cat12.hardware import autocast_dtype, default_device
    device = torch.device('cpu') if a.dry_run else default_device()
    rep, fails = dict(dry_run=a.dry_run, torch=torch.__version__, python=platform.python_version()), []
    if device.type == 'cuda':
        rep.update(device=torch.cuda.get_device_name(device), capability='.'.join(map(str, torch.cuda.get_device_capability(device))),
                   gpus=torch.cuda.device_count(), bf16_claimed=torch.cuda.is_bf16_supported())
    else: rep.update(device=f'{device.type}: {platform.processor() or platform.machine()}', capability=torch.backends.cpu.get_cpu_capability(), gpus=0)
    rep['precision'] = str(autocast_dtype(device)).replace('torch.', '') if autocast_dtype(device) else 'float32'
    print(f"device: {rep['device']}, capability {rep['capability']}, {rep['gpus']} GPU(s); precision chosen: {rep['precision']}")
    if not a.dry_run and device.type != 'cuda': print('warning: no CUDA device here; the checks run on', device.type)

    py = sys.executable
    cat12 = [py, '-c', 'import sys; from cat12.cli import main; sys.exit(main())']
    size, epochs = (32, 4) if a.dry_run else (64, 4)
    common = ['--epochs', str(epochs), '--img-size', str(size), '--no-pretrained', '--seed', '0', '--strategy', 'full',
              '--batch-size', '16', '--workers', '2']
    def sh(cmd, **kw):
        t = time.time(); r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, **kw)
        if r.returncode: print(' '.join(map(str, cmd)), '\n', (r.stdout + r.stderr)[-2500:])
        return time.time() - t, r

    if not (d/'data'/'train_list.txt').is_file():
        _, r = sh(cat12 + ['sample', d/'data', '--preset', 'small'])
        if r.returncode: fails.append('cat12 sample failed')
    # 2. uninterrupted
    t, r = sh(cat12 + ['run', d/'data', '--out', d/'ref'] + common)
    rep['run_s'] = round(t, 1)
    if r.returncode: fails.append(f'cat12 run failed (rc {r.returncode})')
    else: print(f'cat12 run --strategy full: {t:.1f} s; ' + next((l for l in r.stdout.splitlines() if l.startswith('test accuracy')), ''))
    # 3. killed after epoch 1, then resumed
    p = subprocess.Popen([str(c) for c in cat12 + ['run', d/'data', '--out', d/'kill'] + common], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    hist, t0 = d/'kill'/'history.csv', time.time()
    while p.poll() is None and time.time() - t0 < 300:
        if hist.is_file() and len(pd.read_csv(hist)) >= 1: break
        time.sleep(0.05)
    killed = p.poll() is None
    if killed: p.send_signal(signal.SIGKILL)
    p.wait()
    done = len(pd.read_csv(hist)) if hist.is_file() else 0
    if not killed: fails.append(f'the run to kill ended first (rc {p.returncode}) after {done} epochs')
    else:
        t, r = sh(cat12 + ['run', d/'data', '--out', d/'kill', '--resume', d/'kill'/'last.pth'] + common)
        if r.returncode: fails.append(f'resume failed (rc {r.returncode})')
        elif not r.returncode and (d/'ref'/'history.csv').is_file():
            h1, h2 = (pd.read_csv(x/'history.csv') for x in (d/'ref', d/'kill'))
            diff = float((h1.valid_loss - h2.valid_loss).abs().max()) if len(h1) == len(h2) else float('inf')
            rep.update(killed_after_epochs=done, resume_max_valid_loss_diff=diff)
            print(f'killed after epoch {done}, resumed: largest valid_loss difference to the uninterrupted run {diff:.2e}')
            if device.type == 'cpu' and diff != 0: fails.append(f'resume is not exact on the CPU (difference {diff})')
            if not diff < 0.05: fails.append(f'resumed run differs from the uninterrupted one by {diff}')
    # 4. torchrun on every GPU (2 CPU processes in a dry run)
    n = 2 if device.type != 'cuda' else max(1, torch.cuda.device_count())
    launcher = d/'cat12-launch'; launcher.write_text(f'#!{py}\nimport sys\nfrom cat12.cli import main\nsys.exit(main())\n'); launcher.chmod(0o755)
    t, r = sh([py, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', n, '--no-python', launcher,
               'run', d/'data', '--out', d/'ddp'] + common[:-4] + ['--batch-size', str(max(2, 16 // n)), '--workers', '2'])
    rep.update(torchrun_processes=n, torchrun_s=round(t, 1))
    if r.returncode: fails.append(f'torchrun with {n} processes failed (rc {r.returncode})')
    else: print(f'torchrun --nproc_per_node {n}: {t:.1f} s')
    # 5. speed at 224 px
    try:
        from cat12.learner import TrainConfig, train_loop
        from cat12.model import create_model
        from cat12.data import load_prepared
        from cat12.predict import load_model, predict
        from torch.utils.data import DataLoader, TensorDataset
        bs, steps = (4, 2) if a.dry_run else (64, 20)
        x, y = torch.randn(bs * steps, 3, 224, 224), torch.randint(0, 12, (bs * steps,))
        dl = DataLoader(TensorDataset(x, y), bs)
        m = create_model(12, pretrained=False)
        train_loop(m, dl, DataLoader(TensorDataset(x[:bs], y[:bs]), bs), TrainConfig(1, 1e-3, amp=autocast_dtype(device), progress=False), device=device)  # warm-up
        if device.type == 'cuda': torch.cuda.synchronize()
        t = time.time(); train_loop(m, dl, DataLoader(TensorDataset(x[:bs], y[:bs]), bs), TrainConfig(1, 1e-3, amp=autocast_dtype(device), progress=False), device=device)
        if device.type == 'cuda': torch.cuda.synchronize()
        rep['train_img_s_224'] = round(bs * (steps + 1) / (time.time() - t), 1)   # (and one evaluation batch)
        if (d/'ref'/'model.pth').is_file():
            model = load_model(d/'ref'/'model.pth', device=device)
            imgs = sorted(p for p in load_prepared(d/'ref'/'work').test.iterdir() if p.is_file() and not p.name.startswith('.')) * (1 if a.dry_run else 20)
            predict(model, imgs[:16], img_size=224, batch_size=16, progress=False)   # warm-up
            t = time.time(); preds = predict(model, imgs, img_size=224, batch_size=16 if a.dry_run else 64, progress=False)
            rep['predict_img_s_224'] = round(len(preds) / (time.time() - t), 1)
        print(f"at 224 px: training {rep['train_img_s_224']} img/s (batch {bs}, {rep['precision']}), "
              f"prediction {rep.get('predict_img_s_224')} img/s (fp32)")
    except Exception as e: fails.append(f'speed at 224 px: {type(e).__name__}: {e}')
    # 6. `cat12 pretrain` with its defaults (the stand-in for ImageNet weights), timed; a tiny one in a dry run
    pre = ['--epochs', '1', '--img-size', '32', '--per-class', '2'] if a.dry_run else []
    t, r = sh(cat12 + ['pretrain', '--out', d/'source.pth', '--cache', d/'source-cache'] + pre)
    if r.returncode: fails.append(f'cat12 pretrain failed (rc {r.returncode})')
    else:
        side = json.loads((d/'source.json').read_text())
        rep.update(pretrain_s=round(t, 1), pretrain_epochs=side['epochs'], pretrain_source_acc=side['source_acc'])
        print(f"cat12 pretrain{' (tiny)' if a.dry_run else ''}: {t:.1f} s in all, {side['epochs']} epochs, source accuracy {side['source_acc']}")
    # 7. report
    rep['failures'] = fails
    (d/'gpu_check.json').write_text(json.dumps(rep, indent=1))
    (d/'gpu_check.md').write_text('| what | found |\n|---|---|\n' + ''.join(f'| {k} | {v} |\n' for k, v in rep.items()))
    if a.out: print(f"report: {d/'gpu_check.md'}")
    else: print((d/'gpu_check.md').read_text(), end=''); shutil.rmtree(d, ignore_errors=True)   # its runs hold ~1.2 GB
    for f in fails: print('FAIL', f)
    print(f"gpu check{' (dry run, CPU)' if a.dry_run else ''}: {'passed' if not fails else 'failed'}")
    return 1 if fails else 0

if __name__ == '__main__': sys.exit(main())
