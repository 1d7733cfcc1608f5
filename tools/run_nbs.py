"""Execute notebooks in a real Jupyter kernel, as JupyterLab's Run All does.

    python tools/run_nbs.py [NB ...] [--fresh]   # lessons in learner mode: save their outputs, write their run time
    python tools/run_nbs.py --check [NB ...]     # every notebook in test mode (IN_TEST): the learner-install check

Learner mode (the default) runs the lessons (nbs/0*.ipynb) in reading order, without IN_TEST, each in its own
kernel with nbs/ as the working directory, so that they share nbs/lesson-files/ as a learner's would. It then
keeps the outputs small (progress bars and widget views are dropped: they are live-only; cat12's widgets leave a
still picture), writes the measured run time into the `*Run time: ...*` line among the lesson's
first three cells, and runs nbdev_clean. It sets CAT12_CHECK_CLAIMS, so that a claim of the text that fails on the
drawn sample (`Lesson.expect`) stops the run. Before a lesson runs, the files it keeps for itself are removed
(lesson-files/NN-*, named after lesson NN), so that its time is a first run's; the shared ones (the sample, the work
folder, the pretrained start, the trained run) stay, as the lessons before it left them. --fresh removes
nbs/lesson-files/ first, so that the times include making the shared pretrained start and the trained run.

--check runs every notebook, lessons and internals, with IN_TEST=1, two at a time, and saves nothing. Cells that
nbdev_test skips (#| eval: false, and the flags in settings.ini's tst_flags, e.g. #| slow) are skipped here too.
It ends with 'N passed, N failed' and exits non-zero on any failure.
"""
import argparse, configparser, json, os, platform, re, shutil, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
from nbconvert.preprocessors import ExecutePreprocessor
from cat12.lessons import ran_key

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT/'nbs'
LIVE_ONLY = 'application/vnd.jupyter.widget-view+json'   # a widget's view: nothing to see in a saved notebook


def clean(path: Path) -> None:
    "nbdev_clean one notebook, as the commit hooks and CI expect it."
    subprocess.run([str(Path(sys.executable).parent/'nbdev_clean'), '--fname', str(path)], check=True, cwd=ROOT)


def lessons() -> list[Path]: return sorted(NBS.glob('0[0-9]*_*.ipynb'))
def notebooks() -> list[Path]: return sorted(p for p in NBS.glob('*.ipynb') if not p.name.startswith(('_', '.')))


def skip_flags() -> set:
    cfg = configparser.ConfigParser(); cfg.read(ROOT/'settings.ini')
    return set(cfg['DEFAULT'].get('tst_flags', 'notest').split()) | {'notest'}


def skipped(cell, flags: set) -> bool:
    "Does nbdev_test skip this cell? (directives in the leading comment block only)"
    for line in cell.source.splitlines():
        if not line.startswith('#|'): break
        d = line[2:].strip().replace(' ', '')
        if d in flags or d == 'eval:false': return True
    return False


def execute(path: Path, test: bool, timeout: int = 1800):
    "Run `path` top to bottom in a fresh kernel; return (notebook, seconds, error or None)."
    nb = nbformat.read(path, as_version=4)
    kept = nb.cells
    if test:
        flags = skip_flags()
        nb.cells = [c for c in nb.cells if not (c.cell_type == 'code' and skipped(c, flags))]
    ep = ExecutePreprocessor(timeout=timeout, kernel_name='python3')
    t0, err = time.time(), None
    try: ep.preprocess(nb, {'metadata': {'path': str(path.parent)}})
    except Exception as e: err = str(e).strip().splitlines()[-1][:300] if str(e).strip() else type(e).__name__
    if test: nb.cells = kept
    return nb, time.time() - t0, err


def strip_progress(text: str) -> str:
    "The text as a terminal would leave it, without progress-bar lines (what a \\r overwrote is gone)."
    lines = (line.rsplit('\r', 1)[-1] for line in text.split('\n'))
    return '\n'.join(l for l in lines if not re.search(r'\d+%\|', l))


def smaller_image(data: dict) -> dict:
    "A large PNG (a grid of pictures, which PNG packs poorly) as a JPEG when that is less than half its size."
    png = data.get('image/png')
    if not png or len(png) < 100_000: return data
    import base64, io
    from PIL import Image
    buf = io.BytesIO()
    Image.open(io.BytesIO(base64.b64decode(png))).convert('RGB').save(buf, 'JPEG', quality=85)
    jpg = base64.b64encode(buf.getvalue()).decode()
    if len(jpg) > len(png) / 2: return data
    return {('image/jpeg' if k == 'image/png' else k): (jpg if k == 'image/png' else v) for k, v in data.items()}


def slim(nb) -> None:
    "Drop what only a live kernel can show (widget views, progress-bar text); large picture grids as JPEG."
    for c in nb.cells:
        if c.cell_type != 'code': continue
        outs = []
        for o in c.get('outputs', []):
            if o.get('output_type') in ('display_data', 'execute_result') and LIVE_ONLY in o.get('data', {}):
                o['data'] = {k: v for k, v in o['data'].items() if k != LIVE_ONLY}
                if set(o['data']) <= {'text/plain'}: continue      # 'HBox(children=...)' says nothing either; cat12's widgets add a still
            if o.get('output_type') == 'stream':
                o['text'] = strip_progress(o.get('text', ''))
                if not o['text'].strip(): continue
            if 'data' in o: o['data'] = smaller_image(o['data'])
            outs.append(o)
        c.outputs = outs
    nb.metadata.pop('widgets', None)


def cpu_name() -> str:
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'): return line.split(':', 1)[1].strip()
    except OSError: pass
    return platform.processor() or platform.machine()


