"""Bugs found on real models (issue 8 §5), each pinned by a test against the real frameworks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch_convnets

import converter
from conftest import RUNNERS, TARGET_SUFFIX, TESTS, assert_close, run_keras_model, run_torch_model
from test_bad_input import wconv

TORCH_FILE = TESTS / "torch_convnets.py"


@pytest.mark.slow  # 7 to 25 s on 2 cores: the default suite stays under 10 minutes
def test_a_reused_parameter_free_module_validates_call_by_call(tmp_path, torch):
    model = torch_convnets.seeded(torch_convnets.ReusedActivation())
    torch.save(model.state_dict(), tmp_path / "source.pt")
    module = f"{TORCH_FILE}:ReusedActivation"
    converter.convert(tmp_path / "source.pt", tmp_path / "port.pt", module=module, input_shape=model.input_shape)
    result = wconv("validate", tmp_path / "source.pt", tmp_path / "port.pt", "--source-module", module, "--json",
                   "--input-shape", ",".join(map(str, model.input_shape)))
    assert result.returncode == 0, result.stderr
    layers = [layer["name"] for layer in json.loads(result.stdout)["layers"]]
    assert {"relu", "relu#2", "relu#3"} <= set(layers), layers


def keras_dict_model(keras):
    from keras_convnets import seeded

    a, b = keras.Input((7,), name="tokens"), keras.Input((4,), name="extra")
    hidden = keras.layers.Concatenate(name="cat")([keras.layers.Dense(5, name="da")(a),
                                                  keras.layers.Dense(3, name="db")(b)])
    score = keras.layers.Dense(2, name="head")(hidden)
    return seeded(keras.Model({"tokens": a, "extra": b}, {"score": score, "hidden": hidden}))


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
@pytest.mark.parametrize("target", ["torch", "onnx"])
def test_functional_with_dict_inputs_and_outputs(suffix, target, tmp_path, keras):
    import numpy as np
    from test_convnets import run_target

    model = keras_dict_model(keras)
    model.save(tmp_path / f"source{suffix}")
    rng = np.random.default_rng(3)
    x = [rng.standard_normal((4, 7)).astype(np.float32), rng.standard_normal((4, 4)).astype(np.float32)]
    expected = model({"tokens": x[0], "extra": x[1]})
    out = tmp_path / ("port.pt" if target == "torch" else "port.onnx")
    converter.convert(tmp_path / f"source{suffix}", out)
    found = run_target(target, out, x)
    from conftest import assert_close

    assert_close(np.asarray(expected["score"]), found[0])
    assert_close(np.asarray(expected["hidden"]), found[1])


def test_a_keras_port_of_a_dict_model_keeps_its_dicts(tmp_path, keras):
    keras_dict_model(keras).save(tmp_path / "source.keras")
    converter.convert(tmp_path / "source.keras", tmp_path / "graph.wconv")
    converter.convert(tmp_path / "graph.wconv", tmp_path / "again.keras")
    again = keras.saving.load_model(tmp_path / "again.keras")
    assert sorted(again.input) == ["extra", "tokens"] and list(again.output) == ["score", "hidden"]
    result = wconv("validate", tmp_path / "source.keras", tmp_path / "again.keras")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("case", __import__("keras_convnets").MODELS)
def test_legacy_h5_output_loads_in_keras2_and_keras3(case, tmp_path, keras):
    """`.h5` is the Keras 2 users' format: what wconv writes loads in tf_keras and in Keras 3, same predictions."""
    import keras_convnets
    import numpy as np
    import tf_keras
    from conftest import assert_close
    from test_convnets import canonical_input, keras_outputs

    model = keras_convnets.seeded(keras_convnets.MODELS[case](keras))
    model.save(tmp_path / "source.keras")
    converter.convert(tmp_path / "source.keras", tmp_path / "out.h5")
    inputs = converter.read(tmp_path / "source.keras").inputs
    x = [canonical_input(v.shape[1:], seed=5 + i) for i, v in enumerate(inputs)]
    x = x[0] if len(x) == 1 else x
    expected = keras_outputs(model, x)
    for loader in (tf_keras.models.load_model, keras.saving.load_model):
        loaded = loader(tmp_path / "out.h5", compile=False)
        for index, (want, got) in enumerate(zip(expected, keras_outputs(loaded, x))):
            assert_close(want, np.asarray(got), what=f"{loader.__module__} output {index}")


