import pytest
import torch

import mricourse as mc
from mricourse.data.unpaired import UnpairedSlices
from mricourse.models.cyclegan import (
    CycleGANConfig,
    ImagePool,
    ResnetGenerator,
    cycle_loss,
    cyclegan_networks,
    cyclegan_step,
    lsgan_loss,
    translate,
)


def _parts(cfg):
    """The four networks, their two optimisers and the two image pools."""
    modules = cyclegan_networks(cfg)
    opts = {
        "opt_G": torch.optim.Adam([*modules["G_AB"].parameters(), *modules["G_BA"].parameters()], lr=cfg.lr, betas=(0.5, 0.999)),
        "opt_D": torch.optim.Adam([*modules["D_A"].parameters(), *modules["D_B"].parameters()], lr=cfg.lr, betas=(0.5, 0.999)),
    }
    return modules, opts, {"A": ImagePool(cfg.pool_size, seed=0), "B": ImagePool(cfg.pool_size, seed=1)}


@pytest.mark.parametrize("size", [(64, 64), (63, 70), (45, 33)])
def test_generator_preserves_size(size):
    g = ResnetGenerator(1, 1, ngf=4, n_blocks=1)
    y = g(torch.rand(2, 1, *size) * 2 - 1)
    assert y.shape == (2, 1, *size)
    assert y.abs().max() <= 1


def test_patchgan_grid_and_receptive_field():
    d = mc.PatchDiscriminator(1, ndf=8, n_layers=3)
    assert d(torch.randn(1, 1, 128, 128)).shape == (1, 1, 14, 14)
    # each logit sees a 70x70 patch: a change outside it leaves the logit unchanged
    # (without instance norm, whose statistics are global)
    d = mc.PatchDiscriminator(1, ndf=8, n_layers=3, norm="none")
    x = torch.randn(1, 1, 128, 128)
    y = x.clone()
    y[..., 47:, 47:] += 5  # the first logit's 70x70 field spans pixels -23..46 (zero padding)
    assert torch.equal(d(x)[..., 0, 0], d(y)[..., 0, 0])
    y[..., 46, 46] += 5
    assert not torch.equal(d(x)[..., 0, 0], d(y)[..., 0, 0])


def test_pool_returns_past_images_with_probability_one_half():
    pool = ImagePool(size=10, seed=0)
    first = torch.arange(10.0).view(10, 1, 1, 1)
    assert torch.equal(pool.query(first), first)  # filling: returned as given
    past = 0
    n = 4000
    for i in range(n):
        out = pool.query(torch.full((1, 1, 1, 1), 100.0 + i))
        past += int(out.item() != 100.0 + i)
    assert abs(past / n - 0.5) < 0.03


def test_losses():
    assert lsgan_loss(torch.ones(2, 1, 3, 3), True) == 0
    assert lsgan_loss(torch.ones(2, 1, 3, 3), False) == 1
    x = torch.rand(1, 1, 4, 4)
    assert cycle_loss(x, x) == 0 and torch.isclose(cycle_loss(x, x + 0.5), torch.tensor(0.5))


def test_one_pair_overfit_with_the_paired_loss():
    torch.manual_seed(0)
    g = ResnetGenerator(1, 1, ngf=8, n_blocks=2)
    a = torch.rand(1, 1, 32, 32) * 2 - 1
    b = -a  # an "inverted contrast" target
    opt = torch.optim.Adam(g.parameters(), lr=2e-3)
    first = None
    for _ in range(120):
        loss = (g(a) - b).abs().mean()
        first = first or loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.25 * first


def test_cyclegan_step_is_finite_and_reduces_cycle_loss():
    torch.manual_seed(0)
    cfg = CycleGANConfig.smoke()
    modules, opts, pools = _parts(cfg)
    batch = (torch.rand(2, 1, 32, 32) * 2 - 1, torch.rand(2, 1, 32, 32) * 2 - 1)
    hist = [cyclegan_step(modules, opts, batch, cfg=cfg, pools=pools) for _ in range(30)]
    assert all(torch.isfinite(torch.tensor(list(h.values()))).all() for h in hist)
    assert hist[-1]["cycle"] < hist[0]["cycle"]
    assert translate(modules["G_BA"], batch[0]).shape == (2, 1, 32, 32)
    assert all(p.requires_grad for m in modules.values() for p in m.parameters())  # the discriminators thawed again


def test_the_networks_own_no_optimiser():
    for m in cyclegan_networks(CycleGANConfig.smoke()).values():
        assert not any(isinstance(v, torch.optim.Optimizer) for v in vars(m).values())
        assert not hasattr(m, "step")


@pytest.mark.parametrize("n_layers,expected", [(1, 16), (2, 34), (3, 70)])
def test_receptive_field(n_layers, expected):
    from mricourse.models.cyclegan import receptive_field

    assert receptive_field(mc.PatchDiscriminator(1, ndf=4, n_layers=n_layers, norm="none")) == expected


def test_unpaired_slices_draw_random_partners_from_the_seed():
    ds = UnpairedSlices(torch.arange(4.0).view(4, 1, 1, 1), torch.arange(100.0).view(100, 1, 1, 1))
    partners = {float(ds[0][1]) for _ in range(20)}
    assert len(ds) == 4 and len(partners) > 5
    torch.manual_seed(7)
    first = [ds[i] for i in (0, 1, 2, 3, 0)]
    torch.manual_seed(7)
    again = [ds[i] for i in (0, 1, 2, 3, 0)]
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, again))
    with pytest.raises(ValueError, match="one size"):
        UnpairedSlices(torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 4, 5))


