"""The shift corruptions against hand-worked cases and independent float64 computations."""

import io
import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from sklearn.datasets import load_digits

from ugmm_vision.data.corruptions import CORRUPTIONS, SEVERITY_PARAMS, corrupt

RANDOM = ("gaussian_noise", "rotation")


def digit_batch(n=32, size=32, channels=3):
    """Real handwritten digits in [0, 1], upsampled and coloured: natural-looking test images."""
    images = torch.as_tensor(load_digits().images[:n], dtype=torch.float32)[:, None] / 16  # (N, 1, 8, 8)
    images = F.interpolate(images, size=size, mode="bilinear", align_corners=False)  # (N, 1, S, S)
    tint = torch.linspace(0.6, 1.0, channels).view(1, channels, 1, 1)
    return (images * tint).clamp(0, 1)  # (N, C, S, S)


def test_registry_and_tables():
    assert set(CORRUPTIONS) == set(SEVERITY_PARAMS) >= {
        "gaussian_noise", "gaussian_blur", "contrast", "pixelate", "jpeg", "rotation"
    }  # fmt: skip
    assert all(len(v) == 5 for v in SEVERITY_PARAMS.values())
    # CIFAR-10-C's table (Hendrycks & Dietterich, make_cifar_c.py)
    assert SEVERITY_PARAMS["gaussian_noise"] == (0.04, 0.06, 0.08, 0.09, 0.10)
    assert SEVERITY_PARAMS["jpeg"] == (80, 65, 58, 50, 40)


