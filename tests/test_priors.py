"""The prior registry and the "bring your own denoiser" entry (replicate.denoisers.priors), the top-level `prior`
of params.yaml, and what a replaced prior does to folders and verdicts."""
from __future__ import annotations

import sys
import textwrap

import pytest
import torch

from replicate import params as P
from replicate import runtime
from replicate.denoisers import priors
from replicate.report import verdicts as V


@pytest.fixture
def plugin_module(tmp_path, monkeypatch):
    """A user's module with two factories: a plain callable D(x, sigma) and a broken one."""
    (tmp_path / "my_denoisers.py").write_text(textwrap.dedent("""
        import torch

        def shrink(strength=1.0):
            # pull every pixel towards its image's mean, more at higher noise: a (poor) denoiser in ten characters
            def D(x, sigma):
                w = (strength * sigma ** 2 / (sigma ** 2 + 0.01)).reshape(-1, 1, 1, 1)
                return (1 - w) * x + w * x.mean(dim=(1, 2, 3), keepdim=True)
            return D

        def wrong_shape():
            return lambda x, sigma: x[:, :1]
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "my_denoisers"
    sys.modules.pop("my_denoisers", None)


def test_specs_normalise_names_plugins_and_aliases():
    assert priors.as_spec("nlm") == {"kind": "nlm"}
    assert priors.as_spec("pkg.mod:make") == {"kind": "plugin", "target": "pkg.mod:make"}
    assert priors.as_spec({"kind": "universal", "channels": "gray"}) == {"kind": "universal", "channels": "gray"}
    adm = priors.as_spec("adm_ffhq")
    assert adm["kind"] == "adm" and adm["asset"].endswith("ffhq_10m.pt")
    with pytest.raises(priors.PriorError, match="kind"):
        priors.as_spec({"target": "x:y"})
    with pytest.raises(priors.PriorError, match="module:factory"):
        priors.as_spec({"kind": "plugin", "target": "no_colon"})


def test_resolve_replaces_learned_priors_only():
    learned = {"kind": "universal", "channels": "color"}
    analytic = {"kind": "gaussian", "shape": (1, 8, 8)}
    assert priors.resolve(learned, None) == learned
    assert priors.resolve(learned, "default") == learned
    assert priors.resolve(learned, "pkg:f") == {"kind": "plugin", "target": "pkg:f"}
    assert priors.resolve("adm_imagenet", "nlm") == {"kind": "nlm"}
    assert priors.resolve(analytic, "pkg:f") == analytic      # the exact-MMSE controls stay


def test_unknown_prior_names_the_choices():
    with pytest.raises(priors.PriorError, match="known: .*universal.*package.module:factory"):
        priors.load_prior("no_such_prior")


def test_plugin_callable_becomes_a_denoiser(plugin_module):
    den = priors.load_prior({"kind": "plugin", "target": f"{plugin_module}:shrink", "strength": 0.5})
    x = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    sigma = torch.tensor([0.0, 0.1, 1.0])
    out = den(x, sigma)
    w = 0.5 * sigma**2 / (sigma**2 + 0.01)
    expect = (1 - w.reshape(-1, 1, 1, 1)) * x + w.reshape(-1, 1, 1, 1) * x.mean(dim=(1, 2, 3), keepdim=True)
    torch.testing.assert_close(out, expect)
    torch.testing.assert_close(out[0], x[0])                 # sigma 0: untouched
    assert not den.differentiable                           # DPS / MCG refuse it unless the plugin says otherwise
    with pytest.raises(Exception, match="above 1"):          # the interface's input checks apply to plugins too
        den(x, 25.0)


def test_plugin_errors_are_one_line(plugin_module):
    with pytest.raises(priors.PriorError, match="cannot import 'nonexistent_mod'"):
        priors.load_prior("nonexistent_mod:f")
    with pytest.raises(priors.PriorError, match="has no 'nope'"):
        priors.load_prior(f"{plugin_module}:nope")
    den = priors.load_prior(f"{plugin_module}:wrong_shape")
    with pytest.raises(priors.PriorError, match="must return a tensor of the input's shape"):
        den(torch.rand(1, 3, 4, 4), 0.1)


def test_universal_prior_of_mini_is_the_trained_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("profile: mini\n")
    with pytest.raises(FileNotFoundError, match="mohan2020_models stage trains it"):
        priors.load_prior({"kind": "universal", "channels": "gray"}, {"profile": "mini"})


def test_top_level_prior_reaches_the_prior_papers(tmp_path, monkeypatch):
    monkeypatch.delenv("REPLICATE_PRIOR", raising=False)
    everything = {"prior": "mypkg.mod:make"}
    assert P.prior_override(everything, tmp_path / "params.yaml") == ("mypkg.mod:make", "params")
    assert P.prior_override({"prior": "default"}, tmp_path / "params.yaml") == (None, "params")
    monkeypatch.setenv("REPLICATE_PRIOR", "nlm")
    assert P.prior_override(everything, tmp_path / "params.yaml") == ("nlm", "environment")
    with pytest.raises(P.ParamsError, match="params.yaml: prior: a mapping needs kind"):
        monkeypatch.delenv("REPLICATE_PRIOR")
        P.prior_override({"prior": {"target": "a:b"}}, tmp_path / "params.yaml")


def test_a_prior_from_the_environment_writes_its_own_folders():
    base = {"profile": "mini", "prior_override": None, "prior_source": "params"}
    assert runtime.run_name(base) == "mini"
    assert runtime.run_name({**base, "prior_override": "my.mod:nlm", "prior_source": "params"}) == "mini"
    assert runtime.run_name({**base, "prior_override": "my.mod:nlm", "prior_source": "environment"}) == \
        "mini-prior-my-mod-nlm"
    assert runtime.run_name({**base, "prior_override": {"kind": "plugin", "target": "a:b"},
                             "prior_source": "environment"}) == "mini-prior-a-b"


def test_a_replaced_prior_never_reproduces():
    c = V.compare([30.0, 30.1, 29.9, 30.05], 30.0, item="t1", cell="x", metric="psnr", setting="paper")
    assert c.verdict == V.REPRODUCED
    claim = V.superiority("c1", "a beats b", [3.0, 3.2, 2.9, 3.1], [1.0, 1.1, 0.9, 1.2], setting="paper")
    V.demote_to_analogue([c], [claim], "prior replaced by nlm")
    V.holm([claim])
    assert c.verdict == V.ANALOGUE_HOLDS and c.setting == "analogue" and "prior replaced by nlm" in c.note
    assert claim.status == V.ANALOGUE_HOLDS
