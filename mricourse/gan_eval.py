"""Measuring a GAN of MR slices without an Inception network.

- novelty: ``nearest_neighbours`` -- the maximum normalised cross-correlation (NCC) of each image,
  inside its head mask, with every training image (Bermudez et al. 2018 checked memorisation so).
  Compare generated slices with held-out real slices: a generator that copies its training set
  scores higher than new real subjects do.
- diversity: ``diversity`` -- the median NCC of each image of one half of a set with its nearest
  image of the other half: near 1 for a collapsed generator; compare with held-out real slices.
- realism: ``c2st`` -- a classifier two-sample test (Lopez-Paz and Oquab 2017): a small CNN learns
  to tell real from generated images; its accuracy on images it has not seen is near 0.5 when the
  two sets are indistinguishable to it. ``intensity_histogram`` and ``radial_profile`` show what
  the experts saw: tissue intensities, and the mean intensity against the distance from the centre.

All functions take single-channel images (N, H, W) or (N, 1, H, W) as tensors or arrays.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage, stats
from torch import nn

__all__ = ["foreground_mask", "ncc", "nearest_neighbours", "diversity", "c2st", "C2STResult", "intensity_histogram", "radial_profile"]


def _images(x, name: str) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).detach().cpu()
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]  # (N, 1, H, W) -> (N, H, W)
    if x.ndim != 3 or x.is_complex():
        raise ValueError(f"{name}: expected real images of shape (N, H, W) or (N, 1, H, W), got {x.dtype} {tuple(x.shape)}")
    return x.double()


def foreground_mask(images, threshold: float = 0.1) -> torch.Tensor:
    """Head masks (N, H, W) bool: pixels above ``threshold`` x the image's 99th percentile above its
    minimum, the largest connected region, holes filled. Invariant to intensity scaling and offset."""
    x = _images(images, "foreground_mask")
    lo = x.flatten(1).amin(1)[:, None, None]
    hi = torch.quantile(x.flatten(1), 0.99, dim=1)[:, None, None]
    raw = ((x - lo) > threshold * (hi - lo)).numpy()
    out = np.zeros_like(raw)
    for i, m in enumerate(raw):
        lab, n = ndimage.label(m)
        if n:
            m = lab == (np.argmax(np.bincount(lab.ravel())[1:]) + 1)
        out[i] = ndimage.binary_fill_holes(m)
    return torch.from_numpy(out)


def ncc(a, b, mask=None) -> torch.Tensor:
    """Normalised cross-correlation of image pairs (N, H, W), inside ``mask`` (N, H, W) if given:

    ``sum m (a - mean a)(b - mean b) / sqrt(sum m (a - mean a)^2 sum m (b - mean b)^2)``,
    means taken inside the mask. 1 for identical images, unchanged by ``a -> s a + t`` (s > 0).
    """
    a, b = _images(a, "ncc"), _images(b, "ncc")
    if a.shape != b.shape:
        raise ValueError(f"ncc: expected images of the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    m = torch.ones_like(a) if mask is None else _images(mask, "ncc mask").expand_as(a)
    n = m.sum((-2, -1), keepdim=True)
    da = (a - (m * a).sum((-2, -1), keepdim=True) / n) * m
    db = (b - (m * b).sum((-2, -1), keepdim=True) / n) * m
    return (da * db).sum((-2, -1)) / ((da**2).sum((-2, -1)) * (db**2).sum((-2, -1))).sqrt().clamp_min(1e-12)


def nearest_neighbours(queries, references, masks=None, chunk: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """For each query the maximum NCC against all references and the index of that neighbour.

    The NCC of query q with reference r is taken inside q's head mask (``masks``, default
    :func:`foreground_mask` of the queries), so every reference is judged on the same pixels.
    All pairs at once as matrix products: with m the mask, n = sum m,
    ``ncc = (sum m q r - sum m q sum m r / n) / sqrt(var_m(q) var_m(r))``.

    Returns ``(max_ncc (N,), index (N,))``.
    """
    q, r = _images(queries, "nearest_neighbours"), _images(references, "nearest_neighbours")
    if q.shape[1:] != r.shape[1:]:
        raise ValueError(f"nearest_neighbours: expected images of one size, got {tuple(q.shape)} and {tuple(r.shape)}")
    m = (foreground_mask(q) if masks is None else _images(masks, "nearest_neighbours masks")).double().flatten(1)  # (N, P)
    q, r = q.flatten(1), r.flatten(1)  # (N, P), (M, P)
    best, index = [], []
    for s in range(0, len(q), chunk):
        mq, qq = m[s : s + chunk], q[s : s + chunk]
        n = mq.sum(1, keepdim=True)  # (n, 1)
        sq, sqq = (mq * qq).sum(1, keepdim=True), (mq * qq * qq).sum(1, keepdim=True)  # (n, 1)
        sr, srr, sqr = mq @ r.T, mq @ (r * r).T, (mq * qq) @ r.T  # (n, M)
        cov = sqr - sq * sr / n
        var_q, var_r = (sqq - sq**2 / n).clamp_min(0), (srr - sr**2 / n).clamp_min(0)
        c = cov / (var_q * var_r).sqrt().clamp_min(1e-12)
        b, i = c.max(1)
        best.append(b)
        index.append(i)
    return torch.cat(best).float(), torch.cat(index)


def diversity(images) -> float:
    """How alike the images of one set are: the median, over the first half of ``images``, of the
    NCC (:func:`nearest_neighbours`) with the nearest image of the second half. A collapsed
    generator scores near 1; compare with held-out real images (other subjects alike only as
    brains are)."""
    x = _images(images, "diversity")
    if len(x) < 2:
        raise ValueError(f"diversity: expected at least 2 images, got {len(x)}")
    half = len(x) // 2
    return float(nearest_neighbours(x[:half], x[half:])[0].median())  # inside each query's head


class _Critic(nn.Module):
    """A small CNN: (Conv3 s2, LeakyReLU) blocks, global average pooling, one logit."""

    def __init__(self, chans: int = 16, depth: int = 4):
        super().__init__()
        layers, c_in = [], 1
        for i in range(depth):
            c = chans * 2 ** min(i, 2)
            layers += [nn.Conv2d(c_in, c, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
            c_in = c
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, 1)

    def forward(self, x):
        return self.head(self.features(x).mean((-2, -1))).flatten()  # (B,)


@dataclass
class C2STResult:
    """The outcome of :func:`c2st`.

    Attributes:
        accuracy: held-out accuracy, averaged over the folds of every repeat (0.5: chance).
        p_value: one-sided binomial test of "accuracy > 0.5" over all held-out predictions (with
            repeats, each image's mean probability).
        fold_accuracy: the accuracy of each fold, repeat after repeat.
        real_images, fake_images: the (n, H, W) images used from each set (balanced).
        real_prob, fake_prob: (n,) out-of-fold probabilities of "generated" for each image (the
            mean over the repeats); a generated image with a high ``fake_prob`` is easy to spot.
    """

    accuracy: float
    p_value: float
    fold_accuracy: list
    real_images: torch.Tensor
    fake_images: torch.Tensor
    real_prob: torch.Tensor
    fake_prob: torch.Tensor


def c2st(
    real,
    fake,
    folds: int = 2,
    epochs: int = 20,
    batch_size: int = 32,
    lr: float = 1e-3,
    chans: int = 16,
    seed: int = 0,
    device=None,
    repeats: int = 1,
) -> C2STResult:
    """Classifier two-sample test between two sets of images (N, [1,] H, W) on the same scale.

    The images of both sets are split into ``folds`` folds; for each fold a fresh small CNN is
    trained on the others to tell set 2 (``fake``) from set 1 (``real``) and is scored on the
    held-out fold, so every image gets an out-of-sample prediction. Accuracy near 0.5: the
    classifier cannot tell the sets apart; near 1: it always can. Classes are balanced by
    using the same number of images from each set.

    One small classifier's accuracy depends on its initial weights and its split: for one pair of
    sets it can range over 0.1 or more. ``repeats`` > 1 runs the whole test that many times, with
    fresh folds and fresh classifiers; the accuracy is then the mean over all of them (every
    fold's is in ``fold_accuracy``), and each image's probability the mean of its out-of-fold
    predictions.
    """
    a, b = _images(real, "c2st real").float(), _images(fake, "c2st fake").float()
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"c2st: expected two sets of same-size images, got {tuple(a.shape)} and {tuple(b.shape)}")
    if folds < 2 or repeats < 1:
        raise ValueError(f"c2st: expected folds >= 2 and repeats >= 1, got folds={folds}, repeats={repeats}")
    n = min(len(a), len(b))
    if n < 2 * folds:
        raise ValueError(f"c2st: expected at least {2 * folds} images per set, got {n}")
    g = torch.Generator().manual_seed(seed)
    a, b = a[torch.randperm(len(a), generator=g)[:n]], b[torch.randperm(len(b), generator=g)[:n]]
    x = torch.cat([a, b])[:, None]  # (2n, 1, H, W)
    y = torch.cat([torch.zeros(n), torch.ones(n)])
    prob = torch.zeros(2 * n)  # the sum over the repeats of each image's out-of-fold probability
    accs = []
    device = device or torch.device("cpu")
    for rep, k in itertools.product(range(repeats), range(folds)):
        if k == 0:  # a fresh split into folds for every repeat
            fold = torch.cat([torch.randperm(n, generator=g) % folds, torch.randperm(n, generator=g) % folds])
        train, test = fold != k, fold == k
        torch.manual_seed(seed + rep * folds + k)
        net = _Critic(chans).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        xt, yt = x[train], y[train]
        for _ in range(epochs):
            perm = torch.randperm(len(xt), generator=g)
            for s in range(0, len(xt), batch_size):
                idx = perm[s : s + batch_size]
                loss = F.binary_cross_entropy_with_logits(net(xt[idx].to(device)), yt[idx].to(device))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        net.eval()
        with torch.no_grad():
            p = torch.cat([torch.sigmoid(net(x[test][s : s + 256].to(device))).cpu() for s in range(0, int(test.sum()), 256)])
        prob[test] += p
        accs.append(float(((p > 0.5).float() == y[test]).float().mean()))
    prob /= repeats
    correct = int(((prob > 0.5).float() == y).sum())
    p_value = stats.binomtest(correct, 2 * n, 0.5, alternative="greater").pvalue  # P(>= correct | coin flips)
    return C2STResult(float(np.mean(accs)), float(p_value), accs, a, b, prob[:n], prob[n:])


def intensity_histogram(
    images, masks=None, bins: int = 64, value_range: tuple[float, float] = (0.0, 1.0)
) -> tuple[np.ndarray, np.ndarray]:
    """Density of the intensities inside the head masks (default :func:`foreground_mask`), pooled
    over the images: ``(bin_centres (bins,), density (bins,))``."""
    x = _images(images, "intensity_histogram")
    m = foreground_mask(x) if masks is None else _images(masks, "intensity_histogram masks").bool()
    density, edges = np.histogram(x[m].numpy(), bins=bins, range=value_range, density=True)
    return (edges[:-1] + edges[1:]) / 2, density


def radial_profile(images, masks=None, bins: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """Mean intensity inside the head against the distance from the head's centroid, relative to
    the head's radius (0 = centre, 1 = edge): ``(radius (bins,), mean intensity (bins,))``.

    Averaged over all head pixels of all images; a "brighter centre" shows as a higher start.
    """
    x = _images(images, "radial_profile")
    m = foreground_mask(x) if masks is None else _images(masks, "radial_profile masks").bool()
    H, W = x.shape[-2:]
    yy, xx = torch.meshgrid(torch.arange(H, dtype=x.dtype), torch.arange(W, dtype=x.dtype), indexing="ij")
    sums, counts = np.zeros(bins), np.zeros(bins)
    for im, mk in zip(x, m):
        if not mk.any():
            continue
        cy, cx = yy[mk].mean(), xx[mk].mean()
        r = ((yy - cy) ** 2 + (xx - cx) ** 2).sqrt()
        r = r / r[mk].max()  # 0 at the centroid, 1 at the farthest head pixel
        idx = (r[mk] * bins).long().clamp(max=bins - 1).numpy()
        sums += np.bincount(idx, weights=im[mk].numpy(), minlength=bins)
        counts += np.bincount(idx, minlength=bins)
    centres = (np.arange(bins) + 0.5) / bins
    return centres, sums / np.maximum(counts, 1)
