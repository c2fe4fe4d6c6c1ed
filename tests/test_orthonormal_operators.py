"""Orthonormal measurement operators (Kadkhodaie & Simoncelli 2021, Sec. 3): each against M^T M = I and its definition."""
import numpy as np
import pytest
import scipy.fft
import torch
import torch.nn.functional as F

from replicate.operators.base import Operator, make_operator, registered_operators
from replicate.operators.orthonormal import (
    BlockAverage, BlockInpainting, LowFrequencies, OrthonormalOperator, RandomPixels, RandomProjection,
)

torch.set_num_threads(1)

SMALL = {
    "inpaint_block": dict(hole=4),
    "random_pixels": dict(keep=0.3, seed=3),
    "block_average": dict(factor=4),
    "low_frequencies": dict(keep=0.3),
    "compressive_sensing": dict(m=40, seed=1, construction="whole_image"),
}
# the lecture's construction of compressive sensing (one matrix per channel): m = C * m_c
PER_CHANNEL = dict(keep=0.25, seed=1, construction="per_channel")
CASES = [(name, shape, SMALL[name]) for name in SMALL for shape in [(1, 16, 16), (3, 8, 8)]] + [
    ("compressive_sensing", shape, PER_CHANNEL) for shape in [(1, 16, 16), (3, 8, 8)]]


def _tol(op):
    """1e-10, or 1e-6 for the per-channel compressive sensing, whose Q is stored in float32 (orthonormal to float32
    rounding only; kept so for the lecture's committed results)."""
    q = getattr(op, "Q", None)
    return 1e-6 if q is not None and q.dtype == torch.float32 else 1e-10


