"""The sparse-DCT compressive-sensing baseline (replicate/solvers/sparse_dct.py) against its definitions."""
import numpy as np
import pytest
import scipy.fft
import torch

from replicate.operators.base import make_operator
from replicate.solvers import sparse_dct as S

torch.set_num_threads(1)


def test_dct_matrix_is_orthonormal_and_matches_scipy():
    B = S.dct_matrix(12)
    torch.testing.assert_close(B @ B.T, torch.eye(12, dtype=B.dtype))
    v = np.random.default_rng(0).standard_normal(12)
    np.testing.assert_allclose(B.numpy() @ v, scipy.fft.dct(v, norm="ortho"), atol=1e-12)
    dct = S.DCT2(6, 10)
    x = torch.randn(2, 3, 6, 10, dtype=torch.float64)
    np.testing.assert_allclose(dct.forward(x).numpy(), scipy.fft.dctn(x.numpy(), axes=(-2, -1), norm="ortho"),
                               atol=1e-12)
    torch.testing.assert_close(dct.inverse(dct.forward(x)), x)


def test_soft_threshold():
    a = torch.tensor([-3.0, -0.5, 0.0, 0.2, 2.0])
    torch.testing.assert_close(S.soft_threshold(a, 1.0), torch.tensor([-2.0, 0.0, 0.0, 0.0, 1.0]))


def _cs(shape, **kw):
    """Kadkhodaie 2021's random projection (one D x m matrix over the whole image), as the experiment uses."""
    return make_operator("compressive_sensing", shape=shape, construction="whole_image", **kw)


def _sparse_image(shape, k, seed):
    """An image with exactly k non-zero DCT coefficients (and its coefficients)."""
    g = torch.Generator().manual_seed(seed)
    C, H, W = shape
    a = torch.zeros(1, C, H, W, dtype=torch.float64)
    idx = torch.randperm(C * H * W, generator=g)[:k]
    a.view(-1)[idx] = torch.randn(k, generator=g, dtype=torch.float64)
    return S.DCT2(H, W).inverse(a), a


def test_fista_solves_the_lasso():
    """KKT conditions of min 0.5||M^T Psi a - x_c||^2 + lam ||a||_1 at the FISTA solution."""
    shape = (1, 8, 8)
    x, _ = _sparse_image(shape, 6, 0)
    op = _cs(shape, m=30, seed=1)
    Q = op.as_matrix()
    xc = op.M_T(x)
    lam = 0.01
    img = S.fista_path(Q, xc, shape, [lam], iters=3000)[0]
    dct = S.DCT2(8, 8)
    a = dct.forward(img)
    grad = dct.forward(op.M(op.M_T(img) - xc))  # Psi^T M (M^T Psi a - x_c)
    on = a.abs() > 1e-8
    torch.testing.assert_close(grad[on], -lam * torch.sign(a[on]), atol=1e-6, rtol=0)
    assert (grad[~on].abs() <= lam + 1e-6).all()


def test_recovers_a_sparse_image_from_few_projections():
    """Compressive sensing: a k-sparse DCT image from m ~ 4 k log(N/k) random projections, nearly exactly."""
    shape = (1, 16, 16)
    x, _ = _sparse_image(shape, 8, 2)
    op = _cs(shape, m=110, seed=3)
    xc = op.M_T(x)
    lam_max = float(S.DCT2(16, 16).forward(op.M(xc)).abs().max())
    res = S.recover(op, xc, lambdas=[lam_max * r for r in (0.1, 0.01, 0.001, 1e-4)], folds=4, iters=300)
    rel = ((res.images - x).norm() / x.norm()).item()
    assert rel < 0.02, rel
    # the least-squares image M M^T x is far off: the prior is doing the work
    assert ((op.project(x) - x).norm() / x.norm()).item() > 0.5
    # the returned images satisfy the measurements exactly
    torch.testing.assert_close(op.M_T(res.images), xc, atol=1e-9, rtol=0)
    # cross-validation does not pick the largest threshold for noise-free sparse data
    assert res.lam.item() < lam_max * 0.1


def test_cross_validation_masks_and_held_out_measurements():
    masks = S.fold_masks(10, 3, torch.Generator().manual_seed(0))
    assert masks.shape == (3, 10) and torch.equal((1 - masks).sum(0), torch.ones(10, dtype=masks.dtype))
    with pytest.raises(ValueError):
        S.fold_masks(2, 3, torch.Generator())
    # with a mask, the held-out measurements do not influence the fit at all
    shape = (1, 8, 8)
    op = _cs(shape, m=24, seed=0)
    Q = op.as_matrix()
    xc = torch.randn(1, 24, dtype=torch.float64)
    mask = torch.ones(1, 24, dtype=torch.float64)
    mask[0, :6] = 0
    changed = xc.clone()
    changed[0, :6] += 5.0
    a = S.fista_path(Q, xc, shape, [0.05], iters=50, mask=mask)
    b = S.fista_path(Q, changed, shape, [0.05], iters=50, mask=mask)
    torch.testing.assert_close(a, b)


def test_oracle_is_at_least_as_good_as_cross_validation():
    shape = (1, 12, 12)
    g = torch.Generator().manual_seed(4)
    x = torch.rand(2, *shape, generator=g, dtype=torch.float64).cumsum(-1) / 12  # smooth ramps + texture
    op = _cs(shape, m=50, seed=5)
    xc = op.M_T(x)
    lams = [1.0, 0.3, 0.1, 0.03, 0.01]
    cv = S.recover(op, xc, lambdas=lams, folds=3, iters=100, select="per_image")
    orc = S.oracle(op, xc, x, lambdas=lams, iters=100)
    err = lambda im: (im - x).pow(2).flatten(1).mean(1)  # noqa: E731
    assert (err(orc.images) <= err(cv.images) + 1e-12).all()
    with pytest.raises(ValueError):
        S.recover(op, xc, lambdas=[0.1, -1.0])
