"""Collecting a model's outputs: Lightning's predict loop over named loaders, gathered across processes.

:func:`collect_outputs` runs ``trainer.predict`` over named evaluation sets and joins each set's batches into one
:class:`~ugmm_vision.report.build.EvalOutputs`; :mod:`ugmm_vision.report.build` turns those into the report.

Under DDP (``--trainer.strategy=ddp``) every rank predicts its share of each set (Lightning's unrepeated
distributed sampler: rank ``r`` holds items ``r, r + W, r + 2W, …``, no padding); :func:`all_gather_objects` — the
one way this package gathers across processes, also used by the prediction writer — brings the shares to every
rank, and they are put back in the loader's order, so every rank holds each whole set as one process would.
"""

from __future__ import annotations

from typing import Any

import torch
from lightning import LightningModule, Trainer
from torch import Tensor
from torch.utils.data import DataLoader

from ugmm_vision.report.build import EvalOutputs

__all__ = ["all_gather_objects", "check_finite_outputs", "collect_outputs", "concat_outputs", "nonfinite_rows"]


def all_gather_objects(trainer: Trainer, obj: Any) -> list[Any]:
    """Every process's ``obj``, by rank (``[obj]`` in one process or outside a process group).

    Objects travel pickled (``torch.distributed.all_gather_object``), so they may hold anything picklable —
    rows of text, dataclasses of tensors; put tensors on the CPU first, so that no rank unpickles another's
    device. Every rank must call it, in the same order.

    Example:
        >>> class OneProcess:
        ...     world_size = 1
        >>> all_gather_objects(OneProcess(), {"rows": [1, 2]})
        [{'rows': [1, 2]}]
    """
    world = trainer.world_size
    if world == 1 or not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return [obj]
    gathered: list[Any] = [None] * world
    torch.distributed.all_gather_object(gathered, obj)
    return gathered


def collect_outputs(
    trainer: Trainer, model: LightningModule, loaders: dict[str, DataLoader], ckpt_path: str | None = None
) -> dict[str, EvalOutputs]:
    """Run Lightning's predict loop over named loaders and join each set's batches into :class:`EvalOutputs`.

    Under DDP the ranks' shares are gathered, so every rank returns each whole set in the loader's order.
    """
    predictions = trainer.predict(model, dataloaders=list(loaders.values()), ckpt_path=ckpt_path)
    if predictions is None:
        raise ValueError(
            f"Expected the predict loop to return predictions, got None from {type(trainer.strategy).__name__}: "
            "strategies that spawn processes (ddp_spawn) do not return them; use --trainer.strategy=ddp"
        )
    if len(loaders) == 1:
        predictions = [predictions]
    empty = [name for name, batches in zip(loaders, predictions, strict=True) if not batches]
    if empty and trainer.world_size == 1:  # under DDP a rank may hold no item of a tiny set; the gather checks
        raise ValueError(
            f"Expected every evaluation set to hold at least one image, got none in {empty} (were all its files "
            "skipped as unreadable, or its folder empty?)"
        )
    outputs = {name: concat_outputs(batches) for name, batches in zip(loaders, predictions, strict=True)}
    if trainer.world_size > 1:
        outputs = {name: _gather_outputs(trainer, out, name) for name, out in outputs.items()}
    return outputs


def _gather_outputs(trainer: Trainer, out: EvalOutputs, name: str) -> EvalOutputs:
    """Join the ranks' shares of one set: rank ``r`` predicted items ``r, r + W, …`` (the unrepeated sampler)."""
    share = out.cpu()  # pickled to the other ranks: no device of this one inside
    shares = all_gather_objects(trainer, share)
    world = len(shares)
    counts = [len(s.targets) for s in shares]
    total = sum(counts)
    expected = [len(range(rank, total, world)) for rank in range(world)]
    if counts != expected:
        raise ValueError(
            f"Expected the {name!r} set split over {world} ranks as {expected} items (each item once), got {counts}: "
            "keep Trainer(use_distributed_sampler=True) for evaluate"
        )

    def interleave(parts: list[Tensor]) -> Tensor:
        full = parts[0].new_empty((total, *parts[0].shape[1:]))  # (N, …)
        for rank, part in enumerate(parts):
            full[rank::world] = part
        return full

    hidden = None if share.hidden_density is None else interleave([s.hidden_density for s in shares])
    extra = {k: interleave([s.extra[k] for s in shares]) for k in share.extra}  # a method's scores, same on all ranks
    return EvalOutputs(interleave([s.logits for s in shares]), interleave([s.targets for s in shares]), hidden, extra)


def concat_outputs(batches: list[dict[str, Tensor]]) -> EvalOutputs:
    """Join the per-batch dicts of :meth:`ImageClassifier.predict_step` into one :class:`EvalOutputs`."""
    hidden = [b["hidden_density"] for b in batches if b.get("hidden_density") is not None]
    known = {"logits", "targets", "hidden_density"}
    extra = [k for k in batches[0] if k not in known] if batches else []  # an uncertainty method's scores
    return EvalOutputs(
        logits=torch.cat([b["logits"] for b in batches]).float(),
        targets=torch.cat([b["targets"] for b in batches]),
        hidden_density=torch.cat(hidden) if len(hidden) == len(batches) and hidden else None,
        extra={k: torch.cat([b[k] for b in batches]).float() for k in extra},
    )


def nonfinite_rows(logits: Tensor) -> Tensor:
    """Which rows of ``logits`` (N, C) have no probabilities: a NaN or +inf logit, or only −inf ones; (N,) bool.

    Example:
        >>> nonfinite_rows(torch.tensor([[0.0, 1.0], [0.0, float("nan")], [float("-inf"), float("-inf")]])).tolist()
        [False, True, True]
    """
    return logits.isnan().any(dim=-1) | logits.isposinf().any(dim=-1) | logits.isneginf().all(dim=-1)


def check_finite_outputs(outputs: dict[str, EvalOutputs], ckpt_path: str | None = None) -> None:
    """Raise ``ValueError`` naming the set and the checkpoint when a model's logits are not finite.

    A row with a NaN or +inf logit, or only −inf ones, has no probabilities: its metrics would be NaN (``null`` in
    report.json) and its prediction arbitrary, so a report of it would look valid and be wrong.

    Example:
        >>> check_finite_outputs({"id": EvalOutputs(torch.tensor([[0.0, float("nan")]]), torch.tensor([0]))})
        Traceback (most recent call last):
        ...
        ValueError: Expected finite logits on every evaluation set, got 1 of 1 rows ...
    """
    for name, out in outputs.items():
        bad = nonfinite_rows(out.logits)  # (N,)
        if bool(bad.any()):
            raise ValueError(
                f"Expected finite logits on every evaluation set, got {int(bad.sum())} of {len(bad)} rows with NaN or "
                f"infinite logits in {name!r} (ckpt_path={ckpt_path!r}); no report was written (an existing one is "
                "left unchanged). Check the checkpoint, e.g. for NaN weights or BatchNorm statistics"
            )
