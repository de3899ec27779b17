"""Seeded random models built with the real frameworks, for the tests."""

from __future__ import annotations

import numpy as np

ACTIVATIONS = ["relu", "sigmoid", "tanh", "softmax", "log_softmax", "gelu", "elu", "selu", "softplus", "leaky_relu", "linear",
               "relu6", "silu", "hard_silu", "mish"]


def seeded(shape, seed: int, scale: float = 0.5) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def batch(features: int, seed: int = 7, rows: int = 6) -> np.ndarray:
    """Seeded normal inputs; never all ones."""
    return np.random.default_rng(seed).standard_normal((rows, features)).astype(np.float32)


# -- Keras ------------------------------------------------------------------------
def keras_activation_layer(keras, name: str, layer_name: str):
    """The dedicated Keras layer where one exists, with a non-default attribute; else Activation()."""
    special = {
        "leaky_relu": lambda: keras.layers.LeakyReLU(negative_slope=0.15, name=layer_name),
        "elu": lambda: keras.layers.ELU(alpha=0.7, name=layer_name),
        "softmax": lambda: keras.layers.Softmax(axis=-1, name=layer_name),
        "relu": lambda: keras.layers.ReLU(name=layer_name),
        "relu6": lambda: keras.layers.ReLU(max_value=6.0, name=layer_name),
    }
    return special.get(name, lambda: keras.layers.Activation(name, name=layer_name))()


def keras_mlp(keras, sizes=(7, 5, 3), activation="relu", fused=True, use_bias=True, seed=0):
    """Dense layers with ``activation`` fused (Dense(activation=...)) or as separate layers."""
    inputs = keras.Input((sizes[0],), name="features")
    x = inputs
    for index, units in enumerate(sizes[1:]):
        x = keras.layers.Dense(units, activation=activation if fused else None, use_bias=use_bias,
                               name=f"dense_{index}")(x)
        if not fused:
            x = keras_activation_layer(keras, activation, f"act_{index}")(x)
    if len(sizes) > 2:
        x = keras.layers.Dropout(0.3, name="dropout")(x)
    model = keras.Model(inputs, x, name="mlp")
    model.set_weights([seeded(w.shape, seed + i) for i, w in enumerate(model.get_weights())])
    return model


# -- ONNX --------------------------------------------------------------------------
ONNX_ACTIVATIONS = {"relu": ("Relu", {}), "sigmoid": ("Sigmoid", {}), "tanh": ("Tanh", {}),
                    "softmax": ("Softmax", {"axis": -1}), "log_softmax": ("LogSoftmax", {"axis": -1}), "gelu": ("Gelu", {}), "elu": ("Elu", {"alpha": 0.7}),
                    "selu": ("Selu", {}), "softplus": ("Softplus", {}), "leaky_relu": ("LeakyRelu", {"alpha": 0.15}),
                    "linear": ("Identity", {}), "hard_silu": ("HardSwish", {}), "mish": ("Mish", {})}


def onnx_activation(helper, numpy_helper, activation, source, out, index):
    """(nodes, initializers) computing ``activation``; relu6 and silu take more than one node."""
    if activation == "relu6":
        bounds = [numpy_helper.from_array(np.array(v, np.float32), f"clip{index}_{v}") for v in (0, 6)]
        return [helper.make_node("Clip", [source, bounds[0].name, bounds[1].name], [out], name=f"act{index}")], bounds
    if activation == "silu":
        gate = f"gate{index}"
        return [helper.make_node("Sigmoid", [source], [gate], name=f"sigmoid{index}"),
                helper.make_node("Mul", [source, gate], [out], name=f"act{index}")], []
    op_type, attrs = ONNX_ACTIVATIONS[activation]
    return [helper.make_node(op_type, [source], [out], name=f"act{index}", **attrs)], []


def onnx_mlp(sizes=(7, 5, 3), activation="relu", seed=0):
    """Layer 0 as Gemm transB=1, layer 1 as Gemm transB=0, further ones as MatMul + Add."""
    from onnx import TensorProto, checker, helper, numpy_helper

    nodes, initializers, current = [], [], "x"
    for index, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        weight = seeded((n_out, n_in), seed + 2 * index)
        bias = seeded((n_out,), seed + 2 * index + 1)
        out = f"h{index}"
        if index == 0:
            initializers += [numpy_helper.from_array(weight, f"w{index}"), numpy_helper.from_array(bias, f"b{index}")]
            nodes.append(helper.make_node("Gemm", [current, f"w{index}", f"b{index}"], [out], transB=1, name=f"gemm{index}"))
        elif index == 1:
            initializers += [numpy_helper.from_array(weight.T.copy(), f"w{index}"),
                             numpy_helper.from_array(bias, f"b{index}")]
            nodes.append(helper.make_node("Gemm", [current, f"w{index}", f"b{index}"], [out], transB=0, name=f"gemm{index}"))
        else:
            initializers += [numpy_helper.from_array(weight.T.copy(), f"w{index}"),
                             numpy_helper.from_array(bias, f"b{index}")]
            nodes.append(helper.make_node("MatMul", [current, f"w{index}"], [f"mm{index}"], name=f"matmul{index}"))
            nodes.append(helper.make_node("Add", [f"mm{index}", f"b{index}"], [out], name=f"add{index}"))
        created, constants = onnx_activation(helper, numpy_helper, activation, out, f"a{index}", index)
        nodes += created
        initializers += constants
        current = f"a{index}"
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", sizes[0]])],
                              [helper.make_tensor_value_info(current, TensorProto.FLOAT, ["N", sizes[-1]])],
                              initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    checker.check_model(model, full_check=True)
    return model


def onnx_model(nodes, inputs, outputs, initializers=(), opset=17):
    """(ModelProto of one graph, the onnx module), for tests that spell a graph node by node."""
    import onnx
    from onnx import helper

    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return model, onnx
