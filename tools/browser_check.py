#!/usr/bin/env python3
"""Run a notebook in JupyterLab in a real browser and check that it renders: no errors, a progress-bar widget,
matplotlib figures, and live widgets.

Starts JupyterLab (the venv's) on 127.0.0.1 with a token and a free port, on a temporary copy of the notebook (the
file on disk is never touched), with IN_TEST=1 so that the tutorial runs its small mode. Drives Debian's chromium
through Playwright for Python (no Playwright browser download): opens the notebook, runs all cells from the Run menu,
waits for the kernel, checks the outputs, also drives the dataset browser and the upload widget, saves screenshots,
and shuts the server down. On failure it names the cell (index and first source line) and the error.

With --report RUN/report.html it also opens that run report (a file, no server) and checks that it shows with no
console errors and that every image in it loads; the screenshot is report.png.

usage: tools/browser_check.py [--notebook nbs/00_start_here.ipynb] [--out browser-check] [--venv .venv] [--report FILE]
exit status: 0 pass, 1 check failed, 2 could not run (missing chromium or playwright)
"""
from __future__ import annotations
import argparse, json, os, re, secrets, shutil, signal, socket, subprocess, sys, tempfile, time, traceback, urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
                 '--disable-component-update', '--no-first-run']
# What failure looks like in an output area (JupyterLab renders error outputs as this mime type too)
STDERR = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
FATAL = re.compile(r'Traceback|^\w*(Error|Exception)\b|IProgress not found|Error displaying widget', re.M)


class CheckFailed(Exception): pass


def free_port() -> int:
    "A TCP port that is free on 127.0.0.1 right now."
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def api(url: str, token: str, method: str = 'GET', timeout: float = 5):
    "Call the Jupyter server's REST API; the decoded JSON (or None for an empty body)."
    req = urllib.request.Request(url, method=method, headers={'Authorization': f'token {token}'})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        body = r.read()
    return json.loads(body) if body else None


def write_settings(config_dir: Path):
    "JupyterLab user settings for an unattended run: no news or update checks, no autosave."
    settings = {'@jupyterlab/apputils-extension/notification': {'fetchNews': 'false', 'checkForUpdates': False},
                '@jupyterlab/docmanager-extension/plugin': {'autosave': False}}
    for plugin, values in settings.items():
        pkg, name = plugin.rsplit('/', 1)
        p = config_dir/'lab'/'user-settings'/pkg/f'{name}.jupyterlab-settings'
        p.parent.mkdir(parents=True, exist_ok=True); p.write_text(json.dumps(values))


def start_server(venv: Path, root: Path, tmp: Path, log) -> tuple[subprocess.Popen, str, str]:
    "Start `jupyter lab` on a free port of 127.0.0.1 with a random token; return the process, base URL and token."
    port, token = free_port(), secrets.token_hex(16)
    (tmp/'tmp').mkdir()
    # IN_TEST: the tutorial's small mode. CAT12_KEEP_FILES: it keeps its files after its last cell, so that the widgets
    # can still be driven; TMPDIR puts them in our temp folder, removed at the end.
    env = dict(os.environ, IN_TEST='1', CAT12_KEEP_FILES='1', TMPDIR=str(tmp/'tmp'), JUPYTER_CONFIG_DIR=str(tmp/'config'),
               JUPYTER_RUNTIME_DIR=str(tmp/'runtime'), IPYTHONDIR=str(tmp/'ipython'))
    env.pop('JUPYTER_TOKEN', None)
    write_settings(tmp/'config')
    cmd = [str(venv/'bin'/'jupyter'), 'lab', '--no-browser', '--ip=127.0.0.1', f'--port={port}', '--ServerApp.port_retries=0',
           f'--IdentityProvider.token={token}', f'--ServerApp.root_dir={root}', '--LabApp.news_url=None',
           '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate']
    if hasattr(os, 'geteuid') and os.geteuid() == 0: cmd.append('--allow-root')   # CI containers run as root
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root, start_new_session=True)
    base = f'http://127.0.0.1:{port}'
    deadline = time.time() + 90
    while time.time() < deadline:
        if proc.poll() is not None: raise CheckFailed(f'jupyter lab exited with status {proc.returncode} (see {log.name})')
        try: api(f'{base}/api/status', token); return proc, base, token
        except OSError: time.sleep(0.5)
    raise CheckFailed(f'jupyter lab did not answer on {base} within 90 s (see {log.name})')


