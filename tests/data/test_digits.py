import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from ugmm_vision.data import DigitsDataModule


def setup(**kwargs):
    dm = DigitsDataModule(**kwargs)
    dm.setup("fit")
    return dm


def test_split_sizes_stratified_and_disjoint():
    dm = setup(val_fraction=0.15, test_fraction=0.2)
    sizes = [len(dm.train_set), len(dm.val_set), len(dm.test_set)]
    assert sum(sizes) == 1797
    assert abs(len(dm.test_set) - 0.2 * 1797) <= 1 and abs(len(dm.val_set) - 0.15 * 1797) <= 1
    overall = np.bincount(load_digits().target) / 1797
    for subset in (dm.train_set, dm.val_set, dm.test_set):
        freq = np.bincount(subset.tensors[1].numpy(), minlength=10) / len(subset)
        assert np.abs(freq - overall).max() < 0.02  # stratified
    # Sizes add up to the dataset, so the splits cover every distinct image exactly when none is shared.
    splits = (dm.train_set, dm.val_set, dm.test_set)
    seen = {tuple(torch.round(16 * (x * dm.std + dm.mean)).flatten().tolist()) for s in splits for x in s.tensors[0]}
    assert seen == {tuple(r) for r in load_digits().images.reshape(1797, -1).tolist()}


def test_split_is_deterministic_and_depends_on_seed():
    a, b, c = setup(seed=3), setup(seed=3), setup(seed=4)
    assert torch.equal(a.test_set.tensors[0], b.test_set.tensors[0])
    assert not torch.equal(a.test_set.tensors[0], c.test_set.tensors[0])


def test_standardised_with_training_statistics():
    dm = setup()
    raw = torch.as_tensor(load_digits().images, dtype=torch.float32) / 16  # pixels scaled to [0, 1]
    train = dm.train_set.tensors[0]
    assert abs(train.mean().item()) < 1e-4 and abs(train.std().item() - 1) < 1e-3
    assert dm.mean == pytest.approx(raw.mean().item(), rel=0.05)
    pixels = train * dm.std + dm.mean  # de-normalised: the [0, 1] range the shift corruptions work in
    assert pixels.min() > -1e-5 and pixels.max() < 1 + 1e-5 and pixels.max() > 0.99


def test_ood_classes_held_out_and_relabelled():
    dm = setup(ood_classes=(8, 9))
    assert dm.num_classes == 8 and dm.class_names == [str(d) for d in range(8)]
    for subset in (dm.train_set, dm.val_set, dm.test_set):
        assert set(subset.tensors[1].tolist()) == set(range(8))
    assert set(dm.ood_set.tensors[1].tolist()) == {8, 9}
    assert len(dm.ood_set) == int(np.isin(load_digits().target, [8, 9]).sum())
    loaders = dm.test_dataloader()
    assert list(loaders) == ["id", "ood"]


def test_relabelling_keeps_order():
    dm = setup(ood_classes=(0, 5))
    assert dm.class_names == ["1", "2", "3", "4", "6", "7", "8", "9"]
    assert "ood" in dm.test_dataloader()
    images = torch.as_tensor(load_digits().images, dtype=torch.float32) / 16
    first_test = dm.test_set.tensors[0][0, 0] * dm.std + dm.mean
    match = (images - first_test).abs().flatten(1).amax(1) < 1e-4
    original = load_digits().target[match.numpy()]
    assert dm.class_names[dm.test_set.tensors[1][0]] in {str(d) for d in original}


def test_resize_and_channels_for_timm():
    dm = setup(image_size=32, num_channels=3, batch_size=16)
    images, labels = next(iter(dm.train_dataloader()))
    assert images.shape == (16, 3, 32, 32) and labels.shape == (16,)
    assert torch.equal(images[:, 0], images[:, 2])


def test_without_ood_only_id_loader():
    assert list(setup().test_dataloader()) == ["id"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"batch_size": 0}, "`batch_size`"),
        ({"val_fraction": 0.0}, "`val_fraction` in \\(0, 1\\)"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "`val_fraction` \\+ `test_fraction` < 1"),
        ({"ood_classes": (10,)}, "`ood_classes`"),
        ({"ood_classes": tuple(range(9))}, "`ood_classes`"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DigitsDataModule(**kwargs)
