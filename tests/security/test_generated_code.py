"""Strings from model files never become code in the generated torch module.

Each hostile string is carried into a conversion through one path (ONNX input and node names, a
Keras InputLayer name, a .wconv file's recorded source path and attribute values, the input file's
own name). The generated module must have exactly the statements wconv writes, and importing and
running it must not leave the marker file behind.
"""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

import converter
from converter.codetext import FUNCTIONAL, docstring_text, identifier, literal, verify
from converter.errors import BadInput
from hostile import MARKER, STRINGS, onnx_dense, rename_in_h5_config, rewrite_ir_metadata

IDS = [f"hostile{i}" for i in range(len(STRINGS))]


def assert_inert(port, folder):
    """The module parses to wconv's shape, and importing it and running Model() leaves no marker."""
    code = port.with_suffix(".py").read_text()
    tree = ast.parse(code)
    assert [type(node).__name__ for node in tree.body] == ["Expr", "Import", "Import", "ImportFrom", "ClassDef"]
    verify(code)
    script = ("import importlib.util, sys; spec = importlib.util.spec_from_file_location('port', sys.argv[1]); "
              "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module); module.Model()")
    result = subprocess.run([sys.executable, "-c", script, str(port.with_suffix(".py"))], cwd=folder,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert not (folder / MARKER).exists(), "code from the model file ran"


@pytest.mark.parametrize("text", STRINGS, ids=IDS)
def test_onnx_names(text, tmp_path):
    source = onnx_dense(tmp_path / "model.onnx", input_name=text, node_name=text, graph_name=text)
    converter.convert(source, tmp_path / "port.pt")
    assert_inert(tmp_path / "port.pt", tmp_path)


@pytest.mark.parametrize("text", STRINGS, ids=IDS)
def test_keras_input_layer_name(text, tmp_path, keras):
    from models import keras_mlp

    keras_mlp(keras, (7, 5, 3)).save(tmp_path / "model.h5")
    rename_in_h5_config(tmp_path / "model.h5", "features", text)
    converter.convert(tmp_path / "model.h5", tmp_path / "port.pt")
    assert_inert(tmp_path / "port.pt", tmp_path)


@pytest.mark.parametrize("text", STRINGS, ids=IDS)
def test_ir_file_source_path(text, tmp_path):
    onnx_dense(tmp_path / "model.onnx")
    converter.convert(tmp_path / "model.onnx", tmp_path / "graph.wconv")
    rewrite_ir_metadata(tmp_path / "graph.wconv", lambda spec: spec["source"].update(path=text, format=text))
    converter.convert(tmp_path / "graph.wconv", tmp_path / "port.pt")
    assert_inert(tmp_path / "port.pt", tmp_path)


@pytest.mark.parametrize("text", [s.replace("/", "_") for s in STRINGS if "\x00" not in s], ids=IDS[:-1])
def test_input_file_name(text, tmp_path):
    source = onnx_dense(tmp_path / f"{text}.onnx")
    converter.convert(source, tmp_path / "port.pt")
    assert_inert(tmp_path / "port.pt", tmp_path)


@pytest.mark.parametrize("value", [
    ["1) or __import__('os').system('touch pwned') or (1"],
    "0) + __import__('os').system('touch pwned') + (0",
])
def test_attribute_values_that_are_not_numbers_are_refused(value, tmp_path):
    """A .wconv's attrs are JSON: a string where a number belongs is refused, never pasted into code."""
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Flatten", ["x"], ["y"], name="flat", axis=1)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3, 4, 5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 60])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "m.onnx")
    converter.convert(tmp_path / "m.onnx", tmp_path / "graph.wconv")

    def poison(spec):
        spec["nodes"].append({"op": "transpose", "name": "t", "inputs": [spec["outputs"][0]], "outputs": ["z"],
                              "attrs": {"perm": value}, "fused": False, "params": {}})
        spec["outputs"] = ["z"]

    rewrite_ir_metadata(tmp_path / "graph.wconv", poison)
    with pytest.raises(converter.WconvError):
        converter.convert(tmp_path / "graph.wconv", tmp_path / "port.pt")
    assert not (tmp_path / "port.pt").exists() and not (tmp_path / "port.py").exists()


@pytest.mark.parametrize("injected", [
    "x = __import__('os').system('touch pwned')",
    "x = open('/etc/passwd').read()",
    "x = torch.load('evil.pt')",
    "x = F.torch.hub.load('a', 'b')",
    "x = self.__class__.__init__.__globals__",
    "x = eval('1')",
    "x = (lambda: 1)()",
    "x = [i for i in range(3)]",
])
def test_verify_refuses_code_wconv_never_writes(injected):
    code = ('"""doc"""\n\nimport torch\nimport torch.nn.functional as F\nfrom torch import nn\n\n\n'
            'class Model(nn.Module):\n    def __init__(self):\n        super().__init__()\n\n'
            f'    def forward(self, y):\n        {injected}\n        return y\n')
    with pytest.raises(BadInput):
        verify(code)


def test_every_function_the_op_table_writes_is_allowed():
    """The verifier's allowlist covers each activation's functional form, so no correct port is refused."""
    from converter.ops.activations import ROWS

    written = {f.removeprefix("torch.nn.functional.") for row in ROWS for f in row.torch_functions
               if f.startswith("torch.nn.functional.")}
    assert written <= FUNCTIONAL


def test_escaping_helpers():
    taken = set()
    assert identifier('x"""\nimport os', taken).isidentifier()
    assert identifier("torch", taken) == "l_torch" and identifier("été", taken).isascii()
    for text in STRINGS:
        escaped = docstring_text(text)
        assert '"' not in escaped.replace('\\"', "") and "\n" not in escaped and escaped.isascii()
        assert ast.literal_eval(literal(text)) == text
    assert literal(1 - 0.99) == "0.01" and literal(float("nan")) == "float('nan')"
    with pytest.raises(BadInput):
        literal(object())


def _module_with_helper(helper_text: str) -> str:
    return ('"""doc"""\n\nimport torch\nimport torch.nn.functional as F\nfrom torch import nn\n\n'
            f'{helper_text}\n\nclass Model(nn.Module):\n    def __init__(self):\n        super().__init__()\n'
            "        self.gru = ExplicitRecurrent('gru', 3, 2, reset_after=False)\n\n"
            '    def forward(self, x):\n        y = self.gru(x)[0]\n        return y\n')


def test_verify_accepts_wconvs_helper_class_and_nothing_else_in_its_place():
    """The helper class (a loop over time steps) is accepted only as wconv's exact text: one changed statement,
    or a lookalike class under the same name, is refused."""
    from converter.adapters.torch.cells import EXPLICIT_RECURRENT

    verify(_module_with_helper(EXPLICIT_RECURRENT))
    for changed in (EXPLICIT_RECURRENT.replace("return torch.sigmoid(x)", "return __import__('os').system('x')"),
                    EXPLICIT_RECURRENT + "\nimport os\n",
                    "class ExplicitRecurrent(nn.Module):\n    pass\n"):
        with pytest.raises(BadInput):
            verify(_module_with_helper(changed))
    with pytest.raises(BadInput):  # a helper the module does not define cannot be constructed
        verify(_module_with_helper("").replace("ExplicitRecurrent('gru'", "Other('gru'"))
