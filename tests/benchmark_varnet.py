"""Side-by-side training-step time of ``mricourse.VarNet`` and ``fastmri.models.VarNet``.

A benchmark, not a test (pytest does not collect it). Both models get the same weights, data,
masks and loss (1 - SSIM); steps alternate between the two so that both see the same machine
load, and the median step time of each is reported::

    python tests/benchmark_varnet.py [--config cpu|paper|smoke] [--size 128] [--coils 8] [--steps 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import mricourse as mc
from mricourse.models.varnet import VarNet, VarNetConfig, state_dict_from_fastmri


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="cpu", choices=["smoke", "cpu", "gpu", "paper"])
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--coils", type=int, default=8)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from fastmri.models import VarNet as RefVarNet

    cfg = getattr(VarNetConfig, args.config)()
    ref = RefVarNet(cfg.num_cascades, cfg.sens_chans, cfg.sens_pools, cfg.chans, cfg.num_pools, cfg.mask_center)
    ours = VarNet(cfg)
    ours.load_state_dict(state_dict_from_fastmri(ref.state_dict()))
    opts = {"ours": torch.optim.Adam(ours.parameters(), 1e-4), "fastmri": torch.optim.Adam(ref.parameters(), 1e-4)}

    g = torch.Generator().manual_seed(0)
    n = args.size
    kspace = torch.randn(args.batch, args.coils, n, n, dtype=torch.complex64, generator=g)
    mask = mc.random_mask(n, 4, 0.08, seed=0)
    masked = kspace * mask
    target = mc.rss(mc.ifft2c(kspace))  # (B, 1, H, W)
    ref_k, ref_m = torch.view_as_real(masked), mask.bool().reshape(1, 1, 1, n, 1)  # fastmri's layout

    def step(name: str) -> float:
        t0 = time.perf_counter()
        if name == "ours":
            out = ours(masked, mask)
        else:
            out = ref(ref_k, ref_m)[:, None]
        loss = 1 - mc.ssim(target, out)
        opts[name].zero_grad()
        loss.backward()
        opts[name].step()
        return time.perf_counter() - t0

    times = {"ours": [], "fastmri": []}
    for i in range(args.steps + 2):
        order = ("ours", "fastmri") if i % 2 == 0 else ("fastmri", "ours")
        for name in order:
            dt = step(name)
            if i >= 2:  # warm-up
                times[name].append(dt)
    med = {k: statistics.median(v) for k, v in times.items()}
    nparams = sum(q.numel() for q in ours.parameters())
    print(
        f"config {args.config} ({nparams / 1e6:.2f}M params), {args.batch}x{args.coils} coils x {n}x{n}, "
        f"{torch.get_num_threads()} threads, {args.steps} steps each"
    )
    for k, v in med.items():
        print(f"  {k:8s} median step {v * 1000:8.1f} ms  (min {min(times[k]) * 1000:.1f} ms)")
    print(f"  ratio ours / fastmri: {med['ours'] / med['fastmri']:.3f}")


if __name__ == "__main__":
    main()
