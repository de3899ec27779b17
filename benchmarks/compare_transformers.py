"""wconv against torch.onnx.export and nobuco on transformers families: wall time, peak memory, max abs diff.

The models are the suite's tiny ones (``tests/transformers_models.py``: hidden 32, two layers, built from configs,
every weight seeded), so the times are mostly each tool's imports and tracing: what a user waits for on a small
model. Each conversion runs in a fresh process (compare_tools.py's wrapper), at a fixed batch of 2 and the models'
declared length (7 steps; ViT a 32x24 image). torch.onnx.export runs here (TorchScript at opset 17, and the dynamo
exporter); nobuco needs TensorFlow 2.15 (Keras 2) and torchvision, in an environment of its own:

    python3 -m venv /tmp/bench/nobuco-env
    /tmp/bench/nobuco-env/bin/pip install tensorflow-cpu==2.15.1 torch==2.14.1 nobuco
    /tmp/bench/nobuco-env/bin/pip install transformers==5.18.0 torchvision==0.29.1
    .venv/bin/python benchmarks/compare_transformers.py --nobuco /tmp/bench/nobuco-env/bin/python

Without ``--nobuco`` its rows say "not run". A tool that fails says its error's last line.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
sys.path.insert(0, str(TESTS))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare_tools import measure  # noqa: E402

FAMILIES = ["TinyBert", "TinyDistilBert", "TinyRoberta", "TinyGPT2", "TinyLlama", "TinyQwen2", "TinyT5", "TinyViT"]

TORCH_ONNX_DRIVER = """
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np, torch, transformers_models
model = getattr(transformers_models, sys.argv[2])().eval()
model.load_state_dict(torch.load(sys.argv[3], weights_only=True))
x = torch.from_numpy(np.load(sys.argv[5]))
torch.onnx.export(model, (x,), sys.argv[4], dynamo=sys.argv[6] == "dynamo", opset_version=17 if sys.argv[6] != "dynamo"
                  else None, input_names=["input"])
"""

NOBUCO_DRIVER = """
import sys, types
import numpy as np, torch, nobuco
from nobuco import ChannelOrder
# transformers_models imports tests/third_party.py (pytest, and a torchvision patch for the CPU torch build): in
# nobuco's environment torchvision matches its torch, so a no-op stands in
sys.modules["third_party"] = types.ModuleType("third_party")
sys.modules["third_party"].import_torchvision = lambda: None
sys.path.insert(0, sys.argv[1])
import transformers_models
model = getattr(transformers_models, sys.argv[2])().eval()
model.load_state_dict(torch.load(sys.argv[3], weights_only=True))
x = np.load(sys.argv[5])
keras_model = nobuco.pytorch_to_keras(model, args=[torch.from_numpy(x)], inputs_channel_order=ChannelOrder.PYTORCH,
                                      outputs_channel_order=ChannelOrder.PYTORCH)
keras_model.save(sys.argv[4])
outputs = keras_model(x)
np.save(sys.argv[6], np.asarray(outputs[0] if isinstance(outputs, (list, tuple)) else outputs))
"""


def sources(folder: Path, families) -> dict:
    """name -> (state_dict path, inputs path, the torch model's first output on them)."""
    import torch

    import transformers_models
    from sequence_models import seeded

    made = {}
    for name in families:
        model = seeded(getattr(transformers_models, name)()).eval()
        torch.save(model.state_dict(), folder / f"{name}.pt")
        rng = np.random.default_rng(1)
        x = rng.standard_normal((2, *transformers_models.IMAGE)).astype(np.float32) if name == "TinyViT" else \
            rng.integers(0, transformers_models.VOCABULARY, (2, transformers_models.STEPS)).astype(np.int64)
        np.save(folder / f"{name}-x.npy", x)
        with torch.no_grad():
            output = model(torch.from_numpy(x))
        made[name] = folder / f"{name}.pt", folder / f"{name}-x.npy", \
            (output[0] if isinstance(output, tuple) else output).numpy()
    return made


def run_port(path: Path, x: np.ndarray) -> np.ndarray:
    if path.suffix == ".onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {session.get_inputs()[0].name: x})[0]
    import keras

    from converter import keras_layers  # noqa: F401  (wconv's own layers, which a port may hold)

    found = keras.saving.load_model(path, compile=False)(x.transpose(0, 2, 3, 1) if x.ndim == 4 else x)  # images:
    # a Keras port takes them channels last
    return np.asarray(found[0] if isinstance(found, (list, tuple)) else found)


def rows(folder: Path, nobuco_python: str | None, families=FAMILIES):
    wconv = [sys.executable, "-m", "converter"]
    for name, (source, inputs, expected) in sources(folder, families).items():
        module = f"{TESTS / 'transformers_models.py'}:{name}"
        x = np.load(inputs)
        for target in ("onnx", "keras"):
            out = folder / f"{name}-wconv.{target}"
            result = measure([*wconv, "convert", str(source), str(out), "--module", module, "--force"])
            yield name, f"wconv torch-to-{target}", result, lambda out=out: run_port(out, x), expected
        for exporter in ("torchscript", "dynamo"):
            out = folder / f"{name}-{exporter}.onnx"
            result = measure([sys.executable, "-c", TORCH_ONNX_DRIVER, str(TESTS), name, str(source), str(out),
                              str(inputs), exporter])
            yield name, f"torch.onnx.export ({exporter})", result, lambda out=out: run_port(out, x), expected
        if nobuco_python is None:
            yield name, "nobuco (torch -> Keras 2)", "not run: pass --nobuco PYTHON (see the docstring)", None, expected
            continue
        outputs = folder / f"{name}-nobuco.npy"
        result = measure([nobuco_python, "-c", NOBUCO_DRIVER, str(TESTS), name, str(source),
                          str(folder / f"{name}-nobuco.h5"), str(inputs), str(outputs)])
        yield name, "nobuco (torch -> Keras 2)", result, lambda outputs=outputs: np.load(outputs), expected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nobuco", help="python of an environment with TensorFlow 2.15, torch, transformers, nobuco")
    parser.add_argument("--families", nargs="*", default=FAMILIES, choices=FAMILIES)
    options = parser.parse_args()
    print("| model | tool | wall time (s) | peak RSS (MiB) | max abs diff (relative to the largest output) |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for model, tool, result, found, expected in rows(Path(folder), options.nobuco, options.families):
            if isinstance(result, str):
                print(f"| {model} | {tool} | {result} | | |", flush=True)
                continue
            try:
                diff = float(np.abs(expected - found()).max())
            except Exception as error:  # a tool's output that does not run is its result
                print(f"| {model} | {tool} | {result[0]:.1f} | {result[1]} | output does not run: "
                      f"{type(error).__name__} |", flush=True)
                continue
            scale = float(np.abs(expected).max())
            print(f"| {model} | {tool} | {result[0]:.1f} | {result[1]} | {diff:.2e} ({diff / scale:.1e}) |", flush=True)


if __name__ == "__main__":
    main()
