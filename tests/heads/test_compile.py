"""Every head compiles into one graph (``torch.compile(fullgraph=True)``) and matches eager, train and eval.

Mixing dropout draws random numbers; Inductor's own generator differs from eager's, so the training comparisons
run with ``torch._inductor.config.fallback_random`` (Inductor then calls eager's generator) and the same seed, and
therefore see the same dropout masks. Compiling is slow on two cores: the cases are small and marked slow.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ugmm_vision.heads import LinearHead, MLPHead, ParamMatchedMLPHead, UGMMHead

HEADS = {
    "ugmm-single": lambda: UGMMHead(12, 5, mixing_dropout=0.3),
    "ugmm-hidden-tied": lambda: UGMMHead(12, 5, hidden=(7,), tied_means=True, mixing_dropout=(0.5, 0.2)),
    "linear": lambda: LinearHead(12, 5),
    "mlp": lambda: MLPHead(12, 5, hidden=(9,), dropout=0.3),
    "param-matched-mlp": lambda: ParamMatchedMLPHead(12, 5, match_hidden=(4,), dropout=0.2),
}


def run_step(module: nn.Module, x: torch.Tensor, seed: int) -> list[torch.Tensor]:
    """Output and every parameter's gradient of one forward/backward at ``seed``."""
    module.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    y = module(x)
    (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
    return [y.detach(), *(p.grad for p in module.parameters())]


def assert_compiled_matches_eager(module: nn.Module, x: torch.Tensor, *, modes=("train", "eval")) -> None:
    compiled = torch.compile(module, fullgraph=True)  # shares the parameters of `module`
    with torch._inductor.config.patch(fallback_random=True):
        for mode in modes:
            module.train(mode == "train")
            for seed in (0, 1):  # two steps: a second mask, and a cached graph reused
                want = run_step(module, x, seed)
                got = run_step(compiled, x, seed)
                assert len(got) == len(want)
                for g, w in zip(got, want, strict=True):
                    assert g is not None and torch.isfinite(g).all()
                    torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(HEADS))
def test_head_compiles_fullgraph_and_matches_eager(name: str) -> None:
    torch.manual_seed(0)
    head = HEADS[name]()
    x = torch.randn(6, 12)
    assert_compiled_matches_eager(head, x)


@pytest.mark.slow
def test_dropout_masks_really_differ_between_seeds() -> None:
    # The train-mode comparison above would be vacuous if dropout did nothing: the two seeds must differ.
    head = UGMMHead(12, 5, mixing_dropout=0.3).train()
    x = torch.randn(6, 12)
    assert not torch.equal(run_step(head, x, 0)[0], run_step(head, x, 1)[0])