def stop_server(proc: subprocess.Popen, base: str, token: str) -> str:
    "Shut the server down through its API; terminate it if that fails. Returns how it ended."
    if proc.poll() is not None: return f'already exited ({proc.returncode})'
    try:   # kernels first, then the server
        for k in api(f'{base}/api/kernels', token): api(f'{base}/api/kernels/{k["id"]}', token, method='DELETE', timeout=30)
    except OSError: pass
    try: api(f'{base}/api/shutdown', token, method='POST')
    except OSError: pass
    try: proc.wait(30); return 'shut down through /api/shutdown'
    except subprocess.TimeoutExpired: pass
    os.killpg(proc.pid, signal.SIGTERM)
    try: proc.wait(15); return 'terminated'
    except subprocess.TimeoutExpired: os.killpg(proc.pid, signal.SIGKILL); proc.wait(); return 'killed'


# Every cell of the notebook as JupyterLab shows it, in document order (with the default windowing mode all cells
# stay in the DOM): its prompt, its error-like stderr outputs, and what rendered in its outputs.
CELLS_JS = """() => [...document.querySelectorAll('.jp-NotebookPanel .jp-Notebook .jp-Cell')].map(c => ({
  code: c.classList.contains('jp-CodeCell'),
  prompt: (c.querySelector('.jp-InputArea-prompt') || {}).textContent || '',
  stderr: [...c.querySelectorAll('%s')].map(o => o.innerText),
  imgs: c.querySelectorAll('.jp-OutputArea-output img').length,
  progress: c.querySelectorAll('.jp-OutputArea-output :is(.widget-hprogress, .widget-vprogress, .widget-progress)').length,
  widgets: c.querySelectorAll('.jp-OutputArea-output .jupyter-widgets').length,
}))""" % STDERR.replace("'", "\\'")


def cell_name(nb: dict, i: int) -> str:
    "Cell `i` of the notebook as 'cell i (`first source line`)'."
    src = nb['cells'][i]['source'] if i < len(nb['cells']) else ''
    src = ''.join(src) if isinstance(src, list) else src
    first = next((l for l in src.splitlines() if l.strip() and not l.startswith('#|')), '')
    return f'cell {i} (`{first[:80]}`)'


def kernel_state(base: str, token: str, name: str) -> str | None:
    "The execution state of the kernel of the notebook `name`, from the server (None: no kernel yet)."
    try: sessions = api(f'{base}/api/sessions', token)
    except OSError: return None
    return next((s['kernel']['execution_state'] for s in sessions if s.get('path', '').endswith(name) and s.get('kernel')), None)


def wait_run_finished(page, timeout: float):
    "Wait until no code cell is queued or running ('[*]') and the kernel is idle, twice in a row."
    deadline, calm, started = time.time() + timeout, 0, False
    while time.time() < deadline:
        prompts = page.evaluate("() => [...document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputArea-prompt')].map(p => p.textContent)")
        status = page.evaluate("() => (document.querySelector('.jp-Notebook-ExecutionIndicator') || {dataset: {}}).dataset.status || ''")
        busy = any('*' in p for p in prompts)
        started = started or busy or any(re.search(r'\[\d+\]', p) for p in prompts)
        calm = calm + 1 if started and not busy and status in ('idle', '') else 0
        if calm >= 2: return
        time.sleep(1)
    raise CheckFailed(f'the notebook was still running after {timeout:.0f} s')


