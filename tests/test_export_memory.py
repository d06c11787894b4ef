"""The exported uGMM computation stays memory-bounded at inference scale and matches the fused kernels.

Memory is bounded by the largest intermediate tensor, measured two ways:

* while an exported program runs (``torch.export``), a ``TorchDispatchMode`` records the element count of every
  tensor each operator returns; the budget is the chunk's (B, chunk, I) terms;
* in an ONNX file, ONNX shape inference gives every intermediate value's shape (the batch dimension symbolic,
  set to B here), and the same budget applies to the largest.

At (B, I, O) = (64, 2048, 1000) the budget is 64·32·2048 = 4 194 304 elements (16 MiB in float32); the
unchunked formula's (B, O, I) intermediates hold 131 072 000 (500 MiB each).
"""

from __future__ import annotations

import io

import pytest
import torch

from ugmm_vision.export import EXPORT_TERMS_PER_ROW, FrozenUGMMLayer
from ugmm_vision.layers import UGMMLayer

N_ROWS, N_IN, N_OUT = 64, 2048, 1000
CHUNK = EXPORT_TERMS_PER_ROW // N_IN  # 32 neurons per chunk
BUDGET = N_ROWS * CHUNK * N_IN  # elements of the largest intermediate allowed


@pytest.fixture(scope="module")
def layer_and_inputs():
    torch.manual_seed(0)
    layer = UGMMLayer(N_IN, N_OUT, init="unit", mixing_dropout=0.2).eval()
    with torch.no_grad():  # trained-looking parameters: spread means, scales and weights
        layer.log_sigma.normal_(0.0, 0.3)
        layer.mix_logits.normal_(0.0, 1.0)
    x = torch.nn.functional.layer_norm(torch.randn(N_ROWS, N_IN), (N_IN,))
    with torch.no_grad():
        fused = layer(x)  # the fused C++ kernel
    return layer, x, fused


@pytest.mark.slow
def test_torch_export_of_the_frozen_layer_matches_fused_within_the_budget(layer_and_inputs, largest_tensor):
    layer, x, fused = layer_and_inputs
    frozen = FrozenUGMMLayer(layer).eval()
    assert frozen.chunk == CHUNK
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(frozen, (x[:2],), dynamic_shapes=({0: batch},))
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    buffer.seek(0)
    module = torch.export.load(buffer).module()
    with torch.no_grad(), largest_tensor() as probe:
        got = module(x)
    assert probe.largest <= BUDGET, probe.largest
    torch.testing.assert_close(got, fused, rtol=1e-5, atol=1e-5)


def _onnx_largest_intermediate(model_bytes: bytes, batch: int) -> int:
    import onnx

    model = onnx.shape_inference.infer_shapes(onnx.load_from_string(model_bytes))
    largest = 0
    for value in list(model.graph.value_info) + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        numel = 1
        for d in dims:
            numel *= d.dim_value if d.HasField("dim_value") else batch  # the only symbolic dimension is the batch
        largest = max(largest, numel)
    return largest


@pytest.mark.slow
def test_onnx_dynamo_export_of_the_frozen_layer_matches_fused_within_the_budget(layer_and_inputs):
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    layer, x, fused = layer_and_inputs
    frozen = FrozenUGMMLayer(layer).eval()
    batch = torch.export.Dim("batch", min=1)
    program = torch.onnx.export(
        frozen,
        (x[:2],),
        dynamo=True,
        dynamic_shapes=({0: batch},),
        input_names=["x"],
        output_names=["y"],
        opset_version=18,
        verbose=False,
    )
    data = program.model_proto.SerializeToString()
    largest = _onnx_largest_intermediate(data, N_ROWS)
    assert 0 < largest <= BUDGET, largest
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    (got,) = session.run(["y"], {"x": x.numpy()})
    torch.testing.assert_close(torch.from_numpy(got), fused, rtol=1e-5, atol=1e-5)


def test_unchunked_formula_exceeds_the_budget(largest_tensor):
    # The probe is not vacuous: one chunk holding every neuron materialises (B, O, I).
    layer = UGMMLayer(64, 50).eval()
    frozen = FrozenUGMMLayer(layer, terms_per_row=64 * 50)
    assert frozen.chunk == 50
    with torch.no_grad(), largest_tensor() as probe:
        frozen(torch.randn(8, 64))
    assert probe.largest >= 8 * 50 * 64
    chunked = FrozenUGMMLayer(layer, terms_per_row=64 * 7)  # 7, 7, ..., 1 neurons per chunk
    with torch.no_grad(), largest_tensor() as probe:
        y = chunked(torch.randn(8, 64))
    assert probe.largest <= 8 * 7 * 64 and y.shape == (8, 50)


@pytest.mark.parametrize("tied", [False, True])
def test_chunks_concatenate_to_the_layer_output(tied):
    layer = UGMMLayer(10, 23, tied_means=tied).eval()
    x = torch.randn(5, 10)
    with torch.no_grad():
        torch.testing.assert_close(FrozenUGMMLayer(layer, terms_per_row=40)(x), layer(x), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="`terms_per_row`"):
        FrozenUGMMLayer(layer, terms_per_row=0)
