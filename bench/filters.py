"""The first convolution of ResNet50 from random weights and from `cat12 pretrain`'s weights, as one PNG; and how far
each stage's convolutions moved from their exact random start (mean |w - w0| / |w0|), printed.

    python bench/filters.py [--weights bench/source.pth] [--out bench/transfer_filters.png]

Read by nbs/16_transfer.ipynb (the tests do not rerun it).
"""
import argparse
from pathlib import Path

HERE = Path(__file__).resolve().parent

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--weights', default=str(HERE/'source.pth'))
    p.add_argument('--out', default=str(HERE/'transfer_filters.png'))
    a = p.parse_args()
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from cat12.model import create_model
    from cat12.viz import show_filters
    random, pre = create_model(12, pretrained=False), create_model(12, weights_path=a.weights)
    figs = [show_filters(random.conv1.weight, n=32, title='ResNet50 conv1, random weights'),
            show_filters(pre.conv1.weight, n=32, title=f"conv1 after 'cat12 pretrain' ({Path(a.weights).name})")]
    imgs = []
    for f in figs:
        f.canvas.draw(); imgs.append(f.canvas.buffer_rgba())
    import numpy as np
    w = max(np.asarray(i).shape[1] for i in imgs)
    pad = lambda x: np.pad(np.asarray(x), ((0, 0), (0, w - np.asarray(x).shape[1]), (0, 0)), constant_values=255)
    plt.imsave(a.out, np.concatenate([pad(i) for i in imgs]))
    print(f'wrote {a.out}')
    import json, pandas as pd
    from cat12.model import load_pretrained
    side = json.loads(Path(a.weights).with_suffix('.json').read_text())
    w1 = load_pretrained(a.weights)                       # pretrain's start, rebuilt exactly: its seed and zero_init
    w0 = create_model(len(side['classes']), pretrained=False, seed=side['seed'], zero_init=True).state_dict()
    change = {}
    for k, w in w1.items():
        if w.ndim == 4: change.setdefault(k.split('.')[0] if k.startswith('layer') else 'stem', []).append(((w - w0[k]).norm() / w0[k].norm()).item())
    print(f"relative change from the random start ({side['epochs']} epochs at {side['img_size']} px, source accuracy {side['source_acc']}):")
    print(pd.Series({s: float(np.mean(c)) for s, c in change.items()}).round(2).to_string())

if __name__ == '__main__':
    main()