def run_check(args, notes: list):
    "The whole check, adding what it saw to `notes`; raises CheckFailed."
    from playwright.sync_api import sync_playwright
    t0 = time.time()
    venv, out = Path(args.venv).resolve(), Path(args.out).resolve()
    nb_src = Path(args.notebook).resolve()
    out.mkdir(parents=True, exist_ok=True)
    for old in [*out.glob('*.png'), out/'failure.html']: old.unlink(missing_ok=True)   # this run's files only
    tmp = Path(tempfile.mkdtemp(prefix='cat12-browser-'))
    work = tmp/'nbs'; work.mkdir()
    nb_path = work/nb_src.name; shutil.copy2(nb_src, nb_path)          # JupyterLab only ever sees this copy
    nb = json.loads(nb_path.read_text())
    log = open(out/'jupyter.log', 'w')
    proc = base = token = None
    try:
        proc, base, token = start_server(venv, work, tmp, log)
        notes.append(f'jupyter lab ready at {base} in {time.time() - t0:.1f} s')
        with sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(str(tmp/'chromium-profile'), executable_path=args.chromium,
                                                        headless=True, args=CHROMIUM_ARGS,
                                                        viewport={'width': 1400, 'height': 1000})
            try:
                check_in_browser(ctx, base, token, nb_path.name, nb, out, args, notes)
                if args.report: check_report(ctx, Path(args.report).resolve(), out, notes)
            except Exception:
                if ctx.pages:   # what the page looked like, for the CI log reader
                    ctx.pages[0].screenshot(path=str(out/'failure.png'))
                    (out/'failure.html').write_text(ctx.pages[0].content())
                raise
            finally: ctx.close()
    finally:
        if proc is not None: notes.append('server: ' + stop_server(proc, base, token))
        log.close(); shutil.rmtree(tmp, ignore_errors=True)


