"""``CorruptedDataset`` and the ``shift_dataloaders`` mixin, on digits and hand-made tensors."""

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from ugmm_vision.data import CORRUPTIONS, CorruptedDataset, DigitsDataModule, corrupt
from ugmm_vision.data.corruptions import SEVERITY_PARAMS


def normalised_set(n=6, channels=3, mean=(0.4, 0.5, 0.6), std=(0.2, 0.25, 0.3)):
    pixels = torch.rand(n, channels, 8, 8, generator=torch.Generator().manual_seed(0))  # (N, C, 8, 8) in [0, 1]
    m, s = torch.tensor(mean).view(1, -1, 1, 1), torch.tensor(std).view(1, -1, 1, 1)
    return TensorDataset((pixels - m) / s, torch.arange(n)), pixels


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_item_is_the_corruption_of_the_denormalised_image(name):
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    dataset, pixels = normalised_set(mean=mean, std=std)
    shifted = CorruptedDataset(dataset, name, 4, mean=mean, std=std, seed=5)
    m, s = torch.tensor(mean).view(-1, 1, 1), torch.tensor(std).view(-1, 1, 1)
    for index in (0, 3):
        image, label = shifted[index]
        expected = corrupt(pixels[index], name, 4, generator=shifted.item_generator(index))
        torch.testing.assert_close(image * s + m, expected, atol=1e-5, rtol=0)  # re-normalised with the same stats
        assert label == index


def test_deterministic_per_index_and_seed():
    dataset, _ = normalised_set()
    a = CorruptedDataset(dataset, "gaussian_noise", 3, mean=(0.4, 0.5, 0.6), std=(0.2, 0.25, 0.3), seed=0)
    b = CorruptedDataset(dataset, "gaussian_noise", 3, mean=(0.4, 0.5, 0.6), std=(0.2, 0.25, 0.3), seed=0)
    c = CorruptedDataset(dataset, "gaussian_noise", 3, mean=(0.4, 0.5, 0.6), std=(0.2, 0.25, 0.3), seed=1)
    assert torch.equal(a[2][0], a[2][0]) and torch.equal(a[2][0], b[2][0])
    assert not torch.equal(a[2][0], c[2][0])
    noise_2 = a[2][0] - dataset[2][0]
    noise_3 = a[3][0] - dataset[3][0]
    assert not torch.allclose(noise_2, noise_3)  # each item has its own draw
    batches = [torch.cat([x for x, _ in DataLoader(a, batch_size=bs)]) for bs in (1, 4)]
    assert torch.equal(batches[0], batches[1])  # independent of batching


def test_same_draws_across_severities():
    flat = TensorDataset(torch.zeros(2, 1, 16, 16), torch.zeros(2))  # pixel value 0.5 after de-normalising
    low, high = (CorruptedDataset(flat, "gaussian_noise", s, mean=0.5, std=1.0) for s in (1, 5))
    sigma_low, sigma_high = SEVERITY_PARAMS["gaussian_noise"][0], SEVERITY_PARAMS["gaussian_noise"][4]
    torch.testing.assert_close(low[1][0] / sigma_low, high[1][0] / sigma_high, atol=1e-4, rtol=0)


def test_scalar_stats_and_clamping():
    images = torch.tensor([[[[-5.0, 0.0], [1.0, 5.0]]]])  # de-normalised: -2.0, 0.5, 1.0, 3.0 → clamped to [0, 1]
    dataset = TensorDataset(images, torch.zeros(1))
    image, _ = CorruptedDataset(dataset, "contrast", 1, mean=0.5, std=0.5)[0]
    pixels = torch.tensor([[[0.0, 0.5], [1.0, 1.0]]])
    c = SEVERITY_PARAMS["contrast"][0]
    expected = c * pixels + (1 - c) * pixels.mean()
    torch.testing.assert_close(image * 0.5 + 0.5, expected)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"corruption": "fog"}, r"`corruption` to be one of \['gaussian_noise'"),
        ({"severity": 7}, "Expected `severity` in 1–5, got 7"),
        ({"seed": -1}, "`seed`"),
        ({"std": 0.0}, "`std` > 0"),
        ({"mean": (0.1, 0.2), "std": (1.0, 1.0, 1.0)}, "as many channels"),
    ],
)
def test_bad_arguments(kwargs, match):
    dataset, _ = normalised_set()
    args = {"corruption": "contrast", "severity": 1, "mean": 0.5, "std": 0.5, **kwargs}
    with pytest.raises(ValueError, match=match):
        CorruptedDataset(dataset, **args)


def test_channel_mismatch_found_at_item():
    dataset, _ = normalised_set(channels=1, mean=(0.5,), std=(0.5,))
    with pytest.raises(ValueError, match="`mean` with 1 channel values, got 3"):
        CorruptedDataset(dataset, "contrast", 1, mean=(0.5,) * 3, std=(0.5,) * 3)[0]


@pytest.fixture(scope="module")
def digits():
    dm = DigitsDataModule(ood_classes=(8, 9), batch_size=50)
    dm.setup("test")
    return dm


def test_digits_shift_loader_names_and_content(digits):
    loaders = digits.shift_dataloaders()
    assert list(loaders) == [f"shift/{c}/{s}" for c in CORRUPTIONS for s in range(1, 6)]
    assert list(digits.test_dataloader()) == ["id", "ood"]  # shift sets are separate, the test loaders unchanged
    clean, clean_labels = next(iter(digits.test_dataloader()["id"]))
    shifted, labels = next(iter(loaders["shift/gaussian_blur/3"]))
    assert shifted.shape == clean.shape == (50, 1, 8, 8) and torch.equal(labels, clean_labels)
    assert loaders["shift/gaussian_blur/3"].batch_size == 50
    pixels = (shifted * digits.std + digits.mean).flatten()
    assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5  # de-normalised images lie in [0, 1]


def test_digits_distortion_grows_with_severity(digits):
    clean = torch.cat([x for x, _ in digits.test_dataloader()["id"]])
    clean = (clean * digits.std + digits.mean).clamp(0, 1)
    for name in ("contrast", "gaussian_noise"):
        loaders = digits.shift_dataloaders([name])
        errors = []
        for severity in range(1, 6):
            shifted = torch.cat([x for x, _ in loaders[f"shift/{name}/{severity}"]]) * digits.std + digits.mean
            errors.append((shifted - clean).pow(2).mean().item())
        assert errors == sorted(errors) and errors[0] > 0, (name, errors)


def test_mixin_errors():
    dm = DigitsDataModule()
    with pytest.raises(RuntimeError, match="setup"):
        dm.shift_dataloaders()
    dm.setup("test")
    with pytest.raises(ValueError, match="`corruptions` from"):
        dm.shift_dataloaders(["fog"])
    with pytest.raises(ValueError, match="`severities` in 1–5"):
        dm.shift_dataloaders(severities=(0, 1))
