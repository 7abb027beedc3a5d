"""torch -> ONNX with dynamic batch, height and width (the `export` stage's one exporter).

    data = onnx_bytes(model, example=torch.zeros(2, 3, 512, 512), input_name="images", output_name="probs")

torch.export (dynamo) traces shapes symbolically, so a model whose forward branches on its input
size (DBNet resizes its maps when they miss the input's H, W) stays right at every size; the
older TorchScript tracer would bake in the branch taken at the example size.
"""
from __future__ import annotations

import contextlib
import io
import warnings

import onnx
import torch
from torch import nn

DEFAULT_OPSET = 18


def onnx_bytes(model: nn.Module, example: torch.Tensor, input_name: str, output_name: str,
               opset: int = DEFAULT_OPSET) -> bytes:
    """The serialised ONNX model of `model` in eval mode, checked by `onnx.checker`.

    Args:
        model: takes one (B, 3, H, W) float32 tensor and returns one tensor.
        example: a (B, 3, H, W) input with B >= 2: torch.export specialises dimensions of size 1.
        input_name, output_name: the graph's input and output names.
        opset: ONNX opset version.
    Returns:
        The model as bytes (dimensions 0, 2 and 3 of the input dynamic).
    """
    model = model.eval()
    dynamic = {0: torch.export.Dim.DYNAMIC, 2: torch.export.Dim.DYNAMIC, 3: torch.export.Dim.DYNAMIC}
    # The exporter reports its progress on stdout and warns about internals the user cannot act on.
    with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(model, (example,), dynamo=True, input_names=[input_name],
                                    output_names=[output_name], dynamic_shapes=(dynamic,), opset_version=opset,
                                    verbose=False)
    proto = program.model_proto
    onnx.checker.check_model(proto)
    return proto.SerializeToString()