def test_intensity_mapping_matches_the_reference_histogram():
    from mricourse.baselines import intensity_mapping

    t1 = torch.zeros(2, 1, 8, 8)
    t1[:, :, 2:6, 2:6] = torch.linspace(0.2, 1.0, 16).view(4, 4)
    ref = torch.zeros(1, 1, 8, 8)
    ref[..., 2:6, 2:6] = torch.linspace(0.5, 2.0, 16).view(4, 4)
    out = intensity_mapping(t1, ref)
    assert out[0, 0, 2, 2] > out[0, 0, 5, 5]  # inverted contrast
    assert torch.allclose(out[0, 0, 2:6, 2:6].sort().values, ref[0, 0, 2:6, 2:6].sort().values) or torch.allclose(
        out[0, 0, 2:6, 2:6].flatten().sort().values, ref[0, 0, 2:6, 2:6].flatten().sort().values
    )
    assert (out[..., :2, :] == 0).all()


def test_linear_decay_schedule():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = mc.training.schedules.LinearDecaySchedule(opt, lr=0.1, steps=100, decay_from=0.5)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        sched.step()
    assert lrs[0] == lrs[50] == pytest.approx(0.1)  # constant for the first half
    assert lrs[75] == pytest.approx(0.05) and opt.param_groups[0]["lr"] == pytest.approx(0.0)  # then linear to zero
    with pytest.raises(ValueError, match="decay_from"):
        mc.training.schedules.LinearDecaySchedule(opt, lr=0.1, steps=10, decay_from=1.0)


def test_cyclegan_recipe_schedule_and_identity_loss():
    """The recipe's learning rates are constant, then linear to zero at its last step; the
    identity loss is on with ``lambda_identity``."""
    r = mc.recipe("cyclegan", "smoke", overrides={"lambda_identity": "0.5"})
    r.set_steps(4)
    assert set(r.modules) == {"G_AB", "G_BA", "D_A", "D_B"} and set(r.local_state) == {"pool_A", "pool_B"}
    assert r.optimizers["opt_G"].param_groups[0]["lr"] == r.config.lr
    history = r.fit(progress=False)
    assert history["identity"][-1] > 0 and all(torch.isfinite(torch.tensor(v)).all() for v in history.values())
    assert r.optimizers["opt_G"].param_groups[0]["lr"] == 0 and r.optimizers["opt_D"].param_groups[0]["lr"] == 0
    scores = r.evaluate(r.modules, r.val_set)
    assert set(scores) == {"mae", "psnr", "ssim"} and 0 < scores["mae"] < 1.5


def test_the_chapter_slices_are_unpaired_by_subject():
    from mricourse.training.recipes.cyclegan import t1t2_slices

    train, test = t1t2_slices(None, mc.profile("smoke"))
    r = mc.recipe("unet_t1t2", "smoke")
    assert len(r.train_set) == len(train["images"]) and r.val_set.shape == test["images"].shape
    ds = mc.recipe("cyclegan", "smoke").train_set
    assert len(ds.a) + len(ds.b) == len(train["images"])  # T1w of one half of the subjects, T2w of the other
    assert float(test["images"].max()) <= 1.5 and float(ds.a.min()) >= -1


def test_stacked_discriminator_call_equals_separate_calls():
    # the update scores real and fake images in one call: instance norm makes this exact
    d = mc.PatchDiscriminator(1, ndf=8, n_layers=3)
    real, fake = torch.randn(2, 1, 64, 64), torch.randn(2, 1, 64, 64)
    both = d(torch.cat([real, fake]))
    assert torch.allclose(both[:2], d(real), atol=1e-5) and torch.allclose(both[2:], d(fake), atol=1e-5)


def test_recipes_average_both_generators_and_the_paired_unet():
    """cyclegan keeps a weight average of G_AB and G_BA (not of the discriminators), unet_t1t2 of
    its U-Net; after fit the modules hold the averages, and use_averages(False) gives back the last
    weights, which differ from them."""
    from mricourse.training.recipes.base import weights_hash

    r = mc.recipe("cyclegan", "smoke", seed=3)
    assert set(r.averages) == {"G_AB", "G_BA"} and r.averages["G_AB"].decay == r.config.ema > 0
    r.set_steps(4)
    r.fit(progress=False)
    averaged = weights_hash({"G_AB": r.modules["G_AB"]})
    r.use_averages(False)
    assert weights_hash({"G_AB": r.modules["G_AB"]}) != averaged
    r.use_averages(True)
    assert weights_hash({"G_AB": r.modules["G_AB"]}) == averaged
    u = mc.recipe("unet_t1t2", "smoke")
    assert set(u.averages) == {"model"} and u.averages["model"].decay == u.config.ema > 0
    assert mc.recipe("cyclegan", "smoke", overrides={"ema": "0"}).averages == {}


def test_validation_subjects_are_neither_training_nor_test_subjects():
    from mricourse.training.recipes.cyclegan import SLICES, t1t2_slices, validation_slices

    p = mc.profile("smoke")
    train, test = t1t2_slices(None, p)
    val = validation_slices(p)
    assert (
        val.shape == test["images"].shape
        and len({SLICES["smoke"][k] for k in ("seed", "test_seed")} | {mc.recipes.cyclegan.VAL_SEED}) == 3
    )
    assert not any(torch.equal(val[0], x) for x in (*train["images"], *test["images"]))
