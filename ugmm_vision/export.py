"""Exporting a trained classifier (backbone + head, optionally ``/ T``) as TorchScript, ONNX or ``torch.export``.

The exported graph maps images (B, C, H, W) to logits (B, num_classes) with a dynamic batch dimension. It runs
without ``ugmm_vision``: every :class:`~ugmm_vision.layers.UGMMLayer` is replaced by a
:class:`FrozenUGMMLayer`, which computes the same log-densities with the materialising reference formula
(:func:`~ugmm_vision.functional.ugmm_log_prob_reference`) from a snapshot of the layer's parameters (σ already
floored), one chunk of neurons at a time, so that the exported graph's largest intermediate is (B, chunk, I) with
chunk·I ≤ :data:`EXPORT_TERMS_PER_ROW`, never (B, O, I): a 2048→1000 head at batch 64 holds 16 MiB per
intermediate instead of 0.5 GiB. The fused kernels are a custom operator (opaque to the exporters, and needing
this package at load time) and the σ floor is an ``autograd.Function`` (only its gradient differs from a plain
clamp): neither matters for inference, and neither survives export.

Formats: ``"onnx"`` through torch's current exporter (``torch.onnx.export(..., dynamo=True)``, which needs
``onnxscript``: ``pip install ugmm-vision[export]``); ``"torch_export"`` (an ``ExportedProgram``, ``.pt2``);
``"torchscript"`` is deprecated — torch 2.14 deprecates ``torch.jit.trace``/``save``/``load`` in favour of
``torch.export`` — and warns (a ``FutureWarning`` of this package and torch's own, no longer silenced); it will be
removed.

The file is verified before it replaces anything: serialised in memory, written to a temporary file and loaded
back from there for the comparison, and only then written atomically
(:func:`~ugmm_vision.report.io.atomic_write_bytes`) over ``output``; a failing verification leaves an earlier
export where it was. A checkpoint to export is read by the checked reader
(:func:`~ugmm_vision.models.checkpoints.read_checkpoint`) and must fit the configured model.
"""

from __future__ import annotations

import copy
import io
import math
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, get_args

import torch
from torch import Tensor, nn

from ugmm_vision.functional.ugmm import ugmm_log_prob_reference
from ugmm_vision.layers import UGMMLayer
from ugmm_vision.models.checkpoint_loading import load_checkpoint_weights
from ugmm_vision.models.inputs import check_image_batch
from ugmm_vision.report.destinations import check_output_file
from ugmm_vision.report.io import atomic_write_bytes

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

ExportFormat = Literal["torchscript", "onnx", "torch_export"]
EXPORT_SUFFIXES: dict[str, str] = {"torchscript": ".pt", "onnx": ".onnx", "torch_export": ".pt2"}
"""File suffix of each format (``torch.jit.load``, ``onnxruntime.InferenceSession``, ``torch.export.load``)."""
EXPORT_TERMS_PER_ROW = 1 << 16
"""Component terms (neuron, input) per input row that one chunk of a :class:`FrozenUGMMLayer` materialises."""


