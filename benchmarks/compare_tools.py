"""wconv against the converters people would otherwise use: wall time, peak memory, max abs diff.

Each conversion runs in a fresh process (imports included), the other tools in environments of
their own, never as wconv dependencies:

    python3 -m venv /tmp/bench/tf2onnx-env
    /tmp/bench/tf2onnx-env/bin/pip install -c constraints.txt tensorflow-cpu tf2onnx onnx onnxruntime
    .venv/bin/python benchmarks/compare_tools.py --tf2onnx /tmp/bench/tf2onnx-env/bin/python

Tools whose environment is not given are reported as not run, with the reason.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

KERAS_MODELS = ["MobileNetV2", "ResNet50"]
INPUT = (224, 224, 3)

# Run in a wrapper process so that peak RSS is the conversion's alone.
WRAPPER = """
import resource, subprocess, sys, time
start = time.perf_counter()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
if done.returncode:
    sys.stderr.write(done.stderr[-2000:])
    sys.exit(done.returncode)
print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""

TF2ONNX_DRIVER = """
import sys, tensorflow as tf, keras, tf2onnx
model = keras.saving.load_model(sys.argv[1], safe_mode=True, compile=False)
spec = [tf.TensorSpec((None, *model.inputs[0].shape[1:]), tf.float32, name="input")]
tf2onnx.convert.from_keras(model, input_signature=spec, opset=17, output_path=sys.argv[2])
"""


def measure(command: list[str]) -> tuple[float, int] | str:
    """(seconds, peak MiB), or the error's last line."""
    done = subprocess.run([sys.executable, "-c", WRAPPER, *command], capture_output=True, text=True)
    if done.returncode:
        return (done.stderr.strip().splitlines() or ["failed"])[-1][:160]
    seconds, peak = done.stdout.split()
    return float(seconds), int(peak) // 1024


def keras_sources(folder: Path) -> dict[str, Path]:
    import keras
    from test_architectures import seeded_keras

    paths = {}
    for name in KERAS_MODELS:
        model = getattr(keras.applications, name)(weights=None, input_shape=INPUT, classifier_activation=None)
        paths[name] = folder / f"{name}.keras"
        seeded_keras(model).save(paths[name])
    return paths


def torch_source(folder: Path) -> tuple[Path, str]:
    import torch
    import torch_convnets
    from torch_resnet import ResNet18

    model = torch_convnets.seeded(ResNet18(), seed=3)
    torch.save(model.state_dict(), folder / "resnet18.pt")
    return folder / "resnet18.pt", f"{ROOT / 'tests' / 'torch_resnet.py'}:ResNet18"


def max_diff(source: Path, target: Path, module: str | None, shape, tool: str) -> tuple[float, float]:
    """Source and target on one seeded batch; tf2onnx keeps Keras' channels-last input."""
    import onnxruntime

    from converter.layouts import to_channels_last
    from converter.runners import load

    x = np.random.default_rng(0).standard_normal((2, *shape)).astype(np.float32)
    expected = load(source, module=module)[0]([x])[0]
    if tool.startswith("tf2onnx"):
        session = onnxruntime.InferenceSession(str(target), providers=["CPUExecutionProvider"])
        found = session.run(None, {session.get_inputs()[0].name: to_channels_last(x)})[0]
    else:
        found = load(target)[0]([x])[0]
    return float(np.abs(expected - found).max()), float(np.abs(expected).max())


def rows(folder: Path, tf2onnx_python: str | None):
    wconv = [sys.executable, "-m", "converter"]
    for name, path in keras_sources(folder).items():
        shape = (INPUT[2], *INPUT[:2])
        for target in ("onnx", "pt"):
            out = folder / f"{name}-wconv.{target}"
            yield name, f"wconv keras-to-{'torch' if target == 'pt' else 'onnx'}", \
                measure([*wconv, "convert", str(path), str(out)]), out, path, None, shape
        out = folder / f"{name}-tf2onnx.onnx"
        result = (measure([tf2onnx_python, "-c", TF2ONNX_DRIVER, str(path), str(out)]) if tf2onnx_python
                  else "not run: pass --tf2onnx PYTHON of an environment with tf2onnx")
        yield name, "tf2onnx from_keras", result, out, path, None, shape
        yield name, "tf2onnx + onnx2torch", "not run: onnx2torch imports torchvision, which does not import " \
            "beside the CPU torch build here", None, path, None, shape
    source, module = torch_source(folder)
    out = folder / "resnet18-wconv.onnx"
    yield "ResNet18 (torch)", "wconv torch-to-onnx", measure(
        [*wconv, "convert", str(source), str(out), "--module", module, "--input-shape", "3,64,80"]), out, source, \
        module, (3, 64, 80)
    out = folder / "resnet18-torch.onnx"
    script = ("import sys, torch; sys.path.insert(0, sys.argv[1]); from torch_resnet import ResNet18; "
              "m = ResNet18(); m.load_state_dict(torch.load(sys.argv[2], weights_only=True)); "
              "torch.onnx.export(m.eval(), torch.randn(1, 3, 64, 80), sys.argv[3], dynamo=False, opset_version=17, "
              "dynamic_axes={'input': {0: 'batch'}}, input_names=['input'])")
    yield "ResNet18 (torch)", "torch.onnx.export (TorchScript)", measure(
        [sys.executable, "-c", script, str(ROOT / "tests"), str(source), str(out)]), out, source, module, (3, 64, 80)
    out = folder / "resnet18-wconv.keras"
    yield "ResNet18 (torch)", "wconv torch-to-keras", measure(
        [*wconv, "convert", str(source), str(out), "--module", module, "--input-shape", "3,64,80"]), out, source, \
        module, (3, 64, 80)
    yield "ResNet18 (torch)", "nobuco (torch -> Keras)", "not run: nobuco needs TensorFlow 2.15 / Keras 2 in an " \
        "environment of its own", None, source, module, (3, 64, 80)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tf2onnx", help="python of an environment with tensorflow and tf2onnx")
    options = parser.parse_args()
    print("| model | tool | wall time (s) | peak RSS (MiB) | max abs diff (relative to the largest output) |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for model, tool, result, out, source, module, shape in rows(Path(folder), options.tf2onnx):
            if isinstance(result, str):
                print(f"| {model} | {tool} | {result} | | |")
                continue
            diff, scale = max_diff(source, out, module, shape, tool)
            print(f"| {model} | {tool} | {result[0]:.1f} | {result[1]} | {diff:.2e} ({diff / scale:.1e}) |", flush=True)


if __name__ == "__main__":
    main()
