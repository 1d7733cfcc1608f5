"""The lessons' diagrams, drawn with matplotlib into nbs/images/ (committed; rerun after changing one), and
pipeline_01.png ... pipeline_09.png: 00's pipeline with each lesson's step highlighted, the picture lessons 01-09 open with.

    python tools/diagrams.py
"""
import io
from pathlib import Path
from PIL import Image
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt

OUT = Path(__file__).resolve().parent.parent/'nbs'/'images'

def pipeline(here=(), caption=None):
    """00_start_here: the whole path, left to right, with the functions the lessons call at each step.
    Lessons 01-09 open with it too: the boxes `here` (0-6) in orange, the others greyed, `caption` in the top right."""
    # the whole game of 00, left to right: (the data at this step, the cat12 functions the lessons call for it)
    steps = [('2 zips +\ntrain_list.txt', 'find_data\nread_labels'),
             ('RGB images in\nclass folders\n00..11,\ntrain / val', 'prepared(L)\n/ prepare'),
             ('batches\nof tensors', 'get_dls'),
             ('ResNet50:\npretrained start\n+ new head', 'pretrained_start\ncreate_model'), ('fine-tune', 'fit'),
             ('model.pth', 'load_model'), ('result.csv\n(name,label)', 'predict +\nwrite_submission')]
    xs = [0.066, 0.220, 0.364, 0.512, 0.656, 0.775, 0.921]                         # box centres, spaced by hand
    # each box's look: (fill, edge, text colour, weight, size, functions' colour); nothing highlighted: 00's, unchanged
    look = [('#e8f0fb', '#4a6fa5', 'black', 'normal', 9, '0.3') if not here else ('#f6c36b', '#7a4a00', 'black', 'bold', 8.5, '0.1')
            if i in here else ('#f4f4f4', '0.75', '0.6', 'normal', 9, '0.65') for i in range(len(steps))]   # 8.5 bold: as wide as 9
    fig = plt.figure(figsize=(7, 1.6), dpi=80); ax = fig.add_axes((0, 0, 1, 1)); ax.set_axis_off()   # axes 0-1 = the figure
    boxes = [ax.text(x, 0.68, s, ha='center', va='center', fontsize=size, c=c, weight=w, bbox=dict(boxstyle='round,pad=0.3',
                     fc=fc, ec=ec)) for x, (s, _), (fc, ec, c, w, size, _) in zip(xs, steps, look)]
    for x, (_, f), l in zip(xs, steps, look): ax.text(x, 0.2, f, ha='center', va='center', fontsize=8, family='monospace', c=l[-1])
    for i, (a, b) in enumerate(zip(boxes, boxes[1:])):                      # an arrow inside the highlight stays dark
        ax.annotate('', xy=(0, 0.5), xycoords=b, xytext=(1, 0.5), textcoords=a,
                    arrowprops=dict(arrowstyle='->', ec='0.3' if not here or {i, i + 1} <= set(here) else '0.7'))
    if caption: ax.text(0.995, 0.985, caption, ha='right', va='top', fontsize=7.5, style='italic', c='#7a4a00')
    return fig

# lessons 01-09 open with the pipeline, their steps highlighted: (number, name, the boxes they teach)
LESSONS = [('01', 'image modes', (0, 1)), ('02', 'look at the data', (1,)), ('03', 'folders and split', (1,)),
           ('03b', 'datasets and loaders', (2,)),
           ('04', 'ResNet50', (3,)), ('04b', 'outputs and pretrained start', (3,)),
           ('05', 'training loop', (4,)), ('05a', 'schedule and fit', (4,)), ('05b', 'weight decay', (4,)),
           ('06', 'transfer learning', (3, 4)), ('06b', 'the fine-tune', (3, 4)),
           ('07', 'predict and submit', (5, 6)), ('08', 'error analysis', (4, 5)), ('08b', 'where it looked', (4, 5)),
           ('09', 'label audit', (0,))]

