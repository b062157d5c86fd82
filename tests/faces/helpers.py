"""Real face photos for the face tests: scikit-image's astronaut and a tiny random ArcFace ONNX graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from skimage import data


def astronaut() -> np.ndarray:
    """Eileen Collins (NASA, public domain), 512x512, canonical float RGB."""
    return (data.astronaut().astype(np.float32) / np.float32(255.0)).astype(np.float32)


def tiny_arcface(path: Path, *, normalise_in_graph: bool = False, seed: int = 0) -> Path:
    """A random-weight ONNX model with insightface's recognition layout: (N, 3, 112, 112) -> (N, 32)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weights = rng.standard_normal((3 * 7 * 7, 32)).astype(np.float32)
    nodes = []
    source = "input.1"
    initializers = [
        numpy_helper.from_array(weights, "w"),
        numpy_helper.from_array(np.array([0, -1], np.int64), "shape"),
    ]
    if normalise_in_graph:
        initializers += [
            numpy_helper.from_array(np.array(127.5, np.float32), "mean"),
            numpy_helper.from_array(np.array(1 / 127.5, np.float32), "inv_std"),
        ]
        nodes += [
            helper.make_node("Sub", [source, "mean"], ["centred"]),
            helper.make_node("Mul", ["centred", "inv_std"], ["scaled"]),
        ]
        source = "scaled"
    nodes += [
        helper.make_node("AveragePool", [source], ["pooled"], kernel_shape=[16, 16], strides=[16, 16]),
        helper.make_node("Reshape", ["pooled", "shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "w"], ["683"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny-arcface",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["None", 3, 112, 112])],
        [helper.make_tensor_value_info("683", TensorProto.FLOAT, ["None", 32])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
