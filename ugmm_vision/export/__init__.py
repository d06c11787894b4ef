"""Exporting a trained classifier (backbone + head, optionally ``/ T``) as ONNX, ``torch.export`` or TorchScript.

The exported graph maps images (B, C, H, W) to logits (B, num_classes) with a dynamic batch dimension. It runs
without ``ugmm_vision``: every :class:`~ugmm_vision.layers.UGMMLayer` is replaced by a :class:`FrozenUGMMLayer`
(:mod:`ugmm_vision.export.frozen`); the formats and their loaders are in :mod:`ugmm_vision.export.formats`.

The file is verified before it replaces anything: serialised in memory, written to a temporary file and loaded
back from there for the comparison, and only then written atomically (:func:`~ugmm_vision.io.atomic_write_bytes`)
over ``output``; a failing verification leaves an earlier export where it was. A checkpoint to export is read by
the checked reader (:func:`~ugmm_vision.models.checkpoints.read_checkpoint`) and must fit the configured model.
"""

from __future__ import annotations

import importlib.util
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ugmm_vision.checks import check_positive_float, is_int
from ugmm_vision.destinations import check_output_file
from ugmm_vision.export.formats import EXPORT_SUFFIXES, ExportFormat, check_format, load_exported, serialise
from ugmm_vision.export.frozen import EXPORT_TERMS_PER_ROW, ExportedClassifier, FrozenUGMMLayer, prepare_for_export
from ugmm_vision.io import atomic_write_bytes
from ugmm_vision.models.checkpoint_loading import load_checkpoint_weights
from ugmm_vision.models.inputs import check_image_batch

__all__ = [
    "EXPORT_SUFFIXES",
    "EXPORT_TERMS_PER_ROW",
    "ExportFormat",
    "ExportedClassifier",
    "FrozenUGMMLayer",
    "export_classifier",
    "export_trained",
    "load_exported",
    "prepare_for_export",
]


def export_classifier(
    model: nn.Module,
    example: Tensor,
    output: str | Path,
    format: ExportFormat = "onnx",
    *,
    temperature: float = 1.0,
    opset: int = 18,
    verify: bool = True,
    atol: float = 1e-4,
) -> dict:
    """Export ``model`` (backbone + head, logits divided by ``temperature``) to ``output`` and check it.

    Args:
        model: an :class:`~ugmm_vision.models.ImageClassifier` (anything with ``backbone`` and ``head``).
        example: an input batch (B, C, H, W) fixing everything but the batch size.
        output: the file to write (atomically, after ``verify``); parent folders are created.
        format: ``"onnx"`` (torch's dynamo-based exporter), ``"torch_export"`` (an ``ExportedProgram``) or the
            deprecated ``"torchscript"`` (traced; warns).
        temperature: divides the logits (from temperature scaling; 1 leaves them).
        opset: ONNX opset version (18 or later: the lowest torch's exporter implements; older ones are converted).
        verify: reload the file and compare its logits with the model's own (fused uGMM kernels, eval mode) on a
            random batch of another size; raise a ``ValueError`` beyond ``atol``. ONNX files are checked when
            ``onnxruntime`` is installed.
        atol: largest absolute difference ``verify`` accepts.

    Returns:
        ``{"path", "format", "temperature", "input_shape", "max_abs_diff"}`` (``max_abs_diff`` None if unchecked).

    Example:
        >>> import tempfile
        >>> from ugmm_vision.backbones import SmallCNN
        >>> from ugmm_vision.heads import UGMMHead
        >>> from ugmm_vision.models import ImageClassifier
        >>> model = ImageClassifier(SmallCNN(in_chans=1), UGMMHead, num_classes=3)
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     info = export_classifier(model, torch.randn(2, 1, 8, 8), f"{folder}/m.pt2", "torch_export")
        >>> info["max_abs_diff"] < 1e-5
        True
    """
    check_format(format)
    if not isinstance(example, Tensor) or example.dim() < 2 or not example.is_floating_point():
        raise ValueError(f"Expected `example` to be a floating batch of images (B, C, H, W), got {example!r:.80}")
    target = check_output_file(output, argument="output")
    module = prepare_for_export(model, temperature).to(example.device)
    data = serialise(module, example, format, opset)
    diff = None
    if verify:  # from a temporary copy: a file failing the check never replaces an earlier export
        with tempfile.TemporaryDirectory(prefix="ugmm-export-") as folder:
            staged = Path(folder) / target.name
            staged.write_bytes(data)
            diff = _verify(model, staged, format, example, temperature)
    if diff is not None and not diff <= atol:
        raise ValueError(
            f"Expected the exported {format} logits within {atol} of the model's, got {diff:.3g}; "
            f"{str(target)!r} was not written"
        )
    target = atomic_write_bytes(target, data)
    return {
        "path": str(target),
        "format": format,
        "temperature": float(temperature),
        "input_shape": list(example.shape[1:]),
        "max_abs_diff": diff,
    }