class FrozenUGMMLayer(nn.Module):
    """Inference-only copy of a :class:`~ugmm_vision.layers.UGMMLayer`: buffers and the reference formula.

    The neurons are evaluated in chunks of ``max(1, terms_per_row // I)``, each chunk's log-densities by the
    reference formula (exact per neuron, so the chunks need no combining), concatenated: the exporters unroll
    the loop, and the largest intermediate holds B·chunk·I terms instead of B·O·I.

    Args:
        layer: the layer to copy; its floored ``log_sigma`` (``effective_log_sigma`` where it has one) is stored.
        terms_per_row: bound on chunk·I, the terms per input row held by one chunk.

    Shape:
        - Input: (B, I).
        - Output: (B, O) log-densities, equal to ``layer.eval()(x)``.

    Example:
        >>> layer = UGMMLayer(4, 3).eval()
        >>> x = torch.randn(2, 4)
        >>> torch.allclose(FrozenUGMMLayer(layer)(x), layer(x), atol=1e-5)
        True
    """

    def __init__(self, layer: UGMMLayer, terms_per_row: int = EXPORT_TERMS_PER_ROW) -> None:
        super().__init__()
        if isinstance(terms_per_row, bool) or not isinstance(terms_per_row, int) or terms_per_row < 1:
            raise ValueError(f"Expected `terms_per_row` to be a positive integer, got {terms_per_row!r}")
        log_sigma = getattr(layer, "effective_log_sigma", layer.log_sigma)
        for name, value in (("mu", layer.mu), ("log_sigma", log_sigma), ("mix_logits", layer.mix_logits)):
            self.register_buffer(name, value.detach().clone())
        out_features, in_features = self.log_sigma.shape
        self.out_features = int(out_features)  # a Python int: tracing would record a tensor's shape as a value
        self.chunk = min(out_features, max(1, terms_per_row // in_features))

    def forward(self, x: Tensor) -> Tensor:
        out_features = self.out_features
        tied = self.mu.dim() == 1
        chunks = []
        for o0 in range(0, out_features, self.chunk):  # a Python loop over static sizes: unrolled when exported
            o1 = min(o0 + self.chunk, out_features)
            mu = self.mu if tied else self.mu[o0:o1]  # (c, I), or (I,) when tied
            chunks.append(ugmm_log_prob_reference(x, mu, self.log_sigma[o0:o1], self.mix_logits[o0:o1]))  # (B, c)
        return chunks[0] if len(chunks) == 1 else torch.cat(chunks, dim=1)  # (B, O)


class ExportedClassifier(nn.Module):
    """``head(backbone(images)) / temperature`` for export; uGMM layers frozen (see :class:`FrozenUGMMLayer`).

    Args:
        backbone: the feature extractor (copied).
        head: the head (copied; its uGMM layers replaced).
        temperature: the logits are divided by it (1: unchanged); from temperature scaling.

    Shape:
        - Input: (B, C, H, W) images, preprocessed as for the model.
        - Output: (B, num_classes) logits.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, temperature: float = 1.0) -> None:
        super().__init__()
        if not isinstance(temperature, (int, float)) or isinstance(temperature, bool) or not 0 < temperature < math.inf:
            raise ValueError(f"Expected `temperature` > 0 and finite, got {temperature!r}")
        self.backbone = copy.deepcopy(backbone)
        self.head = _freeze_ugmm_layers(copy.deepcopy(head))
        self.temperature = float(temperature)
        self.eval().requires_grad_(False)

    def forward(self, images: Tensor) -> Tensor:
        logits = self.head(self.backbone(images))  # (B, K)
        return logits if self.temperature == 1.0 else logits / self.temperature


def _freeze_ugmm_layers(module: nn.Module) -> nn.Module:
    if isinstance(module, UGMMLayer):
        return FrozenUGMMLayer(module)
    for name, child in list(module.named_children()):
        setattr(module, name, _freeze_ugmm_layers(child))
    return module


def prepare_for_export(model: nn.Module, temperature: float = 1.0) -> ExportedClassifier:
    """An :class:`ExportedClassifier` over ``model.backbone`` and ``model.head`` (the model is left untouched).

    Example:
        >>> from ugmm_vision.backbones import SmallCNN
        >>> from ugmm_vision.heads import UGMMHead
        >>> from ugmm_vision.models import ImageClassifier
        >>> model = ImageClassifier(SmallCNN(in_chans=1), UGMMHead, num_classes=3).eval()
        >>> images = torch.randn(2, 1, 8, 8)
        >>> exported = prepare_for_export(model, temperature=2.0)
        >>> torch.allclose(exported(images), model(images) / 2.0, atol=1e-5)
        True
    """
    for name in ("backbone", "head"):
        if not isinstance(getattr(model, name, None), nn.Module):
            raise ValueError(
                f"Expected `model` with a `{name}` module (an ImageClassifier), got {type(model).__name__}"
            )
    return ExportedClassifier(model.backbone, model.head, temperature)


def _serialise(module: ExportedClassifier, example: Tensor, fmt: str, opset: int) -> bytes:
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        if fmt == "torchscript":
            warnings.warn(
                "The 'torchscript' export format is deprecated (torch deprecates torch.jit.trace/save/load) and will "
                "be removed; use format='torch_export' or 'onnx'",
                FutureWarning,
                stacklevel=3,
            )
            torch.jit.save(torch.jit.trace(module, example), buffer)
        elif fmt == "torch_export":
            batch = torch.export.Dim("batch", min=1)
            program = torch.export.export(module, (example,), dynamic_shapes=({0: batch},))
            torch.export.save(program, buffer)
        else:  # torch's current ONNX exporter, from torch.export's graph (needs onnxscript)
            _check_onnxscript()
            batch = torch.export.Dim("batch", min=1)
            program = torch.onnx.export(
                module,
                (example,),
                dynamo=True,
                input_names=["images"],
                output_names=["logits"],
                dynamic_shapes=({0: batch},),
                opset_version=opset,
                optimize=True,
                verbose=False,
            )
            buffer.write(program.model_proto.SerializeToString())
    return buffer.getvalue()


def _check_onnxscript() -> None:
    import importlib.util

    if importlib.util.find_spec("onnxscript") is None:
        raise ValueError(
            "Expected the `onnxscript` package for format='onnx' (torch's ONNX exporter needs it), but it is not "
            "installed: pip install 'ugmm-vision[export]'"
        )


def load_exported(path: str | Path, format: ExportFormat) -> Callable[[Tensor], Tensor]:
    """Load an exported file as a function ``images -> logits`` (ONNX through ``onnxruntime``, on the CPU)."""
    _check_format(format)
    path = Path(path)
    if format == "torchscript":  # deprecated (see the module docstring): torch warns
        return torch.jit.load(str(path), map_location="cpu")
    if format == "torch_export":
        return torch.export.load(io.BytesIO(path.read_bytes())).module()  # any suffix, not only .pt2
    import onnxruntime  # optional: only needed to run ONNX files here

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def run(images: Tensor) -> Tensor:
        (logits,) = session.run(["logits"], {"images": images.detach().cpu().float().numpy()})
        return torch.from_numpy(logits)

    return run


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
    _check_format(format)
    if not isinstance(example, Tensor) or example.dim() < 2 or not example.is_floating_point():
        raise ValueError(f"Expected `example` to be a floating batch of images (B, C, H, W), got {example!r:.80}")
    target = check_output_file(output, argument="output")
    module = prepare_for_export(model, temperature).to(example.device)
    data = _serialise(module, example, format, opset)
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
    _check_format(format)
    if trainer.world_size > 1:
        raise ValueError(
            f"Expected `export` in one process, got world_size={trainer.world_size}: pass --trainer.devices=1"
        )
    if temperature is not None and calibrate:
        raise ValueError(
            f"Expected either `temperature` or `calibrate`, got temperature={temperature} and calibrate=True"
        )
    if temperature is not None and (
        isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 < temperature < math.inf
    ):
        raise ValueError(f"Expected `temperature` > 0 and finite (or None for 1), got {temperature!r}")
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
        if len(input_shape) != 3 or not all(isinstance(n, int) and n > 0 for n in input_shape):
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
    if fmt == "onnx":
        import importlib.util

        if importlib.util.find_spec("onnxruntime") is None:
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


def _check_format(fmt: str) -> None:
    if fmt not in get_args(ExportFormat):
        raise ValueError(f"Expected `format` to be one of {list(get_args(ExportFormat))}, got {fmt!r}")