def onnx_case(name):
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    from models import onnx_model

    def vi(value, shape):
        return helper.make_tensor_value_info(value, TensorProto.FLOAT, shape)

    weight = numpy_helper.from_array(np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32), "W")
    cases = {
        "pad_opset10": ([helper.make_node("Pad", ["x"], ["y"], mode="constant", pads=[0, 0, 1, 2, 0, 0, 2, 1])],
                        [None, 3, 5, 6], [None, 3, 8, 9], [], 10),
        "maxpool_pads_over_half_kernel": ([helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3],
                                                            pads=[2, 2, 2, 2])], [None, 3, 5, 6], [None, 3, 7, 8], [], 17),
        "avgpool_pads_over_half_kernel_counted": (
            [helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], pads=[2, 1, 2, 1],
                              count_include_pad=1)], [None, 3, 5, 6], [None, 3, 7, 6], [], 17),
        # end padding only (TensorFlow's 'SAME' on an odd size), counted: torch's ceil_mode would not count it
        "avgpool_end_pads_counted": (
            [helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 1, 1],
                              count_include_pad=1)], [None, 3, 5, 7], [None, 3, 3, 4], [], 17),
        "flatten_rank1": ([helper.make_node("Flatten", ["x"], ["y"], axis=1)], [None], [None, 1], [], 17),
        "conv_stride2_dilation2": ([helper.make_node("Conv", ["x", "W"], ["y"], strides=[2, 2], dilations=[2, 2])],
                                   [None, 3, 11, 12], [None, 4, 4, 4], [weight], 17),
        "concat_axis0": ([helper.make_node("Concat", ["x", "x"], ["y"], axis=0)], [None, 3], [None, 3], [], 17),
        "dropout_training_mode_input": (
            [helper.make_node("Dropout", ["x", "", "training"], ["y"])], [None, 3], [None, 3], [], 17),
    }
    nodes, shape_in, shape_out, initializers, opset = cases[name]
    inputs = [vi("x", shape_in)] + ([helper.make_tensor_value_info("training", TensorProto.BOOL, [])]
                                    if name == "dropout_training_mode_input" else [])
    model, onnx = onnx_model(nodes, inputs, [vi("y", shape_out)], initializers, opset=opset)
    return model, onnx, shape_in


# case -> the targets it converts to (checked against onnxruntime); the others are refused with exit 3
ONNX_CASES = {"pad_opset10": ["torch", "keras"], "maxpool_pads_over_half_kernel": ["torch", "keras"],
              "avgpool_pads_over_half_kernel_counted": ["torch", "keras"],
              "avgpool_end_pads_counted": ["torch", "keras"], "flatten_rank1": [],
              "conv_stride2_dilation2": ["torch"], "concat_axis0": [], "dropout_training_mode_input": []}


@pytest.mark.parametrize("target", ["torch", "keras"])
@pytest.mark.parametrize("case", ONNX_CASES)
def test_onnx_edge_cases_convert_faithfully_or_are_refused(case, target, tmp_path):
    import numpy as np
    from conftest import assert_close
    from test_convnets import run_target

    model, onnx, shape = onnx_case(case)
    onnx.save(model, tmp_path / "m.onnx")
    out = tmp_path / ("out.pt" if target == "torch" else "out.keras")
    result = wconv("convert", tmp_path / "m.onnx", out)
    if target not in ONNX_CASES[case]:
        assert result.returncode == 3, result.stderr
        assert not out.exists()
        return
    assert result.returncode == 0, result.stderr
    x = np.random.default_rng(1).standard_normal((2, *shape[1:])).astype(np.float32)
    assert_close(run_target("onnx", tmp_path / "m.onnx", x)[0], run_target(target, out, x)[0])


@pytest.mark.parametrize("target", ["keras", "onnx"])
def test_wconvs_own_torch_output_reads_back(target, tmp_path, keras):
    """NASNetMobile's habits, Average and a standalone Cropping, written to torch as torch.stack(...).mean(0)
    and slicing, read back from that torch port."""
    from conftest import assert_close
    from keras_convnets import seeded
    from test_convnets import canonical_input, keras_outputs, run_target

    inputs = keras.Input((9, 8, 3))
    left = keras.layers.Conv2D(4, 3, name="left")(inputs)
    right = keras.layers.Conv2D(4, 3, name="right")(inputs)
    averaged = keras.layers.Average(name="avg")([left, right])
    cropped = keras.layers.Cropping2D(((1, 2), (0, 1)), name="crop")(keras.layers.ReLU(name="relu")(averaged))
    model = seeded(keras.Model(inputs, cropped))
    model.save(tmp_path / "source.keras")
    converter.convert(tmp_path / "source.keras", tmp_path / "port.pt")
    out = tmp_path / f"back.{target}"
    converter.convert(tmp_path / "port.pt", out, module=f"{tmp_path / 'port.py'}:Model")
    x = canonical_input((3, 9, 8), seed=2)
    assert_close(keras_outputs(model, x)[0], run_target(target, out, x)[0])


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "layer"])
@pytest.mark.parametrize("activation", [a if a in ("relu", "gelu", "hard_silu") else pytest.param(a, marks=pytest.mark.slow)
                                        for a in __import__("models").ACTIVATIONS])  # three by default
