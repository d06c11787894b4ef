"""Uncertainty methods in the comparison: one more row per method, built on a head's run.

For a head and seed, the plain run's trained model is member 0 wherever a method needs no training change:

* post-hoc methods (:class:`~ugmm_vision.methods.FeatureDensity`, :class:`~ugmm_vision.methods.LastLayerLaplace`)
  wrap that very model and fit on the training loader;
* a :class:`~ugmm_vision.methods.DeepEnsemble` of M members adds M − 1 runs seeded
  :func:`~ugmm_vision.methods.member_seed` ``(seed, m)``;
* :class:`~ugmm_vision.methods.MCDropout` with ``feature_dropout`` > 0 trains its own model (same seed, same budget)
  with the dropout in place (:meth:`~ugmm_vision.methods.MCDropout.prepare_head`).

Cost columns count everything the method needs: ``train_s_per_epoch`` sums the members' training time,
``params`` multiplies the head's parameters by the members, ``flops`` the head's FLOPs by the forward passes
(the Gaussian density of DDU and Laplace's Jacobian are not in that count), and the latency is the method's own
``forward`` on a batch of 64, median of 5 timings (features in ``"frozen"`` mode → ``head µs / image``; images
in ``"finetune"`` mode → ``model µs / image``). ``forward_passes`` and ``members`` are columns of their own.
"""

from __future__ import annotations

import copy
import dataclasses

from ugmm_vision.compare.training import RunContext, eval_loaders, latency_per_image, run_trainer, train_model
from ugmm_vision.heads import is_density_head
from ugmm_vision.methods import UncertaintyMethod, base_head, member_seed
from ugmm_vision.models import ImageClassifier
from ugmm_vision.report.build import build_report
from ugmm_vision.report.collect import collect_outputs

__all__ = ["RunContext", "run_methods"]  # RunContext: defined in compare/training.py, re-exported


def _members(method: UncertaintyMethod, run: RunContext, model: ImageClassifier, base_row: dict):
    """The trained members of ``method`` and their summed training seconds per epoch."""
    in_features, classes = run.template.backbone.num_features, run.template.num_classes
    probe = run.head_factory(in_features, classes)
    changes_training = method.prepare_head(probe) is not probe
    members, seconds = [], 0.0
    for m in range(method.num_members):
        if m == 0 and not changes_training:
            members.append(copy.deepcopy(model))
            seconds += base_row["train_s_per_epoch"]
            continue
        factory = lambda f, c: method.prepare_head(run.head_factory(f, c))  # noqa: E731
        seed = member_seed(run.seed, m)
        member, _, per_epoch = train_model(dataclasses.replace(run, head_factory=factory, seed=seed))
        members.append(member)
        seconds += per_epoch
    return members, seconds


def run_methods(
    methods: dict[str, UncertaintyMethod],
    run: RunContext,
    model: ImageClassifier,
    base_row: dict,
    shift_kwargs: dict | None,
    n_bins: int,
) -> list[dict]:
    """One row per method, named ``"<head>+<method>"``, with the same fields as a head's row plus
    ``method``, ``base_head``, ``forward_passes`` and ``members``."""
    rows = []
    for method_name, spec in methods.items():
        method = copy.deepcopy(spec)  # a fresh, unattached method per run
        members, train_seconds = _members(method, run, model, base_row)
        method.attach(members)
        method.fit(run.data.train_dataloader())
        trainer = run_trainer(1, run.trainer_kwargs)
        outputs = collect_outputs(trainer, method, eval_loaders(run.data, shift_kwargs))
        val_outputs = outputs.pop("val")
        is_ugmm = is_density_head(base_head(method.model.head))
        report = build_report(outputs, val_outputs, density_scores=is_ugmm and method.keeps_head_logits, n_bins=n_bins)
        report["method"] = method.cost()

        images = next(iter(run.data.test_dataloader()["id"]))[0][:64]  # a method costs up to N·M passes a batch
        latency_us = 1e6 * latency_per_image(method, images, trainer.strategy.root_device, repeats=5)
        rows.append(
            {
                "head": f"{base_row['head']}+{method_name}",
                "seed": run.seed,
                "report": report,
                "params": base_row["params"] * method.num_members,
                "flops": base_row["flops"] * method.forward_passes,
                "train_s_per_epoch": train_seconds,
                "head_latency_us": latency_us if run.mode == "frozen" else None,
                "model_latency_us": None if run.mode == "frozen" else latency_us,
                "is_ugmm": is_ugmm,
                "method": method.name,
                "base_head": base_row["head"],
                "forward_passes": method.forward_passes,
                "members": method.num_members,
            }
        )
    return rows