def _rand(shape, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("name,shape,kw", CASES)
def test_orthonormal_columns_projection_and_adjoint(name, shape, kw):
    op = make_operator(name, shape=shape, **kw)
    M = op.as_matrix()
    D = int(np.prod(shape))
    assert M.shape == (D, op.m) and 0 < op.m < D
    tol = _tol(op)
    torch.testing.assert_close(M.T @ M, torch.eye(op.m, dtype=torch.float64), atol=tol, rtol=0)

    x = _rand((2, *shape), 1)
    c = _rand((2, op.m), 2)
    # the function forms agree with the dense matrix
    torch.testing.assert_close(op.M_T(x), x.flatten(1) @ M)
    torch.testing.assert_close(op.M(c).flatten(1), c @ M.T)
    # <M^T x, c> = <x, M c>
    torch.testing.assert_close((op.M_T(x) * c).sum(), (x * op.M(c)).sum())
    # M M^T is an orthogonal projection: idempotent and symmetric
    P = M @ M.T
    torch.testing.assert_close(P @ P, P, atol=tol, rtol=0)
    torch.testing.assert_close(P, P.T, atol=1e-12, rtol=0)
    torch.testing.assert_close(op.project(op.project(x)), op.project(x), atol=tol, rtol=0)
    assert op.M_T(x.float()).dtype == torch.float32  # computes in the input's dtype


def test_inpainting_keeps_all_but_a_centred_30x30_hole():
    op = BlockInpainting((3, 64, 64), hole=30)
    assert op.m == 3 * (64 * 64 - 900)
    kept = op.project(torch.ones(1, 3, 64, 64))[0]
    assert kept[:, 17:47, 17:47].abs().sum() == 0  # rows/cols 32 - 15 ... 32 + 14
    assert kept.sum() == op.m
    with pytest.raises(ValueError):
        BlockInpainting((1, 20, 20), hole=30)


def test_random_pixels_count_seed_and_channel_sharing():
    shape = (3, 16, 16)
    a, b = RandomPixels(shape, keep=0.1, seed=0), RandomPixels(shape, keep=0.1, seed=0)
    assert a.m == round(0.1 * 3 * 256) and torch.equal(a.index, b.index)
    assert not torch.equal(a.index, RandomPixels(shape, keep=0.1, seed=1).index)
    # default (as the original code): independent per channel, so channel masks differ
    assert not torch.equal(a.mask[0], a.mask[1])
    shared = RandomPixels(shape, keep=0.3, seed=0, per_channel=False)
    assert shared.m == 3 * round(0.3 * 256)
    assert torch.equal(shared.mask[0], shared.mask[1]) and torch.equal(shared.mask[0], shared.mask[2])


def test_block_average_is_avg_pool_upsampled():
    op = BlockAverage((3, 16, 16), factor=4)
    x = _rand((2, 3, 16, 16))
    expected = F.interpolate(F.avg_pool2d(x, 4), scale_factor=4, mode="nearest")
    torch.testing.assert_close(op.project(x), expected)
    torch.testing.assert_close(op.M_T(x), 4 * F.avg_pool2d(x, 4).flatten(1))  # unit-norm box: 1/4 on 16 px
    assert op.m == 3 * 4 * 4
    with pytest.raises(ValueError):
        BlockAverage((1, 10, 10), factor=4)


@pytest.mark.parametrize("keep", [0.1, 0.3])
@pytest.mark.parametrize("basis", ["fourier", "dct"])
def test_low_frequencies_count_and_lowpass(keep, basis):
    shape = (1, 16, 16)
    op = LowFrequencies(shape, keep=keep, basis=basis)
    assert op.m == round(keep * 256)
    t = torch.arange(16, dtype=torch.float64)
    const = torch.full((1, *shape), 0.7, dtype=torch.float64)
    highest = (op.Bh[-1][:, None] * op.Bw[-1][None, :]).reshape(1, *shape)  # the highest-frequency basis image
    torch.testing.assert_close(op.project(const), const)
    assert op.project(highest).abs().max() < 1e-10
    if basis == "fourier":
        # a whole +-k group at the lowest frequency passes unchanged (as with the original's FFT mask)
        wave = torch.cos(2 * np.pi * t / 16).expand(16, 16).reshape(1, *shape)
        torch.testing.assert_close(op.project(wave), wave)


def test_low_frequencies_dct_matches_scipy():
    op = LowFrequencies((1, 8, 8), keep=0.3, basis="dct")
    x = _rand((1, 1, 8, 8))
    ref = scipy.fft.dctn(x[0, 0].numpy(), norm="ortho").ravel()[op.index.numpy()]
    np.testing.assert_allclose(op.M_T(x)[0].numpy(), ref, atol=1e-12)


def test_low_frequencies_fourier_full_group_matches_fft_mask():
    # keep = 5/64: DC plus the four (+-1, 0), (0, +-1) frequencies -> M M^T = real(ifft(mask * fft(x)))
    op = LowFrequencies((1, 8, 8), keep=5 / 64)
    mask = torch.zeros(8, 8, dtype=torch.float64)
    mask[0, 0] = mask[1, 0] = mask[-1, 0] = mask[0, 1] = mask[0, -1] = 1
    x = _rand((2, 1, 8, 8))
    ref = torch.fft.ifft2(mask * torch.fft.fft2(x, norm="ortho"), norm="ortho").real
    torch.testing.assert_close(op.project(x), ref)


def test_random_projection_is_deterministic_and_guards_size():
    wi = dict(construction="whole_image")
    a, b = RandomProjection((1, 8, 8), m=20, seed=4, **wi), RandomProjection((1, 8, 8), keep=20 / 64, seed=4, **wi)
    assert a.m == b.m == 20 and torch.equal(a.Q, b.Q) and a.Q.dtype == torch.float64
    with pytest.raises(ValueError, match="smaller crop"):
        RandomProjection((3, 256, 256), m=20000, **wi)
    # the lecture's construction: one (H*W) x m_c matrix for every channel, float32, measurements (N, C, m_c)
    c = RandomProjection((3, 8, 8), ratio=0.25, seed=4)
    assert c.construction == "per_channel" and c.Q.shape == (64, 16) and c.Q.dtype == torch.float32
    assert c.m == 48 and torch.equal(RandomProjection((3, 8, 8), m=48, seed=4).Q, c.Q)
    assert c(torch.zeros(2, 3, 8, 8)).shape == (2, 3, 16) and c.M_T(torch.zeros(2, 3, 8, 8)).shape == (2, 48)
    # the same seed draws different matrices in the two constructions (each kept for its committed results)
    assert not torch.allclose(RandomProjection((1, 8, 8), m=16, seed=4).Q.double(),
                              RandomProjection((1, 8, 8), m=16, seed=4, **wi).Q)
    with pytest.raises(ValueError, match="too large"):
        RandomProjection((1, 256, 256), ratio=0.1)
    with pytest.raises(ValueError, match="exactly one"):
        RandomProjection((1, 8, 8), seed=0)
    with pytest.raises(ValueError, match="construction"):
        RandomProjection((1, 8, 8), m=4, construction="nope")


def test_registry():
    # one registry: the orthonormal operators are Operators, registered by name next to the DPS / DDRM ones
    ops = registered_operators()
    ortho = {name for name, cls in ops.items() if issubclass(cls, OrthonormalOperator)}
    assert ortho == set(SMALL)
    assert {"super_resolution", "inpainting", "phase_retrieval"} <= set(ops) - ortho
    op = make_operator("block_average", shape=(1, 8, 8), factor=2)
    assert isinstance(op, BlockAverage) and isinstance(op, Operator) and op.linear and op.svd_available
    assert type(op).registered_name == "block_average"
    with pytest.raises(KeyError):
        make_operator("nope", shape=(1, 8, 8))
    with pytest.raises(TypeError):  # shape is a keyword, as for every operator
        make_operator("block_average", (1, 8, 8), factor=2)


@pytest.mark.parametrize("name,shape,kw", CASES)
def test_operator_interface_is_M_transpose(name, shape, kw):
    """forward = M^T, adjoint = pseudo-inverse = M, A A^T = I, the SVD interface reproduces A."""
    op = make_operator(name, shape=shape, **kw)
    x = _rand((2, *shape), 5)
    c = _rand((2, op.m), 6)
    assert op.measurement_dim == op.m and torch.equal(op(x).reshape(2, -1), op.M_T(x))
    y = c.reshape(2, *op.measurement_shape)
    assert torch.equal(op.adjoint(y), op.M(c)) and torch.equal(op.pseudo_inverse(y), op.M(c))
    tol = _tol(op)
    torch.testing.assert_close(op(op.adjoint(y)), y, atol=tol, rtol=0)            # A A^T = I
    torch.testing.assert_close(op.svd_apply(x), op(x), atol=1e-12, rtol=0)
    torch.testing.assert_close(op.V(op.V_T(x)), x, atol=tol, rtol=0)
    assert torch.equal(op.singulars(), torch.ones_like(op.singulars())) and op.singulars().numel() == op.m