def test_legacy_h5_activations_load_in_keras2_or_are_refused(activation, fused, tmp_path, keras):
    import numpy as np
    import tf_keras
    from conftest import assert_close
    from models import batch, keras_mlp

    model = keras_mlp(keras, (7, 5, 3), activation=activation, fused=fused, seed=2)
    model.save(tmp_path / "source.keras")
    if activation == "hard_silu":  # Keras 2 has no hard_silu: refused, nothing written
        with pytest.raises(converter.WconvError, match="Keras 2 has no activation.*write .keras") as error:
            converter.convert(tmp_path / "source.keras", tmp_path / "out.h5")
        assert error.value.exit_code == 3 and not (tmp_path / "out.h5").exists()
        return
    converter.convert(tmp_path / "source.keras", tmp_path / "out.h5")
    x = batch(7)
    loaded = tf_keras.models.load_model(tmp_path / "out.h5", compile=False)
    assert_close(np.asarray(model(x)), loaded.predict(x, verbose=0))


class ViewHead(torch.nn.Module):
    """The older flatten idiom, x.view(x.size(0), -1): torch.onnx folds the size into the Reshape's target."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.head = torch.nn.Linear(4 * 5 * 3, 2)

    def forward(self, x):
        y = torch.relu(self.conv(x))
        return self.head(y.view(y.size(0), -1))


@pytest.mark.parametrize("batch", [1, 2])
def test_reshape_to_the_exported_batch_size_keeps_the_batch(batch, tmp_path):
    """A file exported for one batch size has it in its Reshape targets ([2, -1]): the batch stays first, and the
    port takes any batch. allowzero=1 matters only where a target has a 0."""
    import onnx

    from sequence_models import seeded

    model = seeded(ViewHead())
    x = np.random.default_rng(1).standard_normal((batch, 3, 7, 5)).astype(np.float32)
    torch.onnx.export(model, torch.from_numpy(x), tmp_path / "a.onnx", dynamo=False, opset_version=17,
                      input_names=["x"])
    exported = onnx.load(tmp_path / "a.onnx")
    reshape = next(n for n in exported.graph.node if n.op_type == "Reshape")
    reshape.attribute.append(onnx.helper.make_attribute("allowzero", 1))
    onnx.save(exported, tmp_path / "a.onnx")
    converter.convert(tmp_path / "a.onnx", tmp_path / "b.pt")
    other = np.random.default_rng(2).standard_normal((3, 3, 7, 5)).astype(np.float32)  # another batch size
    assert_close(run_torch_model(model, other), RUNNERS["torch"](tmp_path / "b.pt", other))


@pytest.mark.parametrize("opset", [11, 13])
def test_squeeze_after_global_pool(opset, tmp_path):
    """tf2onnx drops a global pool's 1 x 1 with Squeeze (axes an attribute before opset 13, an input after)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = rng.normal(0, 0.5, (4, 3, 3, 3)).astype(np.float32)
    axes = [2, 3]
    squeeze = helper.make_node("Squeeze", ["pooled"] + (["axes"] if opset >= 13 else []), ["y"], name="squeeze",
                               **({"axes": axes} if opset < 13 else {}))
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("GlobalAveragePool", ["c"], ["pooled"], name="pool"), squeeze]
    initializers = [numpy_helper.from_array(weight, "w")] + \
        ([numpy_helper.from_array(np.array(axes, np.int64), "axes")] if opset >= 13 else [])
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3, 9, 7])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])], initializers)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), tmp_path / "a.onnx")
    x = rng.standard_normal((2, 3, 9, 7)).astype(np.float32)
    for target, suffix in (("torch", ".pt"), ("keras", ".keras")):
        converter.convert(tmp_path / "a.onnx", tmp_path / f"b{suffix}")
        assert_close(RUNNERS["onnx"](tmp_path / "a.onnx", x), RUNNERS[target](tmp_path / f"b{suffix}", x))


