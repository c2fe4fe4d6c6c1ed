"""Operators of DPS / DDRM: adjoints, SVDs, pseudo-inverses, the exact resizer and blur kernels."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from replicate.operators.base import make_operator
from replicate.operators.kernels import gaussian_kernel, motion_blur_kernel
from replicate.operators.linear import cubic, resize_matrix
from replicate.operators.nonlinear import ForwardModelUnavailable, PhaseRetrieval, fft2_centred

SHAPE = (3, 16, 16)
g = torch.Generator().manual_seed(0)


def _ops():
    return {
        "sr": make_operator("super_resolution", factor=4, shape=SHAPE),
        "sr2": make_operator("super_resolution", factor=2, shape=(3, 10, 14)),
        "gauss": make_operator("gaussian_blur", kernel_size=7, std=1.5, shape=SHAPE),
        "motion": make_operator("motion_blur", kernel_size=9, intensity=0.5, seed=3, shape=SHAPE),
        "gauss_circ": make_operator("gaussian_blur_circular", kernel_size=7, std=1.5, shape=SHAPE),
        "motion_circ": make_operator("motion_blur_circular", kernel_size=9, seed=3, shape=SHAPE),
        "uniform_circ": make_operator("uniform_blur_circular", size=3, shape=(3, 9, 8)),
        "box": make_operator("box_inpainting", box=6, margin=2, shape=SHAPE, n_images=2),
        "random": make_operator("random_inpainting", missing=0.92, shape=SHAPE, n_images=2),
        "denoise": make_operator("denoising", shape=SHAPE),
    }


@pytest.mark.parametrize("name", list(_ops()))
def test_adjoint(name):
    op = _ops()[name]
    x = torch.randn(2, *op.shape, generator=g, dtype=torch.float64)
    Ax = op(x)
    y = torch.randn(Ax.shape, generator=g, dtype=torch.float64)
    lhs = (Ax * y).sum()
    rhs = (x * op.adjoint(y, like=x)).sum()
    assert abs(lhs - rhs) < 1e-10 * (abs(lhs) + 1)
    # and the explicit adjoint equals autograd's vector-Jacobian product
    xr = x.clone().requires_grad_(True)
    (vjp,) = torch.autograd.grad(op(xr), xr, grad_outputs=y)
    assert torch.allclose(vjp, op.adjoint(y, like=x), atol=1e-10)


@pytest.mark.parametrize("name", [n for n, o in _ops().items() if o.svd_available])
def test_svd(name):
    op = _ops()[name]
    x = torch.randn(2, *op.shape, generator=g, dtype=torch.float64)
    assert torch.allclose(op.svd_apply(x), op(x), atol=1e-10)
    z = op.V_T(x)
    assert z.shape == (2, op.input_dim)
    assert torch.allclose(op.V(z), x, atol=1e-10)                   # V orthogonal
    assert torch.allclose(z.norm(dim=1), x.flatten(1).norm(dim=1))  # isometry
    y = torch.randn(op(x).shape, generator=g, dtype=torch.float64)
    assert torch.allclose(op.U(op.U_T(y)), y, atol=1e-10)
    # pseudo-inverse = minimum-norm least squares; compare with the dense pinv on the first image
    if name not in ("box", "random"):  # per-image masks: the dense matrix is of one mask only
        A = op.as_matrix()
        ref = torch.linalg.pinv(A, rtol=1e-10) @ y[0].reshape(-1)
        assert torch.allclose(op.pseudo_inverse(y)[0].reshape(-1), ref, atol=1e-7)
    else:
        xp = op.pseudo_inverse(y)
        assert torch.allclose(op(xp), y * op.masks, atol=1e-12)


def test_cubic_is_keys_a_minus_half():
    d = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0, 2.5], dtype=torch.float64)
    ref = torch.tensor([1.0, 0.5625, 0.0, -0.0625, 0.0, 0.0], dtype=torch.float64)
    assert torch.allclose(cubic(d), ref)


def test_resizer_interior_matches_torch_antialiased_bicubic():
    # torch's antialiased bicubic (= PIL's) uses the same Keys a=-0.5 kernel stretched by 1/s, the same pixel-centre
    # alignment and normalised weights; it truncates at the border where Shocher's resizer mirrors, so compare inside
    x = torch.rand(1, 3, 64, 64, generator=g, dtype=torch.float64)
    op = make_operator("super_resolution", factor=4, shape=(3, 64, 64))
    ours = op(x)
    ref = F.interpolate(x, scale_factor=0.25, mode="bicubic", antialias=True, align_corners=False)
    assert torch.allclose(ours[..., 2:-2, 2:-2], ref[..., 2:-2, 2:-2], atol=1e-12)
    R = resize_matrix(64, scale=0.25)
    assert torch.allclose(R.sum(1), torch.ones(16, dtype=torch.float64))
    assert (R[5] != 0).sum() == 16  # support 4 / s input pixels


def test_resizer_boundary_mirrors():
    # first output pixel of x4: centre at input 2.5 (1-based), taps 1-2 = -5.5..-0.5 fold onto 0..5 (half-sample)
    R = resize_matrix(16, scale=0.25)
    u = 2.5
    j = torch.arange(-5, 11, dtype=torch.float64)
    w = 0.25 * cubic(0.25 * (u - j))
    w = w / w.sum()
    dense = torch.zeros(16, dtype=torch.float64)
    for jj, ww in zip(j.long(), w):
        k = int(jj) - 1
        k = -k - 1 if k < 0 else k
        dense[k] += ww
    assert torch.allclose(R[0], dense, atol=1e-14)


def test_gaussian_kernel_matches_scipy():
    from scipy.ndimage import gaussian_filter

    imp = np.zeros((61, 61))
    imp[30, 30] = 1.0
    ref = gaussian_filter(imp, sigma=3.0)
    k = gaussian_kernel(61, 3.0)
    assert np.allclose(k.numpy(), ref, atol=1e-15)
    assert k.shape == (61, 61) and abs(float(k.sum()) - 1) < 1e-12


def test_motion_kernel_seeded_and_normalised():
    a = motion_blur_kernel(61, 0.5, seed=1)
    b = motion_blur_kernel(61, 0.5, seed=1)
    c = motion_blur_kernel(61, 0.5, seed=2)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (61, 61) and float(a.min()) >= 0 and abs(float(a.sum()) - 1) < 1e-12
    # a trajectory, not a point: mass spread over many pixels
    assert int((a > 1e-3).sum()) > 20


def test_reflect_convolution_is_dps_padding():
    op = make_operator("gaussian_blur", kernel_size=5, std=1.0, shape=(3, 8, 8))
    x = torch.rand(1, 3, 8, 8, generator=g, dtype=torch.float64)
    conv = torch.nn.Sequential(torch.nn.ReflectionPad2d(2), torch.nn.Conv2d(3, 3, 5, bias=False, groups=3)).double()
    conv[1].weight.data[:] = gaussian_kernel(5, 1.0)
    assert torch.allclose(op(x), conv(x), atol=1e-14)


def test_box_mask_depends_on_index_not_batch():
    a = make_operator("box_inpainting", box=4, margin=1, seed=5, shape=(3, 12, 12), n_images=3)
    b = make_operator("box_inpainting", box=4, margin=1, seed=5, shape=(3, 12, 12), n_images=1, first_index=2)
    assert torch.equal(a.masks[2:], b.masks)
    assert int((a.masks[0, 0] == 0).sum()) == 16
    r = make_operator("random_inpainting", missing=0.92, shape=(3, 50, 50))
    assert int((r.masks[0, 0] == 0).sum()) == int(0.92 * 2500)
    assert torch.equal(r.masks[0, 0], r.masks[0, 1])  # all channels of a pixel together


def test_phase_retrieval_dps_convention():
    op = PhaseRetrieval(oversample=2.0)
    assert op.pad_for(256) == 64
    x = torch.rand(2, 3, 16, 16, generator=g, dtype=torch.float64)
    y = op(x)
    assert y.shape == (2, 3, 24, 24)
    # Parseval (orthonormal FFT) and the [-1, 1] convention: |F pad(2x - 1)| / 2
    assert torch.allclose((y**2).sum((-2, -1)), ((x - 0.5) ** 2).sum((-2, -1)))
    xp = F.pad(2 * x - 1, (4, 4, 4, 4))
    ref = torch.fft.fftshift(torch.fft.fft2(torch.fft.ifftshift(xp, dim=(-2, -1)), norm="ortho"), dim=(-2, -1)).abs()
    assert torch.allclose(y, ref / 2)
    # invariant to the trivial ambiguities: translation within the support and flip (conjugate)
    assert torch.allclose(op(torch.flip(x, (-2, -1))), y, atol=1e-12)


def test_centred_dft_puts_the_origin_in_the_middle_on_both_sides():
    # the magnitude |F x| is the same whatever shift comes before the DFT, but ER / HIO / OSS go back through the
    # phase (solvers/phase_retrieval.py), so both shifts matter: a delta at the centre pixel (H // 2, W // 2) has a flat
    # spectrum of zero phase, and a constant image puts all its energy at the centre frequency
    for H, W in [(6, 8), (5, 7)]:
        delta = torch.zeros(1, 1, H, W, dtype=torch.float64)
        delta[..., H // 2, W // 2] = 1.0
        assert torch.allclose(fft2_centred(delta), torch.full((1, 1, H, W), (H * W) ** -0.5, dtype=torch.complex128))
        spectrum = fft2_centred(torch.ones(1, 1, H, W, dtype=torch.float64)).abs()
        assert spectrum[..., H // 2, W // 2].item() == pytest.approx((H * W) ** 0.5)
        assert spectrum.sum().item() == pytest.approx((H * W) ** 0.5)


def test_nonuniform_blur_unavailable_says_why(tmp_path):
    with pytest.raises(ForwardModelUnavailable, match="GOPRO_wVAE.pth"):
        make_operator("nonlinear_blur", weights=tmp_path / "missing.pth")
    op = make_operator("nonlinear_blur", net=lambda x, z: x * 0.5 + z.mean())
    assert op.latent.shape == (1, 512, 2, 2)
    assert torch.all(op(torch.rand(1, 3, 4, 4)) <= 1)


def test_unknown_operator_message():
    with pytest.raises(KeyError, match="known"):
        make_operator("nope")


def test_nonuniform_blur_latent_is_fixed_unless_resampled_like_the_dps_code():
    net = lambda x, z: x * 0 + 0.5 * z.abs().mean()  # noqa: E731 (the output shows which latent was used)
    fixed = make_operator("nonlinear_blur", net=net, seed=3)
    x = torch.zeros(1, 3, 4, 4)
    assert torch.equal(fixed(x), fixed(x))
    again = make_operator("nonlinear_blur", net=net, seed=3, resample_latent=True)
    first, second = again(x), again(x)
    assert not torch.equal(first, second)
    replay = make_operator("nonlinear_blur", net=net, seed=3, resample_latent=True)
    assert torch.equal(replay(x), first) and torch.equal(replay(x), second)       # seeded: the same sequence


# ------------------------------------------------------------------------- every registered linear operator
SMALL_SHAPE = (3, 8, 8)


def _two_masks():
    m = torch.ones(2, 1, 8, 8, dtype=torch.float64)
    m[0, :, :2] = 0
    m[1, :, -2:, :] = 0
    return m


# small constructor arguments for every registered linear operator (a new registration must be added here)
REGISTERED_LINEAR = {
    "super_resolution": [dict(factor=2)],
    "gaussian_blur": [dict(kernel_size=5, std=1.0)],
    "motion_blur": [dict(kernel_size=5, seed=1)],
    "uniform_blur": [dict(size=3)],
    "gaussian_blur_circular": [dict(kernel_size=5, std=1.0)],
    "motion_blur_circular": [dict(kernel_size=5, seed=1)],
    "uniform_blur_circular": [dict(size=3)],
    "inpainting": [dict(masks=_two_masks())],
    "box_inpainting": [dict(box=2, margin=1, n_images=2)],
    "random_inpainting": [dict(missing=0.5, n_images=2)],
    "denoising": [dict()],
    # the orthonormal operators (Kadkhodaie & Simoncelli 2021, compressive sensing)
    "inpaint_block": [dict(hole=2)],
    "random_pixels": [dict(keep=0.3, seed=1), dict(keep=0.3, seed=1, per_channel=False)],
    "block_average": [dict(factor=2)],
    "low_frequencies": [dict(keep=0.3), dict(keep=0.2, basis="dct")],
    "compressive_sensing": [dict(ratio=0.25, seed=1), dict(m=40, seed=1, construction="whole_image")],
}
LINEAR_CASES = [(name, i) for name, kws in REGISTERED_LINEAR.items() for i in range(len(kws))]


def _registered(name, i):
    return make_operator(name, shape=SMALL_SHAPE, **REGISTERED_LINEAR[name][i])


def test_every_registered_linear_operator_is_covered():
    from replicate.operators.base import registered_operators

    linear = {name for name, cls in registered_operators().items() if cls.linear}
    assert linear == set(REGISTERED_LINEAR), "add small arguments for new operators to REGISTERED_LINEAR"


def _dot(a, b):
    return (a * b).sum()


@pytest.mark.parametrize("name,i", LINEAR_CASES)
def test_registered_operator_adjoint(name, i):
    """<A x, y> = <x, A^T y> in float64 to 1e-10 (relative to ||A x|| ||y||)."""
    op = _registered(name, i)
    gen = torch.Generator().manual_seed(11)
    x = torch.randn(2, *SMALL_SHAPE, generator=gen, dtype=torch.float64)
    Ax = op(x)
    y = torch.randn(Ax.shape, generator=gen, dtype=torch.float64)
    lhs, rhs = _dot(Ax, y), _dot(x, op.adjoint(y, like=x))
    torch.testing.assert_close(lhs, rhs, rtol=1e-10, atol=1e-10 * float(Ax.norm() * y.norm()))


@pytest.mark.parametrize("name,i", [c for c in LINEAR_CASES if _registered(*c).svd_available])
def test_registered_operator_svd_and_pseudo_inverse(name, i):
    """A x = U(s * V_T(x)) (first r coefficients), and pseudo_inverse gives least-squares solutions."""
    op = _registered(name, i)
    gen = torch.Generator().manual_seed(12)
    x = torch.randn(2, *SMALL_SHAPE, generator=gen, dtype=torch.float64)
    Ax = op(x)
    s = op.singulars().to(torch.float64)
    r = s.numel()
    coef = op.V_T(x)
    assert coef.shape[1] >= op.input_dim and r <= min(coef.shape[1], op.measurement_dim)
    z = torch.zeros(2, op.measurement_dim, dtype=torch.float64)
    z[:, :r] = s * coef[:, :r]
    scale = float(Ax.norm())
    torch.testing.assert_close(op.U(z), Ax, rtol=0, atol=1e-10 * scale)
    # pseudo_inverse(A x) solves A x' = A x (a least-squares solution with zero residual) ...
    tol = _pinv_tol(op)
    xp = op.pseudo_inverse(Ax)
    torch.testing.assert_close(op(xp), Ax, rtol=0, atol=tol * scale)
    # ... and for any y the normal equations A^T (A A^+ y - y) = 0 hold
    y = torch.randn(Ax.shape, generator=gen, dtype=torch.float64)
    normal = op.adjoint(op(op.pseudo_inverse(y)) - y, like=x)
    assert float(normal.norm()) <= tol * float(s.max()) * float(y.norm())


def _pinv_tol(op):
    """1e-8; 1e-6 for the per-channel compressive sensing, whose Q is stored in float32, so that its pseudo-inverse
    A^T is exact to float32 rounding only (kept so: the lecture's committed results use it)."""
    return 1e-6 if getattr(op, "Q", torch.zeros(0, dtype=torch.float64)).dtype == torch.float32 else 1e-8


@pytest.mark.parametrize("name,i", [c for c in LINEAR_CASES if c[0] in
                                    {"inpaint_block", "random_pixels", "block_average", "low_frequencies",
                                     "compressive_sensing"}])
def test_orthonormal_operators_have_orthonormal_rows(name, i):
    """A A^T = I (the per-channel compressive sensing stores Q in float32: orthonormal to float32 rounding)."""
    from replicate.operators.orthonormal import OrthonormalOperator

    op = _registered(name, i)
    assert isinstance(op, OrthonormalOperator)
    y = torch.randn(3, *op.measurement_shape, generator=torch.Generator().manual_seed(13), dtype=torch.float64)
    tol = 1e-6 if getattr(op, "Q", torch.zeros(0, dtype=torch.float64)).dtype == torch.float32 else 1e-10
    torch.testing.assert_close(op(op.adjoint(y)), y, rtol=0, atol=tol)
    torch.testing.assert_close(op.pseudo_inverse(y), op.adjoint(y), rtol=0, atol=0)
    assert torch.equal(op.singulars(), torch.ones_like(op.singulars()))


def test_motion_rasteriser_puts_unit_mass_per_unit_length_on_the_path():
    """The 'described' kernel family's rasteriser: a segment deposits its length as mass, bilinearly, where it is:
    a horizontal one on its own row, a slanted one with its centroid at the segment's midpoint."""
    from replicate.operators.kernels import _rasterise

    k = _rasterise(torch.tensor([[5.0, 2.0], [5.0, 8.0]], dtype=torch.float64), 11)
    assert k.sum().item() == pytest.approx(6.0)
    assert k[5].sum().item() == pytest.approx(6.0) and k[5, 2:8].min() > 0 and k[5, :2].sum() == k[5, 9:].sum() == 0
    pts = torch.tensor([[2.3, 1.6], [7.7, 6.1], [8.2, 9.4]], dtype=torch.float64)
    k = _rasterise(pts, 12)
    seg = (pts[1:] - pts[:-1]).norm(dim=1)
    assert k.sum().item() == pytest.approx(seg.sum().item())
    rows, cols = torch.meshgrid(torch.arange(12.0, dtype=torch.float64), torch.arange(12.0, dtype=torch.float64),
                                indexing="ij")
    centroid = torch.stack([(k * rows).sum(), (k * cols).sum()]) / k.sum()
    expect = (0.5 * (pts[1:] + pts[:-1]) * seg[:, None]).sum(0) / seg.sum()   # midpoints weighted by length
    torch.testing.assert_close(centroid, expect, rtol=0, atol=1e-9)


def test_uniform_kernel_is_a_normalised_box():
    from replicate.operators.kernels import uniform_kernel

    k = uniform_kernel(5)
    assert k.shape == (5, 5) and torch.allclose(k, torch.full((5, 5), 1 / 25, dtype=torch.float64))
    assert uniform_kernel(3).sum().item() == pytest.approx(1.0)