def check_in_browser(ctx, base, token, name, nb, out, args, notes):
    page = ctx.pages[0] if ctx.pages else ctx.new_page()
    page.set_default_timeout(60_000)
    console_errors = []
    page.on('console', lambda m: console_errors.append(m.text) if m.type == 'error' else None)
    page.goto(f'{base}/lab/tree/{name}?token={token}')
    page.wait_for_selector('.jp-NotebookPanel .jp-Notebook .jp-Cell', timeout=120_000)
    t = time.time()
    # A notebook without kernel metadata asks which kernel to use: accept the default (Python 3), as a learner would.
    while time.time() - t < 60:
        dialog = page.locator('.jp-Dialog')
        if dialog.count():
            notes.append('dialog: ' + ' '.join(dialog.first.inner_text().split())[:200] + ' -> accepted')
            dialog.locator('.jp-Dialog-button.jp-mod-accept').first.click()
        status = kernel_state(base, token, name)
        if status == 'idle' and not dialog.count(): break
        time.sleep(0.5)
    else: raise CheckFailed(f'the kernel did not become idle within 60 s (state {status!r})')
    notes.append(f'kernel started: {time.time() - t:.1f} s')
    n_code = sum(c['cell_type'] == 'code' for c in nb['cells'])
    t = time.time()   # cells are attached progressively
    while (n_dom := page.locator('.jp-NotebookPanel .jp-Notebook .jp-Cell').count()) != len(nb['cells']):
        if time.time() - t > 60: raise CheckFailed(f'JupyterLab shows {n_dom} cells; the notebook has {len(nb["cells"])}')
        time.sleep(0.5)
    # Run > Run All Cells, through the menu bar
    t_run = time.time()
    page.locator('.jp-NotebookPanel .jp-Notebook').first.click(position={'x': 5, 'y': 5})
    page.locator('.lm-MenuBar-item', has_text=re.compile(r'^Run$')).click()
    page.locator('.lm-Menu-item:has(.lm-Menu-itemLabel:text-is("Run All Cells"))').click()
    wait_run_finished(page, args.timeout)
    notes.append(f'Run All Cells: {time.time() - t_run:.1f} s')
    cells = page.evaluate(CELLS_JS)
    # errors first: a failing cell stops Run All, so name the first one
    for i, c in enumerate(cells):
        for text in c['stderr']:
            if FATAL.search(text):
                last = [l for l in text.strip().splitlines() if l.strip()]
                err = next((l for l in reversed(last) if re.match(r'^\w*(Error|Exception|Warning)\b', l)), last[-1] if last else '')
                raise CheckFailed(f'{cell_name(nb, i)}: {err.strip()[:300]}')
            if text.strip(): notes.append(f'stderr in {cell_name(nb, i)} (not an error): {text.strip().splitlines()[0][:120]}')
    not_run = [i for i, c in enumerate(cells) if c['code'] and not re.search(r'\[\d+\]', c['prompt'])]
    if not_run: raise CheckFailed(f'{len(not_run)} code cells did not run, first {cell_name(nb, not_run[0])}')
    imgs, bars = sum(c['imgs'] for c in cells), sum(c['progress'] for c in cells)
    if not bars: raise CheckFailed('no progress-bar widget (.widget-hprogress) rendered: tqdm fell back to text?')
    if not imgs: raise CheckFailed('no matplotlib figure (an <img> in an output area) rendered')
    notes.append(f'{n_code} code cells ran; {imgs} figures and {bars} progress bars rendered')
    # the training progress bars and what follows them, on screen, are the main screenshot
    src = lambda i: ''.join(nb['cells'][i]['source']) if i < len(nb['cells']) else ''
    shown = next((i for i, c in enumerate(cells) if c['progress'] and 'fit(' in src(i)),
                 next(i for i, c in enumerate(cells) if c['progress']))
    page.locator('.jp-NotebookPanel .jp-Notebook .jp-Cell').nth(shown).evaluate("e => e.scrollIntoView({block: 'start'})")
    time.sleep(0.5)
    page.screenshot(path=str(out/'browser-check.png'))
    # widgets are live: drive the dataset browser and the upload widget through the page, as a user would
    browser = page.locator('.widget-vbox:has(.widget-dropdown select):has(.widget-html-content)')
    if browser.count(): check_dataset_browser(page, browser.first, out, notes)
    upload = page.locator('.widget-vbox:has(.widget-upload):has(.widget-html-content)')
    if upload.count(): check_upload(page, upload.first, out, notes)
    bad = [m for m in console_errors if 'widget' in m.lower() and 'error' in m.lower()]
    if bad: raise CheckFailed(f'browser console: {bad[0][:300]}')


def check_report(ctx, report: Path, out: Path, notes: list):
    "Open a run report from disk: no console errors, every <img> decoded (naturalWidth > 0); a full-page screenshot."
    if not report.is_file(): raise CheckFailed(f'{report}: no such report')
    page = ctx.new_page(); errors = []
    page.on('console', lambda m: errors.append(m.text) if m.type == 'error' else None)
    page.on('pageerror', lambda e: errors.append(str(e)))
    page.goto(report.as_uri()); page.wait_for_load_state('load')
    imgs = page.evaluate('() => Array.from(document.images).map(i => [i.alt, i.complete && i.naturalWidth > 0, i.naturalWidth, i.naturalHeight])')
    page.screenshot(path=str(out/'report.png'), full_page=True)
    bad = [a for a, ok, *_ in imgs if not ok]
    if errors: raise CheckFailed(f'report: browser console: {errors[0][:300]}')
    if not imgs or bad: raise CheckFailed(f'report: {len(imgs)} images, not loaded: {bad}')
    notes.append(f'report {report.name}: {len(imgs)} images all loaded ({", ".join(f"{a} {w}x{h}" for a, _, w, h in imgs)}); '
                 f'no console errors; screenshot report.png')
    page.close()


