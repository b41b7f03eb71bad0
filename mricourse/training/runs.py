"""Trained models from files: a reader's own training run, and the course's long-run weights.

``mc.load_run(folder)`` loads the networks of a ``mricourse train <task> --out <folder>`` run (its
``config.json`` says which recipe and config built them; its ``checkpoint.pt`` holds the weights,
and the weight averages, which are the model the recipe keeps, when the recipe has them).

``mc.pretrained(task)`` loads the weights shipped in the package's ``weights/`` folder: the
chapter's recipe trained longer (``make weights``; :mod:`mricourse.training.weights`), stored in
half precision beside a manifest ``<task>.json`` (recipe, commit, seed, steps, SHA-256 of the
file, held-out metrics, the learning curve). The file's checksum is checked before it is read.

Both rebuild the networks from the recorded config with :data:`NETWORKS` (no data set is read)
and return them in eval mode: the single network of one-network recipes, else a dict by name.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from torch import nn

from ..files import load_checked

__all__ = ["NETWORKS", "networks_from_record", "load_run", "pretrained", "long_run", "weights_manifest", "networks_with_state", "weights_dir", "available_weights", "file_sha256"]


def _cfg(cls, config: dict):
    """``cls(**config)`` with lists turned back into tuples where the field's default is a tuple
    (JSON has no tuples); an unknown field is an error naming the config class."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(config) - set(fields))
    if unknown:
        raise ValueError(f"{cls.__name__} has no field(s) {unknown}: the run was written by another version of mricourse")
    out = {}
    for k, v in config.items():
        default = fields[k].default
        out[k] = tuple(v) if isinstance(v, list) and isinstance(default, tuple) else v
    return cls(**out)


def _varnet(c, record):
    from ..models.varnet import VarNet, VarNetConfig

    return {"model": VarNet(_cfg(VarNetConfig, c))}


def _cascade(c, record):
    from ..models.cascade import CascadeConfig, CascadeNet

    return {"model": CascadeNet(_cfg(CascadeConfig, c))}


def _dae(c, record):
    from ..models.dae import DAE, DAEConfig

    return {"model": DAE(_cfg(DAEConfig, c))}


def _dcgan(c, record):
    from ..models.dcgan import DCGANConfig, DCGANDiscriminator, DCGANGenerator

    cfg = _cfg(DCGANConfig, c)
    return {"G": DCGANGenerator(cfg), "D": DCGANDiscriminator(cfg)}


def _cyclegan(c, record):
    from ..models.cyclegan import CycleGANConfig, cyclegan_networks

    return cyclegan_networks(_cfg(CycleGANConfig, c))


def _unet_t1t2(c, record):
    from ..layers import UNet
    from .recipes.cyclegan import PairedUNetConfig

    cfg = _cfg(PairedUNetConfig, c)
    return {"model": UNet(1, 1, chans=cfg.chans, num_pools=cfg.num_pools)}


def _vox2vox(c, record):
    from ..models.vox2vox import Vox2VoxConfig, vox2vox_networks

    nets = vox2vox_networks(_cfg(Vox2VoxConfig, c))
    return nets if record.get("recipe") == "vox2vox" else {"G": nets["G"]}


def _msfusion(c, record):
    from ..models.superres import MultiScaleFusionConfig, MultiScaleFusionSR

    return {"model": MultiScaleFusionSR(_cfg(MultiScaleFusionConfig, c))}


def _srgan(c, record):
    from ..models.superres import SRGANConfig, SRGANDiscriminator, SRGANGenerator

    cfg = _cfg(SRGANConfig, c)
    return {"G": SRGANGenerator(cfg), "D": SRGANDiscriminator(cfg)}


def _voxelmorph(c, record):
    from ..models.voxelmorph import VoxelMorph, VoxelMorphConfig

    size = (record.get("settings") or {}).get("size")
    if not size:
        raise ValueError("voxelmorph: the record has no image size (settings['size']): the run was written by an older mricourse")
    return {"model": VoxelMorph(_cfg(VoxelMorphConfig, c), size)}


def _toy(c, record):
    from .recipes.toy import Toy, ToyConfig

    return {"model": Toy(_cfg(ToyConfig, c))}


#: recipe name -> ``build(config dict, record) -> {module name: network}``, the networks the
#: recipe trains, built from the config its run recorded (no data read)
NETWORKS: dict[str, Callable[[dict, dict], dict[str, nn.Module]]] = {
    "varnet": _varnet,
    "cascade": _cascade,
    "dae": _dae,
    "dcgan": _dcgan,
    "cyclegan": _cyclegan,
    "unet_t1t2": _unet_t1t2,
    "vox2vox": _vox2vox,
    "unet3d_brats": _vox2vox,
    "msfusion": _msfusion,
    "srgan": _srgan,
    "voxelmorph": _voxelmorph,
    "toy": _toy,
}


def networks_from_record(record: dict) -> dict[str, nn.Module]:
    """The untrained networks of a run's record (``Recipe.record()``, a run's ``config.json``)."""
    name = record.get("recipe")
    if name not in NETWORKS:
        known = ", ".join(sorted(NETWORKS))
        raise ValueError(f"cannot rebuild the networks of recipe {name!r} from a record; expected one of {known}")
    return NETWORKS[name](dict(record.get("config") or {}), record)


