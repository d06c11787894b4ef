import pytest
import torch
from torch import nn

from ugmm_vision.heads import LinearHead, MLPHead, UGMMHead, count_parameters

HEADS = [
    lambda: UGMMHead(16, 5),
    lambda: UGMMHead(16, 5, hidden=(8, 6), mixing_dropout=(0.2, 0.0, 0.0)),
    lambda: UGMMHead(16, 5, hidden=(8,), tied_means=True, mixing_dropout=0.1),
    lambda: UGMMHead(16, 5, norm_layer=None, init="unit"),
    lambda: LinearHead(16, 5),
    lambda: MLPHead(16, 5, hidden=(12, 7), dropout=0.1),
]


@pytest.mark.parametrize("make_head", HEADS)
def test_every_parameter_receives_a_finite_gradient(make_head):
    torch.manual_seed(0)
    head = make_head().train()
    logits = head(torch.randn(8, 16))
    assert logits.shape == (8, 5)
    torch.nn.functional.cross_entropy(logits, torch.randint(0, 5, (8,))).backward()
    for name, p in head.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_ugmm_head_parameter_counts():
    head = UGMMHead(16, 5, hidden=(8,))
    assert count_parameters(head) == 2 * 16 + 3 * 16 * 8 + 3 * 8 * 5
    tied = UGMMHead(16, 5, hidden=(8,), tied_means=True, norm_layer=None)
    assert count_parameters(tied) == (2 * 16 * 8 + 16) + (2 * 8 * 5 + 8)


def test_ugmm_head_stacks_log_densities():
    torch.manual_seed(0)
    head = UGMMHead(6, 3, hidden=(4,)).eval()
    x = torch.randn(2, 6)
    hidden, out = head.forward_hidden(x)
    torch.testing.assert_close(out, head(x))
    torch.testing.assert_close(out, head.layers[1](head.layers[0](head.norm(x))))
    assert hidden.shape == (2, 4)


def test_per_layer_dropout_and_wrong_count():
    head = UGMMHead(6, 3, hidden=(4,), mixing_dropout=(0.2, 0.0))
    assert [layer.mixing_dropout for layer in head.layers] == [0.2, 0.0]
    with pytest.raises(ValueError, match="`mixing_dropout` to be one float or 2 floats"):
        UGMMHead(6, 3, hidden=(4,), mixing_dropout=(0.2,))


@pytest.mark.parametrize(
    ("in_features", "num_classes", "hidden", "depth"),
    [
        (128, 10, (), 1),
        (512, 100, (), 1),
        (512, 10, (64,), 2),
        (2048, 1000, (), 1),
        (64, 8, (32,), 1),
    ],
)
def test_mlp_matching_within_two_percent(in_features, num_classes, hidden, depth):
    ugmm = UGMMHead(in_features, num_classes, hidden=hidden)
    target = count_parameters(ugmm)
    mlp = MLPHead.matching(target, in_features, num_classes, depth=depth)
    assert len(mlp.hidden) == depth
    assert abs(count_parameters(mlp) - target) <= 0.02 * target


def test_mlp_matching_impossible_target_is_an_error():
    with pytest.raises(ValueError, match="No MLP of depth 1 comes within 2%"):
        MLPHead.matching(50, 128, 10, depth=1)


def test_mlp_structure():
    mlp = MLPHead(4, 2, hidden=(3,), act_layer=nn.GELU, norm_layer=None)
    assert isinstance(mlp.norm, nn.Identity)
    assert [type(m) for m in mlp.mlp] == [nn.Linear, nn.GELU, nn.Dropout, nn.Linear]


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: UGMMHead(0, 3), "`in_features`"),
        (lambda: UGMMHead(4, 0), "`num_classes`"),
        (lambda: UGMMHead(4, 3, hidden=(4, -1)), r"`hidden\[1\]`"),
        (lambda: LinearHead(4, 0), "`num_classes`"),
        (lambda: MLPHead(4, 3, dropout=1.0), "`dropout`"),
        (lambda: MLPHead.matching(0, 4, 3), "`params`"),
    ],
)
def test_bad_arguments_name_the_argument(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()