def check_dataset_browser(page, box, out, notes):
    "Pick another class in the dataset browser and wait for the kernel to redraw its facts."
    info = box.locator('.widget-html-content').first
    box.scroll_into_view_if_needed()
    before = info.inner_text()
    box.locator('.widget-dropdown select').first.select_option(index=3)
    deadline = time.time() + 30
    while info.inner_text() == before:
        if time.time() > deadline: raise CheckFailed('dataset browser: choosing another class changed nothing (no kernel round trip)')
        time.sleep(0.3)
    if 'real format' not in info.inner_text() or 'cannot show' in info.inner_text(): raise CheckFailed(f'dataset browser shows {info.inner_text()[:200]!r}')
    time.sleep(0.5); page.screenshot(path=str(out/'dataset-browser.png'))
    notes.append('dataset browser: choosing a class in the page redrew it from the kernel')


def check_upload(page, box, out, notes):
    "Upload a small generated JPEG into the upload widget and wait for the top-3 breeds."
    from io import BytesIO
    from PIL import Image, ImageDraw
    im = Image.new('RGB', (120, 100), (200, 160, 90)); ImageDraw.Draw(im).ellipse((20, 10, 100, 90), fill=(90, 60, 30))
    buf = BytesIO(); im.save(buf, format='JPEG')
    box.scroll_into_view_if_needed()
    with page.expect_file_chooser() as chooser:   # the widget's file input is not in the DOM: click, as a user does
        box.locator('.widget-upload').first.click()
    chooser.value.set_files(files=[{'name': 'my-cat.jpg', 'mimeType': 'image/jpeg', 'buffer': buf.getvalue()}])
    deadline = time.time() + 30
    while 'my-cat.jpg' not in box.inner_text():
        if time.time() > deadline: raise CheckFailed('upload widget: no prediction shown 30 s after the upload')
        time.sleep(0.3)
    rows = box.locator('tr').count()
    if rows != 3: raise CheckFailed(f'upload widget: expected the top 3 breeds, got {rows} rows: {box.inner_text()[:200]!r}')
    time.sleep(0.5); page.screenshot(path=str(out/'upload.png'))
    notes.append('upload widget: the kernel answered with the top 3 breeds')


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--notebook', default=str(ROOT/'nbs'/'00_start_here.ipynb'), help='the notebook to run (a copy is used)')
    p.add_argument('--out', default=str(ROOT/'browser-check'), help='folder for the screenshots and the server log')
    p.add_argument('--venv', default=str(ROOT/'.venv'), help='the virtual environment with jupyterlab and cat12')
    p.add_argument('--chromium', default='/usr/bin/chromium')
    p.add_argument('--timeout', type=float, default=600, help='seconds allowed for Run All Cells')
    p.add_argument('--report', default=None, help="also check this run report (e.g. cat12-run/report.html)")
    args = p.parse_args(argv)
    t0 = time.time()
    if not Path(args.chromium).is_file():
        print(f'browser check: {args.chromium} not found (apt-get install chromium)'); return 2
    try: import playwright  # noqa: F401
    except ImportError: print('browser check: playwright is not installed (pip install playwright)'); return 2
    notes, ok = [], True
    try: run_check(args, notes)
    except CheckFailed as e: notes.append(f'FAIL: {e}'); ok = False
    except Exception as e:   # a Playwright timeout or a lost page: say what was being waited for
        notes.append(f'FAIL: {type(e).__name__}: {(str(e).splitlines() or [""])[0][:300]}'); ok = False
        if not type(e).__module__.startswith('playwright'): traceback.print_exc()   # a bug of this script
    for n in notes: print('  ' + n)
    shots = sorted(Path(args.out).resolve().glob('*.png'))
    print(f'screenshots: {", ".join(str(s) for s in shots) or "none"}')
    print(f'browser check {"passed" if ok else "FAILED"} in {time.time() - t0:.1f} s ({Path(args.notebook).name})')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