def minutes(seconds: float) -> str: return 'under 1 min' if seconds < 60 else f'about {round(seconds / 60)} min'


def write_time(nb, seconds: float, extra: str = '') -> None:
    "Put the measured run time into the lesson's `*Run time: ...*` line (in its first three cells)."
    line = f"*Run time: {minutes(seconds)}{extra} on {os.cpu_count()} CPU cores ({cpu_name()}).*"
    for c in nb.cells[:3]:
        if c.cell_type == 'markdown' and '*Run time:' in c.source:
            c.source = re.sub(r'\*Run time:[^\n]*\*', line, c.source); return
    raise SystemExit('no "*Run time: ...*" line in the first cells')


def write_index_time(name: str, seconds: float) -> None:
    "Put the lesson's run time into its row of the lessons table in nbs/index.ipynb (README.md is built from it)."
    index = NBS/'index.ipynb'
    nb = nbformat.read(index, as_version=4)
    row = re.compile(r'^(\| \[' + re.escape(name) + r'\]\([^)]*\) \|[^\n]*\| )[^|\n]*( \|)$', re.M)
    for c in nb.cells:
        if c.cell_type == 'markdown' and row.search(c.source):
            c.source = row.sub(lambda m: f'{m[1]}{minutes(seconds)}{m[2]}', c.source)
            nbformat.write(nb, index); return
    print(f'note: no row for {name} in the lessons table of nbs/index.ipynb')


MADE_START = 'make the pretrained start'   # in the run-time line of the lesson that makes it (00)


def learner(paths: list[Path], fresh: bool) -> int:
    os.environ.pop('IN_TEST', None)
    os.environ['CAT12_CHECK_CLAIMS'] = '1'   # the text's claims must hold on the drawn sample (Lesson.expect)
    files = NBS/'lesson-files'
    if fresh: shutil.rmtree(files, ignore_errors=True)
    rows, fail = [], 0
    for p in paths:
        for own in files.glob(p.stem.split('_')[0] + '-*'):   # this lesson's own files: its time is a first run's
            shutil.rmtree(own) if own.is_dir() else own.unlink()
        had_weights = (files/'source.pth').is_file()
        nb, s, err = execute(p, test=False)
        if err: print(f'FAIL {p.name} after {s:.0f} s: {err}'); fail += 1; continue
        extra = ''
        if not had_weights and (files/'source.json').is_file():
            made = json.loads((files/'source.json').read_text()).get('seconds', 0)
            extra = f" (of which about {max(1, round(made / 60))} min {MADE_START}, once for all lessons)"
        # the lesson that makes the pretrained start, run again with it already made: its time would leave that out,
        # so its line keeps the time of the run that made it (from --fresh)
        reused = had_weights and any(MADE_START in c.source for c in nb.cells[:3] if c.cell_type == 'markdown')
        slim(nb)
        if reused: print(f'note: {p.name} reused the pretrained start; its run-time line keeps the --fresh measurement')
        else: write_time(nb, s, extra)
        for c in nb.cells:                   # what these outputs came from: `lesson_contract` finds a cell edited since
            if c.cell_type == 'code': c.metadata['ran'] = ran_key(c.source)
        nbformat.write(nb, p)
        if not reused: write_index_time(p.stem, s)
        clean(p)
        rows.append((p.name, s, p.stat().st_size))
        print(f'ok   {p.name}: {s:.0f} s, {p.stat().st_size / 1e3:.0f} kB', flush=True)
    clean(NBS/'index.ipynb')
    subprocess.run([sys.executable, str(ROOT/'tools'/'build_readme.py')], check=True, cwd=ROOT)
    print(f'{len(rows)} lessons, {sum(r[1] for r in rows) / 60:.1f} min, outputs {sum(r[2] for r in rows) / 1e6:.2f} MB in all')
    print(f'{len(rows)} passed, {fail} failed')
    return fail


def check(paths: list[Path]) -> int:
    os.environ['IN_TEST'] = '1'
    os.environ.setdefault('OMP_NUM_THREADS', '1')   # two kernels on two cores
    def one(p):
        _, s, err = execute(p, test=True, timeout=900)
        print(f"{'FAIL' if err else 'ok  '} {p.name} ({s:.0f} s){': ' + err if err else ''}", flush=True)
        return err is None
    t0 = time.time()
    # the most code first (a proxy for the longest run), so that the two workers finish together
    code = lambda p: sum(len(c.source) for c in nbformat.read(p, as_version=4).cells if c.cell_type == 'code')
    order = sorted(paths, key=code, reverse=True)
    with ThreadPoolExecutor(2) as ex: ok = list(ex.map(one, order))
    print(f'notebooks executed in {time.time() - t0:.0f} s')
    print(f'{sum(ok)} passed, {len(ok) - sum(ok)} failed')
    return len(ok) - sum(ok)


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('nbs', nargs='*', help='notebooks (default: the lessons, or with --check every notebook)')
    ap.add_argument('--check', action='store_true', help='test mode, every notebook, nothing saved')
    ap.add_argument('--fresh', action='store_true', help='learner mode: remove nbs/lesson-files first')
    ap.add_argument('--slim-only', action='store_true', help='only shrink the saved outputs of the lessons (no run)')
    a = ap.parse_args()
    if a.slim_only:
        for p in [Path(p).resolve() for p in a.nbs] or lessons():
            nb = nbformat.read(p, as_version=4); slim(nb); nbformat.write(nb, p)
            clean(p)
            print(f'{p.name}: {p.stat().st_size / 1e3:.0f} kB')
        sys.exit(0)
    paths = [Path(p).resolve() for p in a.nbs] or (notebooks() if a.check else lessons())
    sys.exit(1 if (check(paths) if a.check else learner(paths, a.fresh)) else 0)
