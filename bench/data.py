"""Decode-and-prepare cost of the training images: the naive way against cat12's way, measured in the same run.

- naive: extract the zip, then every epoch open each file with PIL, `convert('RGB')` and resize it to the training size;
- cat12: `prepare` (extract, check and decode every image once, into a cache), then every epoch read the cache
  through the training transforms (random resized crop, flip, normalise).

Both read every labelled training image once per epoch, one process, batches of 32, no model. Prints each epoch's
time, the median epoch, the totals and their ratio. The machine may be shared: compare ratios, not seconds.

    python bench/data.py [DATA] [--epochs 3] [--img-size 224] [--workers 1]

Without DATA it writes the full generated sample (2160 + 240 images) into a temporary folder first.
"""
import argparse, os, statistics, sys, tempfile, time, zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from cat12.data import CachedImages, find_data, inspect_data, prepare, read_labels, resize_size, train_tfms
from cat12.sample import make_sample


class NaiveImages(Dataset):
    "The usual first attempt: open, convert and resize the original file on every access."
    def __init__(self, paths, labels, size): self.paths, self.labels, self.size = paths, labels, size
    def __len__(self): return len(self.paths)
    def __getitem__(self, i):
        im = Image.open(self.paths[i]).convert('RGB').resize((self.size, self.size), Image.BILINEAR)
        return torch.from_numpy(np.asarray(im)).permute(2, 0, 1).float().div(255), int(self.labels[i])


def epochs(ds, n: int) -> list:
    "Seconds of each of `n` passes over `ds` in batches of 32 (one process)."
    out = []
    for _ in range(n):
        t = time.perf_counter()
        for xb, yb in DataLoader(ds, batch_size=32, shuffle=True, num_workers=0): pass
        out.append(time.perf_counter() - t)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('data', nargs='?', help='a Cat-12 folder (default: write the full generated sample)')
    p.add_argument('--epochs', type=int, default=3)
    p.add_argument('--img-size', type=int, default=224)
    p.add_argument('--workers', type=int, default=1, help='decoding processes for prepare (default 1, like naive)')
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if a.data is None:
            t = time.perf_counter(); data = make_sample(tmp/'data', preset='full')
            print(f'wrote the full sample in {time.perf_counter() - t:.0f} s')
        else: data = Path(a.data)
        files = find_data(data)
        labels, _ = read_labels(files.labels)
        print(f'{data}: {len(labels)} labelled training images; {a.epochs} epochs at {a.img_size} px; '
              f'{os.cpu_count()} CPUs (shared machine: timings are noisy, compare the ratio)')

        # naive: extract once, then decode every file every epoch
        t = time.perf_counter()
        with zipfile.ZipFile(files.train) as zf: zf.extractall(tmp/'naive')
        extract = time.perf_counter() - t
        by_name = {q.name: q for q in (tmp/'naive').rglob('*') if q.is_file()}
        have = labels[labels.name.isin(by_name)]
        naive = epochs(NaiveImages([by_name[n] for n in have.name], have.label.to_numpy(), a.img_size), a.epochs)

        # cat12: decode once into the cache, then read the cache every epoch
        t = time.perf_counter()
        prep = prepare(data, tmp/'work', cache_size=resize_size(a.img_size), progress=False, workers=a.workers)
        once = time.perf_counter() - t
        x, y = prep.arrays('train'); xv, yv = prep.arrays('val')
        x, y = np.concatenate([x, xv]), np.concatenate([y, yv])       # the same images as the naive pass
        cached = epochs(CachedImages(x, y, train_tfms(a.img_size)), a.epochs)

        naive_total, cat_total = extract + sum(naive), once + sum(cached)
        print(f'naive : extract {extract:6.1f} s, epochs ' + ', '.join(f'{e:.1f}' for e in naive)
              + f' s (median {statistics.median(naive):.1f} s); total {naive_total:.1f} s')
        print(f'cat12 : prepare {once:6.1f} s, epochs ' + ', '.join(f'{e:.1f}' for e in cached)
              + f' s (median {statistics.median(cached):.1f} s); total {cat_total:.1f} s')
        print(f'ratio : total naive / cat12 = {naive_total / cat_total:.2f}x; '
              f'median epoch naive / cat12 = {statistics.median(naive) / statistics.median(cached):.1f}x; '
              f'prepare = {once / statistics.median(naive):.2f} naive epochs')

        # the report of `cat12 inspect` (reads the zips in memory, decodes every image in draft mode)
        t = time.perf_counter(); rep = inspect_data(data); t_inspect = time.perf_counter() - t
        t = time.perf_counter(); inspect_data(data, full=False); t_quick = time.perf_counter() - t
        print(f'inspect_data: {t_inspect:.1f} s full decode (up to 2 processes), {t_quick:.1f} s headers only; '
              f'{len(rep.problems)} problems')


if __name__ == '__main__': main(sys.argv[1:])
