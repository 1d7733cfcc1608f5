"""The first convolution of ResNet50 from random weights and from `cat12 pretrain`'s weights, as one PNG.

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

if __name__ == '__main__':
    main()
