"""The export formats: writing an :class:`~ugmm_vision.export.ExportedClassifier` to bytes and loading it back.

``"onnx"`` goes through torch's current exporter (``torch.onnx.export(..., dynamo=True)``, which needs
``onnxscript``: ``pip install ugmm-vision[export]``); ``"torch_export"`` is an ``ExportedProgram`` (``.pt2``);
``"torchscript"`` is deprecated — torch 2.14 deprecates ``torch.jit.trace``/``save``/``load`` in favour of
``torch.export`` — and warns (a ``FutureWarning`` of this package and torch's own, no longer silenced); it will be
removed.
"""

from __future__ import annotations

import importlib.util
import io
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Literal, get_args

import torch
from torch import Tensor, nn

from ugmm_vision.checks import check_choice

__all__ = ["EXPORT_SUFFIXES", "ExportFormat", "check_format", "load_exported", "serialise"]

ExportFormat = Literal["torchscript", "onnx", "torch_export"]
EXPORT_SUFFIXES: dict[str, str] = {"torchscript": ".pt", "onnx": ".onnx", "torch_export": ".pt2"}
"""File suffix of each format (``torch.jit.load``, ``onnxruntime.InferenceSession``, ``torch.export.load``)."""


def check_format(fmt: str) -> str:
    """Return ``fmt`` if it is one of :data:`ExportFormat`; a ``ValueError`` naming ``format`` otherwise."""
    return check_choice("format", fmt, get_args(ExportFormat))


def serialise(module: nn.Module, example: Tensor, fmt: str, opset: int = 18) -> bytes:
    """``module`` written in format ``fmt`` (batch dimension dynamic), as the bytes of the file."""
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
    if importlib.util.find_spec("onnxscript") is None:
        raise ValueError(
            "Expected the `onnxscript` package for format='onnx' (torch's ONNX exporter needs it), but it is not "
            "installed: pip install 'ugmm-vision[export]'"
        )


def load_exported(path: str | Path, format: ExportFormat) -> Callable[[Tensor], Tensor]:
    """Load an exported file as a function ``images -> logits`` (ONNX through ``onnxruntime``, on the CPU)."""
    check_format(format)
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