@pytest.mark.parametrize("name", list(CORRUPTIONS))
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 28, 28), (4, 1, 9, 7), (2, 3, 32, 32)])
def test_shape_dtype_range_kept(name, shape):
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    for severity in (1, 5):
        y = corrupt(x, name, severity, generator=torch.Generator().manual_seed(1))
        assert y.shape == x.shape and y.dtype == x.dtype
        assert y.min() >= 0 and y.max() <= 1 and torch.isfinite(y).all()


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_deterministic_given_seed(name):
    x = digit_batch(8)
    a = corrupt(x, name, 3, generator=torch.Generator().manual_seed(7))
    b = corrupt(x, name, 3, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    if name in RANDOM:
        c = corrupt(x, name, 3, generator=torch.Generator().manual_seed(8))
        assert not torch.equal(a, c)


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_distortion_grows_with_severity(name):
    x = digit_batch(32)
    mse = [
        (corrupt(x, name, s, generator=torch.Generator().manual_seed(0)) - x).pow(2).mean().item() for s in range(1, 6)
    ]
    assert mse[0] > 0
    assert all(a <= b + 1e-9 for a, b in itertools.pairwise(mse)), mse
    assert mse[-1] > 1.5 * mse[0]


@pytest.mark.parametrize("severity", [1, 3, 5])
def test_gaussian_noise_std_matches_table(severity):
    x = torch.full((1, 128, 128), 0.5)  # far from the clipping bounds
    y = corrupt(x, "gaussian_noise", severity, generator=torch.Generator().manual_seed(0))
    residual = (y - x).double()
    assert residual.std().item() == pytest.approx(SEVERITY_PARAMS["gaussian_noise"][severity - 1], rel=0.03)
    assert abs(residual.mean().item()) < 0.005


@pytest.mark.parametrize("severity", [1, 2, 5])
def test_contrast_formula(severity):
    c = SEVERITY_PARAMS["contrast"][severity - 1]
    x = torch.rand(2, 3, 5, 6, generator=torch.Generator().manual_seed(0))
    xd = x.double()
    grey = 0.2989 * xd[:, 0] + 0.587 * xd[:, 1] + 0.114 * xd[:, 2]  # torchvision's luma weights
    expected = c * xd + (1 - c) * grey.mean(dim=(-2, -1)).view(2, 1, 1, 1)
    torch.testing.assert_close(corrupt(x, "contrast", severity).double(), expected.clamp(0, 1), atol=1e-5, rtol=0)
    one = x[:, :1]  # one channel: blend towards the image mean
    expected = c * one.double() + (1 - c) * one.double().mean(dim=(-3, -2, -1), keepdim=True)
    torch.testing.assert_close(corrupt(one, "contrast", severity).double(), expected, atol=1e-6, rtol=0)


def test_rotation_quarter_turn_by_hand():
    x = torch.tensor([[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]]) / 9  # (1, 3, 3)
    anticlockwise = torch.tensor([[[3.0, 6.0, 9.0], [2.0, 5.0, 8.0], [1.0, 4.0, 7.0]]]) / 9
    clockwise = torch.tensor([[[7.0, 4.0, 1.0], [8.0, 5.0, 2.0], [9.0, 6.0, 3.0]]]) / 9
    batch = x.expand(16, 1, 3, 3)
    y = corrupt(batch, "rotation", 5, generator=torch.Generator().manual_seed(0))  # severity 5 = ±90°
    is_anti = [torch.allclose(yi, anticlockwise, atol=1e-6) for yi in y]
    is_clock = [torch.allclose(yi, clockwise, atol=1e-6) for yi in y]
    assert all(a != b for a, b in zip(is_anti, is_clock, strict=True))
    assert any(is_anti) and any(is_clock)  # both directions drawn


def test_rotation_angle_of_severity_1():
    # A centred horizontal bar rotated by ±15° has its end pixels displaced by the expected amount.
    x = torch.zeros(1, 1, 41, 41)
    x[..., 20, 5:36] = 1.0
    y = corrupt(x, "rotation", 1, generator=torch.Generator().manual_seed(0))[0, 0]
    rows, cols = torch.nonzero(y > 0.3, as_tuple=True)
    slope = np.polyfit(cols.double().numpy(), rows.double().numpy(), 1)[0]
    assert abs(np.degrees(np.arctan(abs(slope)))) == pytest.approx(15, abs=2)


def sampled_gaussian(sigma, half):
    """The normalised sampled Gaussian kernel, float64 (what a discrete Gaussian blur convolves with)."""
    offsets = np.arange(-half, half + 1)
    weights = np.exp(-(offsets**2) / (2 * sigma**2))
    return weights / weights.sum()


@pytest.mark.parametrize(("side", "scale"), [(15, 1.0), (64, 2.0)])  # σ scales with the side above 32 pixels
@pytest.mark.parametrize("severity", [1, 5])
def test_gaussian_blur_impulse_response(side, scale, severity):
    x = torch.zeros(1, side, side)
    x[0, side // 2, side // 2] = 1.0
    y = corrupt(x, "gaussian_blur", severity)[0].double().numpy()
    sigma = SEVERITY_PARAMS["gaussian_blur"][severity - 1] * scale
    half = int(np.ceil(3 * sigma))
    kernel = np.outer(sampled_gaussian(sigma, half), sampled_gaussian(sigma, half))
    expected = np.zeros((side, side))
    c = side // 2
    expected[c - half : c + half + 1, c - half : c + half + 1] = kernel
    np.testing.assert_allclose(y, expected, atol=1e-6)
    if severity == 5:  # the width matches σ once the Gaussian is well sampled
        offsets = np.arange(side) - c
        assert (y.sum(0) * offsets**2).sum() == pytest.approx(sigma**2, rel=0.03)


def test_gaussian_blur_keeps_constant_images():
    constant = torch.full((3, 8, 8), 0.3)
    torch.testing.assert_close(corrupt(constant, "gaussian_blur", 5), constant)


def test_pixelate_by_hand():
    x = torch.arange(16.0).reshape(1, 4, 4) / 15  # 2 × 2 blocks at severity 1
    block_means = x.reshape(1, 2, 2, 2, 2).mean(dim=(2, 4))  # (1, 2, 2)
    expected = block_means.repeat_interleave(2, dim=1).repeat_interleave(2, dim=2)
    torch.testing.assert_close(corrupt(x, "pixelate", 1), expected)
    # 7 × 7 with 3 × 3 blocks (severity 2): edge blocks average only the pixels they cover
    x = torch.arange(49.0).reshape(1, 7, 7) / 48
    y = corrupt(x, "pixelate", 2)
    torch.testing.assert_close(y[0, :3, :3], x[0, :3, :3].mean().expand(3, 3))
    torch.testing.assert_close(y[0, 6, 6], x[0, 6, 6])
    torch.testing.assert_close(y[0, 0, 6], x[0, :3, 6].mean())
    # a block is at most half the image: 5 × 5 at severity 5 → 2 × 2 blocks
    torch.testing.assert_close(corrupt(x[:, :5, :5], "pixelate", 5)[0, 0, 0], x[0, :2, :2].mean())
    # larger images scale the block: 64 px at severity 1 → 4 × 4 blocks
    y = corrupt(torch.rand(1, 64, 64), "pixelate", 1)
    assert torch.equal(y[0, :4, :4], y[0, 0, 0].expand(4, 4)) and y[0, 0, 0] != y[0, 0, 4]


def test_jpeg_is_a_real_round_trip():
    x = digit_batch(4, channels=3)
    y = corrupt(x, "jpeg", 5)
    assert torch.allclose(y * 255, (y * 255).round(), atol=1e-4)  # 8-bit output
    # independent round trip through PIL at quality 40
    image = Image.fromarray((x[0] * 255).round().byte().permute(1, 2, 0).numpy())
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=40)
    expected = torch.from_numpy(np.array(Image.open(buffer))).permute(2, 0, 1).float() / 255
    torch.testing.assert_close(y[0], expected)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"severity": 7}, "Expected `severity` in 1–5, got 7"),
        ({"severity": 0}, "`severity` in 1–5"),
        ({"severity": True}, "`severity` in 1–5"),
        ({"name": "fog"}, r"`name` to be one of \['gaussian_noise', .*'rotation'\], got 'fog'"),
        ({"images": torch.rand(8, 8)}, r"\(C, H, W\) or \(B, C, H, W\)"),
        ({"images": torch.full((1, 4, 4), 1.5)}, r"`images` in \[0, 1\]"),
        ({"images": torch.zeros(1, 4, 4, dtype=torch.uint8)}, "float tensor"),
        ({"images": torch.rand(2, 4, 4), "name": "jpeg"}, "1 or 3 channels"),
    ],
)
def test_bad_arguments(kwargs, match):
    args = {"images": torch.rand(1, 4, 4), "name": "contrast", "severity": 1, **kwargs}
    with pytest.raises(ValueError, match=match):
        corrupt(**args)
