"""The README's CLI block and Python snippets run as written, in a folder holding the files they name."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT

README = (ROOT / "README.md").read_text()
NET = '''
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, width=64):
        super().__init__()
        self.hidden = nn.Linear(10, width)
        self.out = nn.Linear(width, 3)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(x)))


class MyNet(nn.Module):
    """model.h5's architecture written by hand: 2000 -> 32 (relu) -> 1 (sigmoid), named otherwise."""

    def __init__(self):
        super().__init__()
        self.encode = nn.Linear(2000, 32)
        self.score = nn.Linear(32, 1)

    def forward(self, x):
        return torch.sigmoid(self.score(torch.relu(self.encode(x))))
'''


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, re.S)


def cli_block() -> str:
    after = README.index("## CLI")
    return re.search(r"```bash\n(.*?)```", README[after:], re.S).group(1)


@pytest.fixture
def folder(tmp_path, keras, torch):
    """model.h5 (the shipped Keras-2 fixture), model.keras, weights.pt with nets.py and mypkg/nets.py."""
    shutil.copy(ROOT / "fixtures" / "seed_mlp.h5", tmp_path / "model.h5")
    keras.saving.load_model(tmp_path / "model.h5", compile=False).save(tmp_path / "model.keras")
    (tmp_path / "nets.py").write_text(NET)
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "mypkg" / "nets.py").write_text(NET)
    sys.path.insert(0, str(tmp_path))
    try:
        from nets import Net  # noqa: the folder's own module
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("nets", None)
    generator = torch.Generator().manual_seed(0)
    net = Net(width=64)
    torch.save({k: torch.randn(v.shape, generator=generator) for k, v in net.state_dict().items()},
               tmp_path / "weights.pt")
    return tmp_path


def test_the_cli_block_runs_as_written(folder):
    for line in cli_block().strip().splitlines():
        words = shlex.split(line, comments=True)
        assert words[0] == "wconv", line
        result = subprocess.run([sys.executable, "-m", "converter", *words[1:]], cwd=folder, capture_output=True,
                                text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert result.returncode == 0, f"{line}\n{result.stderr}"


@pytest.mark.parametrize("index", range(len(blocks("python"))))
def test_each_python_snippet_runs_as_written(index, folder, monkeypatch):
    import converter

    snippet = blocks("python")[index]
    monkeypatch.chdir(folder)
    if "model.pt" in snippet and "converter.write" not in snippet:  # the pytest snippet checks an existing port
        converter.convert("model.h5", "model.pt")
    namespace = {}
    exec(compile(snippet, f"README python snippet {index}", "exec"), namespace)
    for name, value in namespace.items():  # a pytest snippet defines tests: run them
        if name.startswith("test_") and callable(value):
            value()
