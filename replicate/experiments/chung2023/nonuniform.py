"""Chung et al. 2023, Table 4: DPS and MCG on non-uniform deblurring through the bkse blur network (its own image
sets: H, W multiples of 128); "not available here" without the network's weights."""
from __future__ import annotations

from replicate import seeding
from replicate.experiments.chung2023.common import (PAPER, Metrics, _image, _plan, _save_examples, bkse_network_cached,
                                                    make_noise, measure)
from replicate.experiments.chung2023.linear import _method_rows

NONUNIFORM_TASK = "deblur_nonuniform"


def nonuniform_operator(prm: dict, set_name: str, idx: int, shape):
    """The bkse blur of one image: one blur code per image, drawn N(0, latent_scale^2) from a generator seeded by
    (seed, set, image) (the DPS code draws a fresh one on every call; ``resample_latent: true`` does that)."""
    from replicate.operators.nonlinear import NonUniformBlur

    nu = prm["nonuniform"]
    net = bkse_network_cached(prm)
    op = NonUniformBlur(net=net, seed=seeding.derive_seed(prm["seed"], PAPER, "bkse_code", set_name, idx),
                        latent_scale=nu["latent_scale"], latent_shape=net.code_shape(*shape[-2:]),
                        resample_latent=nu["resample_latent"])
    op.shape = tuple(shape)
    return op


def nonuniform_rows(prm: dict, set_name: str, idx: int) -> list[dict]:
    """Table 4: every method of ``nonuniform.methods`` on one image's non-uniform blur with Gaussian noise."""
    from replicate.scaleout import per_process

    im = _image(prm, set_name, idx)
    metrics = per_process((PAPER, "metrics", prm), lambda: Metrics(prm))
    x = im.pixels[None]
    op = nonuniform_operator(prm, set_name, idx, im.shape)
    noise = make_noise(prm, "gaussian")
    y = measure(prm, op, noise, x, set_name, idx, NONUNIFORM_TASK, "gaussian")
    rows, arrays = [], {"image": im.name, "clean": x[0], "measurement": y[0].float()}
    for method in prm["nonuniform"]["methods"]:
        gen = seeding.generator(prm["seed"], PAPER, set_name, idx, NONUNIFORM_TASK, method)
        method_rows, xs = _method_rows(prm, metrics, im, set_name, idx, method, op, noise, y, NONUNIFORM_TASK,
                                       "gaussian", gen)
        rows += method_rows
        arrays[method] = xs[: prm["grid_samples"]]
    _save_examples(prm, "nonuniform", set_name, idx, arrays)
    return rows


def _nonuniform_view(prm: dict) -> dict:
    """Table 4's params: its own image sets (the bkse network needs H, W multiples of 128)."""
    return {**prm, "test_sets": prm["nonuniform"]["test_sets"],
            "gpu_only_sets": prm.get("nonuniform_gpu_only_sets", {})}


def plan_nonuniform(prm: dict) -> tuple[dict, list[tuple]]:
    """Table 4. Without the bkse weights every set is listed as not available here, with the registry's reason."""
    return _plan(prm, "nonuniform", view=_nonuniform_view, needs=bkse_network_cached)