def export_trained(
    trainer: Any,
    model: nn.Module,
    datamodule: Any,
    ckpt_path: str | Path | None = None,
    format: ExportFormat = "onnx",
    output: str | Path | None = None,
    temperature: float | None = None,
    calibrate: bool = False,
    input_shape: Sequence[int] | None = None,
    opset: int = 18,
) -> dict:
    """What ``ugmm-vision export`` does: load the checkpoint, find the input shape and temperature, export.

    Args:
        trainer: the Lightning trainer (loads the checkpoint; runs the validation predictions for ``calibrate``).
        model: the classifier as configured.
        datamodule: its data module: the first predict batch gives the input shape, the validation set the
            temperature.
        ckpt_path: checkpoint whose weights are exported (None: the model as configured).
        format: ``"torchscript"``, ``"onnx"`` or ``"torch_export"``.
        output: the file (None: ``<default_root_dir>/export/model`` + the format's suffix).
        temperature: divide the logits by this temperature (> 0; None: 1).
        calibrate: fit the temperature on the validation set (temperature scaling) instead.
        input_shape: (C, H, W) of one image (None: from the data module's first predict batch).
        opset: ONNX opset version (18 or later: the lowest torch's exporter implements; older ones are converted).

    Returns:
        :func:`export_classifier`'s dict plus ``ckpt_path`` (``"last"`` resolved to the file it stood for).
    """
    check_format(format)
    if trainer.world_size > 1:
        raise ValueError(
            f"Expected `export` in one process, got world_size={trainer.world_size}: pass --trainer.devices=1"
        )
    if temperature is not None and calibrate:
        raise ValueError(
            f"Expected either `temperature` or `calibrate`, got temperature={temperature} and calibrate=True"
        )
    if temperature is not None:
        check_positive_float("temperature", temperature)
    if output is not None:
        check_output_file(output, argument="output")
    if ckpt_path is not None:
        ckpt_path = load_checkpoint_weights(trainer, model, ckpt_path)
    if input_shape is None:
        datamodule.prepare_data()
        datamodule.setup("predict")
        batch = next(iter(datamodule.predict_dataloader()))
        example = (batch[0] if isinstance(batch, (tuple, list)) else batch)[:2].float()
    else:
        if len(input_shape) != 3 or not all(is_int(n) and n > 0 for n in input_shape):
            raise ValueError(f"Expected `input_shape` as [C, H, W] positive integers, got {input_shape!r}")
        example = torch.randn(2, *input_shape)
        try:  # the backbone's declared channels and size, before a raw convolution error
            check_image_batch(example, model.backbone)
        except ValueError as err:
            raise ValueError(f"Expected `input_shape` {list(input_shape)} to fit the model: {err}") from err
    if calibrate:
        from ugmm_vision.calibration import fit_temperature

        batches = trainer.predict(model, dataloaders=datamodule.val_dataloader())
        logits = torch.cat([b["logits"] for b in batches]).float()  # (N, K)
        temperature = fit_temperature(logits, torch.cat([b["targets"] for b in batches]))
    if output is None:
        output = Path(trainer.default_root_dir) / "export" / f"model{EXPORT_SUFFIXES[format]}"
    model.cpu()
    temperature = 1.0 if temperature is None else temperature
    info = export_classifier(model, example.cpu(), output, format, temperature=temperature, opset=opset)
    return {**info, "ckpt_path": None if ckpt_path is None else str(ckpt_path)}


def _verify(model: nn.Module, path: Path, fmt: str, example: Tensor, temperature: float) -> float | None:
    if fmt == "onnx" and importlib.util.find_spec("onnxruntime") is None:
        warnings.warn("onnxruntime is not installed: the ONNX file was not checked", RuntimeWarning, stacklevel=3)
        return None
    generator = torch.Generator().manual_seed(0)
    images = torch.randn((example.shape[0] + 1, *example.shape[1:]), generator=generator).to(example)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            expected = model.head(model.backbone(images)) / temperature  # (B, K), the fused kernels
            got = load_exported(path, fmt)(images.cpu() if fmt == "onnx" else images)
    finally:
        model.train(was_training)
    return float((got.to(expected) - expected).abs().max())