def _result(modules: dict[str, nn.Module]):
    for m in modules.values():
        m.eval()
    return modules["model"] if set(modules) == {"model"} else modules


def load_run(folder, averaged: bool = True, map_location="cpu"):
    """The trained networks of a ``mricourse train`` run folder (``config.json`` and
    ``checkpoint.pt``), in eval mode: the network of a one-network recipe, else ``{name: network}``.

    With ``averaged`` (the default), a module with a weight average gets the averaged weights, the
    model the recipe keeps after training; ``averaged=False`` gives the last training weights.
    Raises ``FileNotFoundError`` naming what the folder lacks."""
    folder = Path(folder)
    config, checkpoint = folder / "config.json", folder / "checkpoint.pt"
    for p in (config, checkpoint):
        if not p.is_file():
            raise FileNotFoundError(
                f"{p} not found: load_run expects the --out folder of `mricourse train` (config.json and checkpoint.pt)"
            )
    record = json.loads(config.read_text())
    modules = networks_from_record(record)
    payload = load_checked(checkpoint, map_location, fix="train the run again")
    state = payload["state"]
    for name, module in modules.items():
        avg = state.get(f"average_{name}")
        if averaged and avg is not None:
            # a WeightAverage's state: its copy of the network under "average.", and its count
            module.load_state_dict({k.removeprefix("average."): v for k, v in avg.items() if k.startswith("average.")})
        elif name in state:
            module.load_state_dict(state[name])
        else:
            raise KeyError(f"{checkpoint} has no weights for {name!r}; it has {sorted(state)}")
    return _result(modules)


def weights_dir() -> Path:
    """The folder of the course's long-run weights, inside the package."""
    return Path(__file__).resolve().parent.parent / "weights"


def available_weights() -> list[str]:
    """The tasks with long-run weights (a manifest ``<task>.json`` in :func:`weights_dir`)."""
    return sorted(p.stem for p in weights_dir().glob("*.json"))


def file_sha256(path) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def weights_manifest(task: str) -> dict:
    """The manifest of ``task``'s long-run weights; ``ValueError`` lists the tasks there are."""
    path = weights_dir() / f"{task}.json"
    if not path.is_file():
        have = ", ".join(available_weights()) or "none"
        raise ValueError(f"no long-run weights for {task!r}; the package has weights for: {have} (make weights trains them)")
    return json.loads(path.read_text())


def pretrained(task: str, map_location="cpu"):
    """The course's long-run weights for ``task`` (see the module docstring), in eval mode and in
    float32: the network of a one-network recipe, else ``{name: network}``.

    The file's SHA-256 is checked against its manifest first; a mismatch raises ``ValueError``."""
    info = weights_manifest(task)
    path = weights_dir() / info["file"]
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the manifest {task}.json names it; reinstall mricourse or run make weights")
    digest = file_sha256(path)
    if digest != info["sha256"]:
        raise ValueError(f"{path}: SHA-256 {digest[:16]}... does not match its manifest ({info['sha256'][:16]}...); the file is damaged")
    payload = load_checked(path, map_location, fix="reinstall mricourse or run make weights")
    missing = sorted(set(info.get("modules", [])) - set(payload["state"]))
    if missing:
        raise ValueError(f"{path} lacks the weights of {missing}")
    return _result(networks_with_state(info["record"], payload["state"]))


def long_run(task: str, steps: int | None = None, name: str | None = None, device=None):
    """A chapter's view of ``task``'s long run: ``(manifest, networks)`` as :func:`weights_manifest`
    and :func:`pretrained` give them (the networks moved to ``device``), after printing one line
    that describes the run (its steps beside ``steps``, the chapter's own run's; seed, training
    time, precision, commit). Where the installation has no weights for ``task`` it prints so
    and returns ``(None, None)``: a chapter goes on without them."""
    name = name or f"{task}, long run"
    if task not in available_weights():
        print(f"no weights for {name} in this installation (make weights trains them): the chapter goes on without them")
        return None, None
    info = weights_manifest(task)
    nets = pretrained(task)
    if device is not None:
        nets = nets.to(device) if isinstance(nets, nn.Module) else {k: m.to(device) for k, m in nets.items()}
    ours = f" (this chapter's run: {steps})" if steps is not None else ""
    print(f"{name}: {info['steps']} steps{ours}, seed {info['seed']}, {info['training_seconds'] / 60:.0f} min of training, "
          f"{info['dtype']} weights, commit {info['commit'][:10]}{' (+ changes not committed)' if info['commit'].endswith('+modified') else ''}")
    return info, nets


def networks_with_state(record: dict, state: dict) -> dict[str, nn.Module]:
    """The networks of ``record`` that ``state`` (``{name: state dict}``, any float precision)
    holds weights for, loaded in float32 and in eval mode (a network inference does not need, a
    discriminator, is not shipped and is left out)."""
    modules = {k: m for k, m in networks_from_record(record).items() if k in state}
    for name, module in modules.items():
        module.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state[name].items()})
    return {k: m.eval() for k, m in modules.items()}
