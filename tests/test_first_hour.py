"""A new user's first hour: the package's name and metadata, and the CLI's edges."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib

import pytest

from conftest import ROOT, TORCH_MODELS, import_file
from test_bad_input import SEED_MLP, assert_clean_failure, digest, wconv


def test_distribution_is_not_the_unrelated_wconv_and_carries_its_licence():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == "wconv-weights"  # "wconv" on the index is the Windows Format Converter
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    assert "Apache License" in (ROOT / "LICENSE").read_text()
    assert (ROOT / "converter" / "py.typed").exists()
    assert project["scripts"] == {"wconv": "converter.cli:run"}
    readme = (ROOT / "README.md").read_text()
    assert "pip install 'wconv[" not in readme and "pip install wconv " not in readme
    assert "pip install 'wconv-weights[all]'" in readme


def test_installed_metadata_names_our_project():
    from importlib.metadata import metadata

    meta = metadata("wconv-weights")
    assert meta["Name"] == "wconv-weights" and meta["License-Expression"] == "Apache-2.0"


def test_version_prints_the_version():
    import converter

    result = wconv("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"wconv {converter.__version__}"


def test_shell_completion_is_offered():
    assert "--install-completion" in wconv("--help").stdout


@pytest.mark.parametrize("command, output", [("keras-to-torch", "out.onnx"), ("keras-to-onnx", "out.pt"),
                                             ("keras-to-torch", "out.keras"), ("onnx-to-keras", "out.pt")])
def test_an_output_extension_that_contradicts_the_command_is_refused(command, output, tmp_path):
    source = SEED_MLP
    if command.startswith("onnx"):
        import converter

        converter.convert(SEED_MLP, tmp_path / "m.onnx")
        source = tmp_path / "m.onnx"
    before = digest(source)
    result = wconv(command, source, tmp_path / output)
    assert_clean_failure(result, 2, tmp_path / output, "this command writes")
    assert not (tmp_path / output).exists() and digest(source) == before


def test_bad_module_args_json_is_bad_input(tmp_path, torch):
    from torch_models import MLP, seeded_state

    torch.save(seeded_state(MLP((7, 5, 3)), seed=1), tmp_path / "w.pt")
    result = wconv("torch-to-onnx", tmp_path / "w.pt", tmp_path / "out.onnx", "--module", f"{TORCH_MODELS}:MLP",
                   "--module-args", "{'sizes': [7, 5, 3]}")
    assert_clean_failure(result, 2, tmp_path / "w.pt", "--module-args is not valid JSON")
    assert not (tmp_path / "out.onnx").exists()


CHECK_IMPORTS = """
import sys
from converter.cli import app
try:
    app(sys.argv[1:], standalone_mode=True)
except SystemExit as exit:
    print(exit.code, sorted(m for m in ("tensorflow", "keras", "torch", "onnx") if m in sys.modules))