def training_step():
    "05_training_loop: one training step as a cycle, with the comments of the naive loop."
    # 05's naive loop, a box a step: (x, y, the code, its comment in the loop cell, what the arrow to the next step carries)
    steps = [(0.15, 0.66, 'for xb, yb in dls.train:', 'xb: batch x 3 x size x size\nyb: batch of class numbers', 'xb'),
             (0.5, 0.66, 'model(xb)', '1. forward', 'logits'),
             (0.85, 0.66, 'F.cross_entropy(logits, yb)', '2. how wrong it is', 'loss'),
             (0.85, 0.3, 'loss.backward()', '3. the gradient of every\ntrainable weight', 'gradients'),
             (0.5, 0.3, 'opt.step()', '4. move the weights\na little downhill', 'weights moved'),
             (0.15, 0.3, 'opt.zero_grad()', '5. forget the gradient\n(backward adds to it)', 'next batch')]
    fig = plt.figure(figsize=(7, 2.2), dpi=80); ax = fig.add_axes((0, 0, 1, 1)); ax.set_axis_off()   # axes 0-1 = the figure
    boxes = [ax.text(x, y, code, ha='center', va='center', fontsize=8, family='monospace',
                     bbox=dict(boxstyle='round,pad=0.4', fc='#e8f0fb', ec='#4a6fa5')) for x, y, code, *_ in steps]
    for i, ((x0, y0, _, why, what), (x1, y1, *_)) in enumerate(zip(steps, steps[1:] + steps[:1])):
        c, up = ('C1', True) if i == len(steps) - 1 else ('0.3', False)        # the loop back to the next batch: orange
        ax.text(x0, y0 + (0.2 if y0 > 0.5 else -0.2), why, ha='center', va='center', fontsize=8, color='0.3')
        ax.annotate('', xy=(x1, y1), xytext=(x0, y0), arrowprops=dict(arrowstyle='-|>', color=c, lw=1.8 if up else 1,
                    patchA=boxes[i].get_bbox_patch(), patchB=boxes[(i + 1) % len(steps)].get_bbox_patch()))
        ax.text((x0 + x1) / 2 + (x0 - 0.5) * 0.04 * (x0 == x1), (y0 + y1) / 2 + 0.06 * (y0 == y1), what, fontsize=9,
                style='italic', color=c, va='center', ha='center' if x0 != x1 else 'left' if x0 > 0.5 else 'right')
    return fig

def resnet50_stages():
    "04_resnet50: the path of one 64-pixel image through ResNet50, each box as tall as its grid and as wide as its channels (log scale)."
    import math, torch
    from cat12.model import create_model
    m = create_model(12, pretrained=False).eval()           # the shapes come from the network itself, at 64 px
    stages = [('stem', torch.nn.Sequential(m.conv1, m.bn1, m.relu, m.maxpool)), ('layer1', m.layer1), ('layer2', m.layer2),
              ('layer3', m.layer3), ('layer4', m.layer4), ('avgpool', m.avgpool), ('fc', torch.nn.Sequential(torch.nn.Flatten(), m.fc))]
    what = dict(input='RGB image', stem='conv 7x7 /2\nmax-pool /2', avgpool='mean of\neach channel', fc='one logit\nper breed')
    x, parts = torch.zeros(1, 3, 64, 64), []
    parts.append(('input', 3, 64, what['input']))
    with torch.no_grad():
        for name, part in stages:
            x = part(x)
            label = what.get(name) or f"{len(part)} blocks" + (', /2' if name != 'layer1' else '')
            parts.append((name, x.shape[1], x.shape[-1] if x.ndim == 4 else 1, label))
    fig = plt.figure(figsize=(7, 2.3), dpi=80); ax = fig.add_axes((0, 0, 1, 1)); ax.set_axis_off()
    ax.set_xlim(-0.05, len(parts) + 0.1); ax.set_ylim(-0.55, 1.1)
    for i, (name, ch, grid, what) in enumerate(parts):
        h, w = 0.1 + 0.7 * math.sqrt(grid / 64), 0.15 + 0.55 * math.log(ch) / math.log(2048)
        ax.add_patch(plt.Rectangle((i + 0.5 - w / 2, 0.45 - h / 2), w, h, fc='#e8f0fb', ec='#4a6fa5'))
        ax.text(i + 0.5, 0.95, name, ha='center', fontsize=9, weight='bold')
        ax.text(i + 0.5, -0.08, f'{ch}x{grid}x{grid}' if grid > 1 else f'{ch}', ha='center', fontsize=8, family='monospace')
        ax.text(i + 0.5, -0.32, what, ha='center', va='top', fontsize=7.5, color='0.3')
        if i: ax.annotate('', xy=(i + 0.5 - w / 2 - 0.02, 0.45), xytext=(i - 0.22, 0.45), arrowprops=dict(arrowstyle='->', color='0.4'))
    return fig

