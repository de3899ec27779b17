"""wconv against the converters people would otherwise use: wall time, peak memory, max abs diff.

Each conversion runs in a fresh process (imports included), the other tools in environments of
their own, never as wconv dependencies:

    python3 -m venv /tmp/bench/tf2onnx-env
    /tmp/bench/tf2onnx-env/bin/pip install -c constraints.txt tensorflow-cpu tf2onnx onnx onnxruntime
    .venv/bin/python benchmarks/compare_tools.py --tf2onnx /tmp/bench/tf2onnx-env/bin/python

onnx2torch imports torchvision, which does not import beside the CPU torch 2.13 build, so it
gets an environment with torch 2.14.1 and torchvision 0.29.1 (both on this machine's disk):

    python3 -m venv /tmp/bench/o2t-env
    /tmp/bench/o2t-env/bin/pip install torch==2.14.1 torchvision==0.29.1 onnx2torch onnx onnxruntime
    ... --onnx2torch /tmp/bench/o2t-env/bin/python

nobuco needs TensorFlow 2.15 (Keras 2) and torchvision:

    python3 -m venv /tmp/bench/nobuco-env
    /tmp/bench/nobuco-env/bin/pip install tensorflow-cpu==2.15.1 torch==2.14.1 torchvision==0.29.1 nobuco
    ... --nobuco /tmp/bench/nobuco-env/bin/python

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


ONNX2TORCH_DRIVER = """
import sys, torch, onnx2torch
model = onnx2torch.convert(sys.argv[1]).eval()
torch.save(model.state_dict(), sys.argv[2])
if len(sys.argv) > 3:  # also run it on the benchmark's inputs
    import numpy as np
    with torch.no_grad():
        np.save(sys.argv[4], model(torch.from_numpy(np.load(sys.argv[3]))).numpy())
"""


NOBUCO_DRIVER = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, torch, nobuco
from nobuco import ChannelOrder
sys.path.insert(0, sys.argv[1])
from torch_resnet import ResNet18
model = ResNet18()
model.load_state_dict(torch.load(sys.argv[2], weights_only=True))
x = np.load(sys.argv[4]) if len(sys.argv) > 4 else np.zeros((1, *ResNet18.input_shape), np.float32)
keras_model = nobuco.pytorch_to_keras(model.eval(), args=[torch.from_numpy(x)],
                                      inputs_channel_order=ChannelOrder.PYTORCH,
                                      outputs_channel_order=ChannelOrder.PYTORCH)
keras_model.save(sys.argv[3])
if len(sys.argv) > 5:
    np.save(sys.argv[5], keras_model(x).numpy())
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

    from converter.views import to_framework
    from converter.runners import load

    x = np.random.default_rng(0).standard_normal((2, *shape)).astype(np.float32)
    expected = load(source, module=module).predict([x])[0]
    if tool.startswith("tf2onnx"):
        session = onnxruntime.InferenceSession(str(target), providers=["CPUExecutionProvider"])
        found = session.run(None, {session.get_inputs()[0].name: to_framework(x, "n c h w", "keras")})[0]
    else:
        found = load(target).predict([x])[0]
    return float(np.abs(expected - found).max()), float(np.abs(expected).max())


def onnx2torch_row(name, folder: Path, tf2onnx_out: Path, source: Path, python: str | None):
    """tf2onnx's ONNX through onnx2torch: time and memory of the onnx2torch step, diff of the torch model."""
    if python is None:
        return "not run: pass --onnx2torch PYTHON of an environment with torch, torchvision and onnx2torch", None
    if not tf2onnx_out.exists():
        return "not run: tf2onnx produced no ONNX model", None
    result = measure([python, "-c", ONNX2TORCH_DRIVER, str(tf2onnx_out), str(folder / f"{name}-o2t.pt")])
    if isinstance(result, str):
        return result, None
    from converter.views import to_framework
    from converter.runners import load

    x = np.random.default_rng(0).standard_normal((2, INPUT[2], *INPUT[:2])).astype(np.float32)
    np.save(folder / "x.npy", to_framework(x, "n c h w", "keras"))
    subprocess.run([python, "-c", ONNX2TORCH_DRIVER, str(tf2onnx_out), str(folder / "tmp.pt"),
                    str(folder / "x.npy"), str(folder / "y.npy")], check=True, capture_output=True)
    expected = load(source).predict([x])[0]
    difference = np.abs(expected - np.load(folder / "y.npy"))
    return result, (float(difference.max()), float(np.abs(expected).max()))


def nobuco_row(folder: Path, source: Path, module: str, python: str | None):
    if python is None:
        return "not run: pass --nobuco PYTHON of an environment with TensorFlow 2.15, torch and nobuco", None
    tests = str(ROOT / "tests")
    result = measure([python, "-c", NOBUCO_DRIVER, tests, str(source), str(folder / "resnet18-nobuco.h5")])
    if isinstance(result, str):
        return result, None
    from converter.runners import load

    x = np.random.default_rng(0).standard_normal((2, 3, 64, 80)).astype(np.float32)
    np.save(folder / "x18.npy", x)
    subprocess.run([python, "-c", NOBUCO_DRIVER, tests, str(source), str(folder / "tmp.h5"), str(folder / "x18.npy"),
                    str(folder / "y18.npy")], check=True, capture_output=True)
    expected = load(source, module=module).predict([x])[0]
    difference = np.abs(expected - np.load(folder / "y18.npy"))
    return result, (float(difference.max()), float(np.abs(expected).max()))


def rows(folder: Path, tf2onnx_python: str | None, onnx2torch_python: str | None = None,
         nobuco_python: str | None = None):
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
        result, diff = onnx2torch_row(name, folder, out, path, onnx2torch_python)
        yield name, "onnx2torch (on tf2onnx's ONNX)", result, diff, path, None, shape
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
    result, diff = nobuco_row(folder, source, module, nobuco_python)
    yield "ResNet18 (torch)", "nobuco (torch -> Keras 2)", result, diff, source, module, (3, 64, 80)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tf2onnx", help="python of an environment with tensorflow and tf2onnx")
    parser.add_argument("--onnx2torch", help="python of an environment with torch, torchvision and onnx2torch")
    parser.add_argument("--nobuco", help="python of an environment with TensorFlow 2.15, torch and nobuco")
    options = parser.parse_args()
    print("| model | tool | wall time (s) | peak RSS (MiB) | max abs diff (relative to the largest output) |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for model, tool, result, out, source, module, shape in rows(Path(folder), options.tf2onnx, options.onnx2torch,
                                                                       options.nobuco):
            if isinstance(result, str):
                print(f"| {model} | {tool} | {result} | | |")
                continue
            diff, scale = out if isinstance(out, tuple) else max_diff(source, out, module, shape, tool)
            print(f"| {model} | {tool} | {result[0]:.1f} | {result[1]} | {diff:.2e} ({diff / scale:.1e}) |", flush=True)


if __name__ == "__main__":
    main()