"""


@pytest.mark.parametrize("arguments", [["validate", str(SEED_MLP), "missing.pt"],
                                       ["validate", "missing.h5", str(SEED_MLP)],
                                       ["keras-to-torch", "missing.h5", "out.pt"]])
def test_missing_files_are_reported_before_any_framework_is_imported(arguments, tmp_path):
    result = subprocess.run([sys.executable, "-c", CHECK_IMPORTS, *arguments], capture_output=True, text=True,
                            cwd=tmp_path, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.stdout.split(None, 1) == ["2", "[]\n"], result.stdout + result.stderr
    assert "no such file" in result.stderr


def test_swapped_arguments_say_what_is_wrong_with_the_source_first(tmp_path):
    """`wconv keras-to-torch out.pt model.h5` with both existing: not "model.h5 exists"."""
    import converter

    converter.convert(SEED_MLP, tmp_path / "out.pt")
    result = wconv("keras-to-torch", tmp_path / "out.pt", SEED_MLP)
    assert result.returncode == 2 and "exists" not in result.stderr, result.stderr


def test_generated_code_writes_floats_in_their_shortest_form(tmp_path, keras):
    inputs = keras.Input((6, 5, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(momentum=0.99, epsilon=0.001, name="bn")(x)
    keras.Model(inputs, x).save(tmp_path / "m.keras")
    result = wconv("keras-to-torch", tmp_path / "m.keras", tmp_path / "out.pt")
    assert result.returncode == 0, result.stderr
    code = (tmp_path / "out.py").read_text()
    assert "eps=0.001, momentum=0.01)" in code, code


def test_json_output_is_json(tmp_path):
    result = wconv("keras-to-torch", SEED_MLP, tmp_path / "out.pt", "--json")
    assert json.loads(result.stdout)["outputs"] == [str(tmp_path / "out.pt"), str(tmp_path / "out.py")]


def run_on_a_terminal(arguments, folder) -> tuple[int, str]:
    """The CLI with stdin, stdout and stderr on a pseudo-terminal, as a person runs it."""
    import os
    import pty

    primary, secondary = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "converter", *map(str, arguments)], stdin=secondary,
                               stdout=secondary, stderr=secondary, cwd=ROOT,
                               env={**os.environ, "COLUMNS": "120", "TERM": "xterm-256color"})
    os.close(secondary)
    received = b""
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the terminal closed: the process is done
            break
        if not chunk:
            break
        received += chunk
    os.close(primary)
    return process.wait(timeout=600), received.decode("utf-8", "replace")


def test_long_commands_show_a_progress_bar_on_a_terminal_only(tmp_path):
    import converter

    converter.convert(SEED_MLP, tmp_path / "port.pt")
    code, screen = run_on_a_terminal(["validate", SEED_MLP, tmp_path / "port.pt"], tmp_path)
    assert code == 0, screen
    assert "comparing layers" in screen or "running both models" in screen, screen
    piped = wconv("validate", SEED_MLP, tmp_path / "port.pt")
    assert piped.returncode == 0 and piped.stderr == ""
    assert "running both models" not in piped.stdout


@pytest.mark.parametrize("name", ["read", "write", "convert", "validate", "testing.assert_equivalent",
                                  "adapters.keras.read", "adapters.keras.write", "adapters.torch.read",
                                  "adapters.torch.write", "adapters.onnx.read", "adapters.onnx.write"])
def test_the_public_api_is_typed_and_documented(name):
    import importlib
    import inspect

    import converter

    owner, _, attribute = f"converter.{name}".rpartition(".")
    function = getattr(importlib.import_module(owner), attribute)
    signature = inspect.signature(function)
    assert function.__doc__ and function.__doc__.strip(), name
    assert signature.return_annotation is not inspect.Signature.empty, name
    for parameter in signature.parameters.values():
        assert parameter.kind is not inspect.Parameter.VAR_KEYWORD, f"{name}(**{parameter.name}) is opaque"
        assert parameter.annotation is not inspect.Parameter.empty, f"{name}: {parameter.name} has no type"
    assert converter is not None


def test_adapters_read_through_the_parsing_child(tmp_path):
    """keras.read / onnx.read in a migration script pass the same gate as converter.read."""
    from converter import untrusted
    from converter.adapters import keras

    keras.read(SEED_MLP)
    assert any(key[0] == str(SEED_MLP.resolve()) for key in untrusted._vetted)


WIDE = '''
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, width=16):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3)
        self.conv2 = nn.Conv2d(width, 2 * width, 3)
        self.fc = nn.Linear(2 * width, 5)

    def forward(self, x):
        return self.fc(torch.flatten(torch.relu(self.conv2(torch.relu(self.conv(x)))).mean((2, 3), keepdim=True), 1))


class Text(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(30, 8)
        self.fc = nn.Linear(8, 2)

    def forward(self, ids):
        return self.fc(self.embedding(ids).mean(1))
'''


@pytest.mark.slow  # 7 to 13 s on 2 cores: the default suite stays under 10 minutes
def test_a_checkpoint_of_other_constructor_arguments_is_named_at_its_first_layer(tmp_path, torch):
    (tmp_path / "nets.py").write_text(WIDE)
    net = import_file(tmp_path / "nets.py", "first_hour_nets").Net(width=12)
    torch.save(net.state_dict(), tmp_path / "w12.pt")
    result = wconv("torch-to-onnx", tmp_path / "w12.pt", tmp_path / "out.onnx", "--module",
                   f"{tmp_path / 'nets.py'}:Net", "--input-shape", "3,10,9")
    assert_clean_failure(result, 2, tmp_path / "w12.pt", "'conv.weight' is (12, 3, 3, 3) in the file but (16, 3, 3, 3)",
                         "--module-args")
    fixed = wconv("torch-to-onnx", tmp_path / "w12.pt", tmp_path / "out.onnx", "--module", f"{tmp_path / 'nets.py'}:Net",
                  "--module-args", '{"width": 12}', "--input-shape", "3,10,9", "--check")
    assert fixed.returncode == 0, fixed.stderr


def test_a_text_model_without_its_length_is_told_to_give_a_sequence_length(tmp_path, torch):
    (tmp_path / "nets.py").write_text(WIDE)
    torch.save(import_file(tmp_path / "nets.py", "first_hour_text").Text().state_dict(), tmp_path / "text.pt")
    result = wconv("torch-to-onnx", tmp_path / "text.pt", tmp_path / "out.onnx", "--module",
                   f"{tmp_path / 'nets.py'}:Text")
    assert_clean_failure(result, 2, tmp_path / "text.pt", "a sequence length such as 128")
    assert "3,224,224" not in result.stderr


@pytest.mark.slow  # 7 to 25 s on 2 cores: the default suite stays under 10 minutes
def test_validate_names_its_own_option_for_a_module_it_will_not_run(tmp_path):
    import converter

    port = tmp_path / "port.pt"
    converter.convert(SEED_MLP, port)
    generated = port.with_suffix(".py")
    generated.write_text(generated.read_text() + "\n# edited\n")
    result = wconv("validate", SEED_MLP, port)
    assert_clean_failure(result, 2, port, "Pass it with --target-module")
    assert "--module " not in result.stderr and "--module/" not in result.stderr


@pytest.mark.slow  # 7 to 25 s on 2 cores: the default suite stays under 10 minutes
def test_progress_lines_for_logs_on_request_only(tmp_path):
    """In a pipe: nothing by default (stderr holds only what went wrong); --progress lines or WCONV_PROGRESS=lines
    writes one line per phase, the first at once."""
    import os

    out = tmp_path / "port.onnx"
    quiet = wconv("keras-to-onnx", SEED_MLP, out)
    assert quiet.returncode == 0 and quiet.stderr == ""
    logged = wconv("--progress", "lines", "keras-to-onnx", SEED_MLP, out, "--force", "--check")
    assert logged.returncode == 0, logged.stderr
    lines = logged.stderr.splitlines()
    assert lines and all(line.startswith("wconv: [") for line in lines)
    phases = [line.split("] ", 1)[1] for line in lines]
    assert phases[0] == "checking seed_mlp.h5 in a limited process" and "running both models" in phases
    done = subprocess.run([sys.executable, "-m", "converter", "inspect", SEED_MLP], capture_output=True, text=True,
                          env={**os.environ, "WCONV_PROGRESS": "lines"}, timeout=600)
    assert done.returncode == 0 and done.stderr.startswith("wconv: [")
    assert wconv("--progress", "loud", "inspect", SEED_MLP).returncode == 2


def test_the_readme_says_how_to_install_before_a_release_and_on_a_cpu_only_machine():
    readme = (ROOT / "README.md").read_text()
    assert "No release is on PyPI yet" in readme and "pip install '.[all]'" in readme
    assert "pip install torch --index-url https://download.pytorch.org/whl/cpu" in readme
    releasing = (ROOT / "docs" / "releasing.md").read_text()
    assert "make dist" in releasing and "twine upload" in releasing
    assert "\ndist:" in (ROOT / "Makefile").read_text()


def test_validate_runs_a_generated_torch_source_without_being_told_its_module(tmp_path):
    """A .pt wconv wrote, as the SOURCE of validate: its generated module (sha256 checked) is found, as for a
    target; a plain state_dict is told to pass --source-module."""
    import converter

    port = tmp_path / "port.pt"
    converter.convert(SEED_MLP, port)
    converter.convert(SEED_MLP, tmp_path / "port.onnx")
    assert converter.validate(port, tmp_path / "port.onnx").ok
    port.with_suffix(".py").unlink()
    result = wconv("validate", port, tmp_path / "port.onnx")
    assert_clean_failure(result, 2, port, "pass --source-module")