@pytest.mark.parametrize("trans_b", [0, 1])
def test_gemm_alpha_and_beta_scale_the_weights(trans_b, tmp_path):
    """Y = alpha A B + beta C (ONNX's Gemm; exporters of scaled layers write it): a Dense with B and C scaled."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(4)
    weight = rng.normal(0, 0.5, (3, 5) if trans_b else (5, 3)).astype(np.float32)
    bias = rng.normal(0, 0.5, 3).astype(np.float32)
    node = helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="gemm", alpha=0.25, beta=-1.5, transB=trans_b)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])],
                              [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "a.onnx")
    x = rng.standard_normal((4, 5)).astype(np.float32)
    for target, suffix in (("torch", ".pt"), ("keras", ".keras")):
        converter.convert(tmp_path / "a.onnx", tmp_path / f"b{suffix}")
        assert_close(RUNNERS["onnx"](tmp_path / "a.onnx", x), RUNNERS[target](tmp_path / f"b{suffix}", x))


@pytest.mark.slow  # whole keras.applications models; the two small tests below pin the same readings by default
@pytest.mark.parametrize("target", ["torch", "onnx"])
@pytest.mark.parametrize("name", ["ConvNeXtTiny", "MobileNetV3Small"])
def test_keras_applications_saved_by_keras3_as_legacy_h5(name, target, tmp_path, keras):
    """``model.save("x.h5")`` in Keras 3: ConvNeXt's Sequential stem and downsampling blocks are one weight group each,
    and MobileNetV3's ``x + 3.0`` and ``x * (1 / 6)`` are operation nodes with no module to tell them from the Add and
    Multiply layers. Keras 3.15 cannot load either .h5 back (LayerScale is unknown to its legacy loader, which calls
    the Add layer with 3.0), so the model in memory is the reference."""
    from test_architectures import assert_logits_match, seeded_keras
    from test_convnets import canonical_input, keras_outputs, run_target

    shape = (32, 32, 3)
    model = getattr(keras.applications, name)(weights=None, input_shape=shape, classifier_activation=None)
    seeded_keras(model).save(tmp_path / "source.h5")
    out = tmp_path / f"port{TARGET_SUFFIX[target]}"
    converter.convert(tmp_path / "source.h5", out)
    x = canonical_input((shape[2], *shape[:2]), batch=2)
    assert_logits_match(keras_outputs(model, x)[0], run_target(target, out, x)[0])


def test_a_nested_models_weights_in_a_legacy_h5_go_to_its_layers(tmp_path, keras):
    """A legacy .h5 stores a model used as a layer as one group, its layers' trainable weights first: a
    BatchNormalization before a conv has its moving statistics after the conv's kernel and bias."""
    from test_architectures import seeded_keras
    from test_convnets import canonical_input, keras_outputs, run_target

    shape = (9, 7, 3)
    stem = keras.Sequential([keras.Input(shape), keras.layers.BatchNormalization(name="stem_bn"),
                             keras.layers.Conv2D(4, 3, name="stem_conv")], name="stem")
    inputs = keras.Input(shape)
    model = seeded_keras(keras.Model(inputs, keras.layers.Conv2D(2, 1, name="head")(stem(inputs))))
    model.save(tmp_path / "source.h5")
    converter.convert(tmp_path / "source.h5", tmp_path / "port.pt")
    x = canonical_input((shape[2], *shape[:2]), batch=2)
    assert_close(keras_outputs(model, x)[0], run_target("torch", tmp_path / "port.pt", x)[0])


def test_keras3_operation_nodes_in_a_legacy_h5(tmp_path, keras):
    """ops.clip, ops.split, ``2.0 - x``, ``x / 4.0`` (and MobileNetV3's ``x + 3.0``) in a Keras 3 .h5, where only the
    config (a name and the arguments, no "trainable") tells an operation from a layer."""
    from test_keras_ops_nodes import SHAPE, keras_ops_model

    model = keras_ops_model(keras)
    model.save(tmp_path / "source.h5")
    converter.convert(tmp_path / "source.h5", tmp_path / "port.pt")
    x = np.random.default_rng(2).standard_normal((3, SHAPE[2], *SHAPE[:2])).astype(np.float32)
    assert_close(run_keras_model(model, x), RUNNERS["torch"](tmp_path / "port.pt", x))