def convolution():
    "04_resnet50: a 3x3 filter with stride 2 and padding 1 on a 6x6 grid; each output number is the weighted sum of the 3x3 pixels under the filter, and the output grid is half as wide."
    fig = plt.figure(figsize=(6.4, 2.6), dpi=80); ax = fig.add_axes((0, 0, 1, 1)); ax.set_axis_off(); ax.set_aspect('equal')
    ax.set_xlim(-1.6, 14.6); ax.set_ylim(-2.7, 8.4)
    ax.add_patch(plt.Rectangle((-1, -1), 8, 8, fc='none', ec='0.6', ls=':', lw=1))   # the padding: a border of zeros
    for i in range(6):
        for j in range(6): ax.add_patch(plt.Rectangle((j, 5 - i), 1, 1, fc='#e8f0fb', ec='#4a6fa5', lw=0.6))
    windows = [(-1, 'C1', 0), (1, 'C2', 1)]              # (first column of the 3x3 window, colour, output column)
    for x0, colour, oc in windows:
        ax.add_patch(plt.Rectangle((x0, 4), 3, 3, fc=colour, alpha=0.25, ec=colour, lw=2))
    for i in range(3):
        for j in range(3):
            hit = {0: 'C1', 1: 'C2'}.get(j) if i == 0 else None
            ax.add_patch(plt.Rectangle((10 + j, 3.5 - i), 1, 1, fc=hit or '#e8f0fb', alpha=0.6 if hit else 1, ec='#4a6fa5', lw=0.8))
    for x0, colour, oc in windows:
        ax.annotate('', xy=(10.5 + oc, 4.5), xytext=(x0 + 3, 6.2 - oc * 0.6),
                    arrowprops=dict(arrowstyle='->', color=colour, lw=1.5, connectionstyle='arc3,rad=-0.2'))
    ax.text(3, -1.8, 'input grid, 6 x 6 (one channel of many);\ndotted: padding, a border of zeros', ha='center', va='center', fontsize=8)
    ax.text(11.5, 0.2, 'output grid, 3 x 3', ha='center', va='center', fontsize=8)
    ax.text(11.5, 6.6, '3x3 filter, stride 2: it moves 2 cells\nat a time (orange, then green); each\noutput = weighted sum of the 9 under it', ha='center',
            va='center', fontsize=8)
    return fig

def out_of_fold():
    "09_label_audit: 5 folds; each round trains a head on four and predicts the fifth, so every image is judged by a head that never saw its label."
    k = 5
    fig = plt.figure(figsize=(6, 1.9), dpi=80); ax = fig.add_axes((0.13, 0.2, 0.62, 0.7)); ax.set_axis_off()
    for r in range(k):                                  # round r: fold r is predicted, the others train the head
        for f in range(k):
            held = f == r
            ax.add_patch(plt.Rectangle((f, k - 1 - r), 0.94, 0.8, fc='C1' if held else '#e8f0fb', ec='C1' if held else '#4a6fa5'))
        ax.text(-0.15, k - 1 - r + 0.4, f'head {r + 1}', ha='right', va='center', fontsize=8)
    for f in range(k): ax.text(f + 0.47, k + 0.05, f'fold {f + 1}', ha='center', va='bottom', fontsize=8)
    ax.set_xlim(0, k); ax.set_ylim(0, k + 0.6)
    ax.text(k + 0.3, 3.4, 'trains the head', fontsize=8, va='center', bbox=dict(fc='#e8f0fb', ec='#4a6fa5'))
    ax.text(k + 0.3, 1.8, 'predicted by it:\nout-of-fold', fontsize=8, va='center', bbox=dict(fc='C1', ec='C1', alpha=0.9))
    fig.text(0.44, 0.05, 'each image is in one fold, judged by the one head that never trained on it', ha='center',
             fontsize=8, color='0.3')
    return fig

