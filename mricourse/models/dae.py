"""A denoising autoencoder with symmetric skip connections (RED-Net style) for MR slices.

Reference: X.-J. Mao, C. Shen, Y.-B. Yang, "Image restoration using very deep convolutional
encoder-decoder networks with symmetric skip connections", NeurIPS 2016 (RED-Net), the denoiser
that Bermudez et al. (SPIE 2018) trained on brain slices.

The encoder is a chain of 3x3 convolutions with ReLU, ``h_i = relu(conv_i(h_{i-1}))``, ``h_0 = y``;
the decoder mirrors it with 3x3 transposed convolutions. Every ``skip_every`` layers, the encoder's
feature map is added to its mirror in the decoder before the ReLU,

    g_{i-1} = relu(deconv_i(g_i) + h_{i-1})        (i - 1 a multiple of skip_every),

and the outermost skip adds the noisy input to the output, so the network learns the residual:
``x_hat = y + deconv_1(g_1)``. The skips carry detail past the bottleneck and let gradients reach
the first layers. Optionally the noise level ``sigma`` enters as an extra constant input channel
(one network for every noise level, like FFDNet) instead of one network per level as in the paper,
and some encoder layers may stride by 2 (their mirrors upsample by 2): the deeper layers then
work on a quarter of the pixels and see twice as far, for the same cost.

Training (:func:`dae_step`) minimises the squared error weighted by ``1 / sigma^2``, so that the
low noise levels count as much as the high ones in a noise-conditional network.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..profiles import Presets

__all__ = ["DAEConfig", "DAE", "dae_step"]


@dataclass
class DAEConfig(Presets):
    """Sizes of the RED-Net.

    Attributes:
        num_layers: convolutions in the encoder (the decoder has as many transposed convolutions).
        chans: feature channels of every hidden layer.
        skip_every: add an encoder map to its mirrored decoder map every this many layers.
        in_chans: image channels.
        noise_conditional: feed ``sigma`` as an extra input channel.
        down_layers: encoder layers (1-based) that halve the size with stride 2; their mirrored
            transposed convolutions double it back.
    """

    num_layers: int = 5
    chans: int = 32
    skip_every: int = 2
    in_chans: int = 1
    noise_conditional: bool = True
    down_layers: tuple[int, ...] = ()

    #: the profile presets (:class:`mricourse.profiles.Presets`): the fields each profile sets over the defaults
    PRESETS = {
        "smoke": {"num_layers": 3, "chans": 8},
        "cpu": {"num_layers": 5, "chans": 32},
        "gpu": {"num_layers": 8, "chans": 64},
    }

    def __post_init__(self):
        if self.num_layers < 1 or self.skip_every < 1:
            raise ValueError(f"DAEConfig: expected num_layers, skip_every >= 1, got {self.num_layers}, {self.skip_every}")
        self.down_layers = tuple(self.down_layers)
        if any(not 1 <= i <= self.num_layers for i in self.down_layers):
            raise ValueError(f"DAEConfig: expected down_layers within 1..{self.num_layers}, got {self.down_layers}")

    @classmethod
    def paper(cls) -> DAEConfig:
        """RED-Net 20 (10 convolutions, 10 deconvolutions, 64 channels), one network per noise level."""
        return cls(num_layers=10, chans=64, noise_conditional=False)


class DAE(nn.Module):
    """RED-Net denoiser: noisy (B, C, H, W) [+ sigma (B,)] -> denoised (B, C, H, W), any H, W."""

    def __init__(self, cfg: DAEConfig):
        super().__init__()
        self.cfg = cfg
        n, c = cfg.num_layers, cfg.chans
        first = cfg.in_chans + int(cfg.noise_conditional)
        stride = [2 if i + 1 in cfg.down_layers else 1 for i in range(n)]
        self.encoder = nn.ModuleList([nn.Conv2d(first if i == 0 else c, c, 3, stride[i], padding=1) for i in range(n)])
        # decoder[i] maps level i + 1 back to level i (decoder[0] produces the image residual)
        self.decoder = nn.ModuleList(
            [nn.ConvTranspose2d(c, cfg.in_chans if i == 0 else c, 3, stride[i], padding=1) for i in range(n)]
        )
        self.relu = nn.ReLU(inplace=True)
        nn.init.zeros_(self.decoder[0].weight)  # start as the identity x_hat = y
        nn.init.zeros_(self.decoder[0].bias)

    def forward(self, noisy: torch.Tensor, sigma: torch.Tensor | float | None = None) -> torch.Tensor:
        cfg = self.cfg
        if noisy.ndim != 4 or noisy.shape[1] != cfg.in_chans:
            raise ValueError(f"DAE: expected noisy images of shape (B, {cfg.in_chans}, H, W), got {tuple(noisy.shape)}")
        h = noisy
        if cfg.noise_conditional:
            if sigma is None:
                raise ValueError("DAE: this network is noise-conditional; pass sigma (a float or a (B,) tensor)")
            s = torch.as_tensor(sigma, dtype=noisy.dtype, device=noisy.device).reshape(-1, 1, 1, 1)
            h = torch.cat([noisy, s.expand(noisy.shape[0], 1, *noisy.shape[2:])], dim=1)  # (B, C + 1, H, W)
        feats = [h]  # h_0 .. h_n
        for conv in self.encoder:
            h = self.relu(conv(h))
            feats.append(h)
        g = feats[-1]  # g_n = h_n
        for i in range(cfg.num_layers - 1, 0, -1):  # g_i = relu(deconv(g_{i+1}) [+ h_i])
            g = self.decoder[i](g, output_size=feats[i].shape[-2:])  # output_size: undo odd-size strides
            if i % cfg.skip_every == 0:
                g = g + feats[i]  # the symmetric skip from h_i
            g = self.relu(g)
        return noisy + self.decoder[0](g, output_size=noisy.shape[-2:])  # the outermost skip: learn the residual


def dae_step(modules: dict, optimizers: dict, batch: dict, sigma_ref: float = 1.0) -> dict[str, float]:
    """The update step: one step of ``optimizers["opt"]`` on ``modules["model"]``, minimising the
    squared error weighted by the noise level,

        loss = sigma_ref^2 * mean_i mean_pixels ((f(y_i, sigma_i) - x_i) / sigma_i)^2,

    so that every level counts alike (an unweighted loss is dominated by the noisiest images);
    ``sigma_ref`` scales it to the error of a level in the middle of the range.

    ``batch``: ``{"noisy": (B, C, H, W), "clean": (B, C, H, W), "sigma": (B,)}``
    (:class:`mricourse.data.t1slices.NoisyCrops`). Returns ``{"loss": value}``.
    """
    model, opt = modules["model"], optimizers["opt"]
    device = next(model.parameters()).device
    noisy, clean, sigma = (batch[k].to(device) for k in ("noisy", "clean", "sigma"))
    model.train()
    residual = (model(noisy, sigma) - clean) / sigma.view(-1, *([1] * (clean.ndim - 1)))  # (B, C, H, W), in units of sigma
    loss = residual.pow(2).mean() * sigma_ref**2
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return {"loss": loss.item()}
