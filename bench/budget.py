"""Does `--budget` hold? `cat12 run --weights W --budget B` on the full generated sample, for each budget (bench/budget.py).

    python bench/budget.py [--weights FILE] [--budgets 120 240 600] [--seed 0]

On a quiet machine (nothing else running), for each budget, one `cat12 run` in a subprocess, as a learner would type
it: no --epochs and no --img-size, so that `choose_img_size` and `fit`'s auto plan from this machine's measurements and
fill the budget. From its output: the size and strategy chosen, the plan (epochs, estimated seconds), the epochs
trained, the seconds `fit` took (the budget covers `fit`: measuring, caching and training), the whole command's wall
time, and the test accuracy. The compute floor of the same run: `probe_speed(64)`'s training step, in seconds per image,
times the images an epoch trains on, is what one epoch cannot go below.
Results: bench/budget_results.md. `--weights` defaults to a `cat12 pretrain` made with the defaults when missing.
"""
from __future__ import annotations
import argparse, json, platform, re, subprocess, sys, tempfile, time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CAT12 = [str(Path(sys.executable).parent/'cat12')]   # the installed command, as a learner runs it

def cpu_flags() -> str:
    "The CPU's model and the flags that decide its speed (avx2, avx512*, amx)."
    try: info = Path('/proc/cpuinfo').read_text()
    except OSError: return platform.processor()
    model = re.search(r'model name\s*:\s*(.*)', info); flags = re.search(r'flags\s*:\s*(.*)', info)
    keep = sorted({f for f in (flags.group(1).split() if flags else []) if f.startswith(('avx2', 'avx512', 'amx'))})
    return f"{model.group(1) if model else '?'}; {' '.join(keep)}"

def one(weights: Path, budget: float, seed: int, out: Path) -> dict:
    "One `cat12 run` under `budget`, and what its output says."
    t = time.time()
    p = subprocess.run(CAT12 + ['run', '--weights', str(weights), '--budget', str(budget), '--seed', str(seed), '--out', str(out)],
                       capture_output=True, text=True)
    wall, text = time.time() - t, p.stdout + p.stderr
    if p.returncode: sys.exit(f'cat12 run --budget {budget} failed ({p.returncode}):\n{text[-3000:]}')
    num = lambda pat, cast=float: cast(m.group(1)) if (m := re.search(pat, text)) else None
    return dict(budget=budget, size=num(r'input size (\d+) px', int), strategy=num(r'strategy auto -> (\w+)', str),
                planned_epochs=num(r'plan: (\d+) epochs', int), estimate_s=num(r'plan: \d+ epochs, about (\d+) s'),
                epochs=num(r'; (\d+) epochs, \d+ planned', int), fit_s=num(r'took (\d+) s \('), wall_s=round(wall),
                test_acc=num(r'test accuracy: ([0-9.]+)'), replans=text.count('budget: epochs take'),
                changes=[l for l in text.splitlines() if l.startswith('budget: epochs take')])

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--weights', default=str(HERE/'source.pth'))
    ap.add_argument('--budgets', type=float, nargs='+', default=[120, 240, 600])
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args()
    weights = Path(a.weights)
    if not weights.is_file():
        print(f'pretraining with the defaults into {weights} ...', flush=True)
        subprocess.run(CAT12 + ['pretrain', '--out', str(weights)], check=True)
    from cat12.strategies import probe_speed
    from cat12.hardware import autocast_dtype
    amp = autocast_dtype('cpu')
    floor = probe_speed(64, 32, amp)['train'] * 1944
    rows = []
    with tempfile.TemporaryDirectory() as t:
        for b in a.budgets:
            rows.append(one(weights, b, a.seed, Path(t)/f'run-{b:.0f}')); print(json.dumps(rows[-1]), flush=True)
    lines = ['# Does `--budget` hold?', '',
             f"`cat12 run --weights W --budget B` on the full generated sample (1944 train / 216 valid / 240 test images), seed {a.seed}, "
             f"no --epochs and no --img-size. Machine: {cpu_flags()}; {__import__('os').cpu_count()} cores; autocast {amp}. "
             f"Compute floor of one epoch at 64 px (`probe_speed` training step x 1944 images): {floor:.0f} s.", '',
             '| budget, s | size, strategy | plan: epochs, estimate s | epochs trained | plan changed | fit took, s | took / budget | whole command, s | test accuracy |',
             '|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        lines.append(f"| {r['budget']:.0f} | {r['size']} px, {r['strategy']} | {r['planned_epochs']}, {r['estimate_s']:.0f} | {r['epochs']} | {r['replans']}x "
                     f"| {r['fit_s']:.0f} | {r['fit_s'] / r['budget']:.0%} | {r['wall_s']} | {r['test_acc']:.4f} |")
    lines += ['', 'Where `fit` changed its plan while training (its own lines):', '']
    lines += [f"- {r['budget']:.0f} s: " + ('; '.join(f'`{c}`' for c in r['changes']) or 'never') for r in rows]
    text = '\n'.join(lines) + '\n'
    (HERE/'budget_results.md').write_text(text); print(text)

if __name__ == '__main__': main()