def strategies(keep=('frozen features', 'one learning rate', 'random weights')):
    "06_transfer_learning (and 06b, `keep` the fine-tune): ways to train, stage by stage: what starts pretrained, what is frozen, and at what rate each part learns."
    cols = ['stem', 'layer1', 'layer2', 'layer3', 'layer4', 'head']
    blues = ['#dbe7f6', '#b5cdea', '#8db1dc', '#5f8fcb', '#2f6db5']          # slow to fast
    # (row, [(text, colour) per column], the start): lr_mult=100 spreads the rates evenly on a log scale, stem to head
    rows = [('frozen features', [('frozen', '0.85')] * 5 + [('lr', blues[4])], 'pretrained + new head'),
            ('fine-tune', [('lr/100', blues[0]), ('lr/100', blues[0]), ('lr/32', blues[1]), ('lr/10', blues[2]),
                           ('lr/3', blues[3]), ('lr', blues[4])], 'pretrained + new head\n(head alone first)'),
            ('one learning rate', [('lr', blues[4])] * 6, 'pretrained + new head'),
            ('random weights', [('lr', blues[4])] * 6, 'random everywhere')]
    rows = [r for r in rows if r[0] in keep]
    fig = plt.figure(figsize=(7, 0.4 + 0.45 * len(rows)), dpi=80); ax = fig.add_axes((0.17, 0.02, 0.56, 0.84)); ax.set_axis_off()
    n = len(rows)
    for r, (name, cells, start) in enumerate(rows):
        y = n - 1 - r
        fig.text(0.16, (y + 0.4) / (n + 0.45) * 0.84 + 0.02, name, ha='right', va='center', fontsize=9)
        for c, (txt, colour) in enumerate(cells):
            random_start = name == 'random weights' or cols[c] == 'head'
            ax.add_patch(plt.Rectangle((c, y), 0.94, 0.8, fc=colour, ec='C1' if random_start else '0.5',
                                       lw=2 if random_start else 0.8))
            ax.text(c + 0.47, y + 0.4, txt, ha='center', va='center', fontsize=8, color='white' if colour == blues[4] else 'black')
        ax.text(len(cols) + 0.15, y + 0.4, start, va='center', fontsize=7.5, color='0.3')
    for c, name in enumerate(cols): ax.text(c + 0.47, n + 0.05, name, ha='center', va='bottom', fontsize=8, weight='bold')
    ax.set_xlim(0, len(cols)); ax.set_ylim(0, n + 0.45)
    fig.text(0.99, 0.93, 'orange edge: starts random', ha='right', fontsize=7.5, color='C1')
    return fig

def leakage():
    "03_folders_and_split: a photo and its copy under another name; split by file, the copy can land in validation; prepare splits by content (sha1)."
    pics = {'A': '#f6c36b', 'B': '#b5cdea', 'C': '#c9e4c5'}                  # a colour per picture: a copy has its picture's colour
    # (panel title, its x, train's files, val's files, the line under it)
    panels = [('split by file name (a plain random draw)', 0.02, ['A  a.jpg', 'B  b.jpg'], ['A  a_copy.jpg', 'C  c.jpg'],
               "a_copy.jpg is a.jpg under another name: the model\nlearned it in training, so validation overrates it"),
              ("prepare's split: by content (sha1)", 0.52, ['A  a.jpg', 'A  a_copy.jpg', 'B  b.jpg'], ['C  c.jpg'],
               'both copies train; validation holds only\npictures the model never saw')]
    fig = plt.figure(figsize=(7, 2.0), dpi=80); ax = fig.add_axes((0, 0, 1, 1)); ax.set_axis_off()
    for title, x0, train, val, note in panels:
        ax.text(x0 + 0.22, 0.93, title, ha='center', va='center', fontsize=8.5, weight='bold')
        for col, (split, files) in enumerate([('train/', train), ('val/', val)]):
            x = x0 + 0.03 + col * 0.23
            ax.text(x + 0.08, 0.80, split, ha='center', fontsize=8, family='monospace', color='0.3')
            for i, f in enumerate(files):
                ax.text(x + 0.08, 0.66 - i * 0.14, f, ha='center', va='center', fontsize=8, family='monospace',
                        bbox=dict(boxstyle='round,pad=0.3', fc=pics[f[0]], ec='C3' if split == 'val/' and 'copy' in f else '0.5',
                                  lw=2 if split == 'val/' and 'copy' in f else 0.8))
        ax.text(x0 + 0.22, 0.12, note, ha='center', va='center', fontsize=7.5, color='0.3')
    ax.plot([0.5, 0.5], [0.05, 0.97], color='0.8', lw=0.8); ax.set_xlim(0, 1); ax.set_ylim(0, 1)
    return fig

if __name__ == '__main__':
    OUT.mkdir(exist_ok=True)
    for name, draw in [('pipeline', pipeline), ('training_step', training_step), ('resnet50_stages', resnet50_stages),
                        ('out_of_fold', out_of_fold), ('strategies', strategies), ('convolution', convolution),
                        ('leakage', leakage),
                        ('strategies_finetune', lambda: strategies(('frozen features', 'fine-tune', 'one learning rate')))]:
        fig = draw(); fig.savefig(OUT/f'{name}.png'); plt.close(fig); print(OUT/f'{name}.png')
    for n, name, here in LESSONS:                       # pipeline_01.png ... pipeline_09.png (and 03b, 04b, 05a, 05b, 06b, 08b), 64 colours: a third of the bytes
        buf = io.BytesIO(); fig = pipeline(here, f'{n}: {name}'); fig.savefig(buf); plt.close(fig)
        Image.open(buf).convert('RGB').quantize(64).save(OUT/f'pipeline_{n}.png', optimize=True, dpi=(80, 80)); print(OUT/f'pipeline_{n}.png')
