"""torch modules for the tests, given to wconv by file path (``tests/torch_models.py:MLP``)."""

import torch
import torch.nn.functional as F
from torch import nn

MODULES = {
    "relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "softmax": lambda: nn.Softmax(dim=-1),
    "log_softmax": lambda: nn.LogSoftmax(dim=-1),
    "gelu": nn.GELU, "gelu_tanh": lambda: nn.GELU(approximate="tanh"), "elu": lambda: nn.ELU(alpha=0.7),
    "selu": nn.SELU, "softplus": nn.Softplus, "leaky_relu": lambda: nn.LeakyReLU(0.15), "linear": nn.Identity,
    "relu6": nn.ReLU6, "silu": nn.SiLU, "hard_silu": nn.Hardswish, "mish": nn.Mish,
}
FUNCTIONS = {
    "relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "softmax": lambda x: F.softmax(x, dim=-1),
    "log_softmax": lambda x: F.log_softmax(x, dim=-1),
    "gelu": F.gelu, "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"), "elu": lambda x: F.elu(x, alpha=0.7),
    "selu": F.selu, "softplus": F.softplus, "leaky_relu": lambda x: F.leaky_relu(x, 0.15), "linear": lambda x: x,
    "relu6": F.relu6, "silu": F.silu, "hard_silu": F.hardswish, "mish": F.mish,
}


class MLP(nn.Module):
    """Linear layers, each followed by an activation module."""

    def __init__(self, sizes=(7, 5, 3), activation="relu", bias=True):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b, bias=bias) for a, b in zip(sizes[:-1], sizes[1:]))
        self.activations = nn.ModuleList(MODULES[activation]() for _ in sizes[1:])
        self.dropout = nn.Dropout(0.3)

    def forward(self, x):
        for layer, activation in zip(self.layers, self.activations):
            x = activation(layer(x))
        return self.dropout(x)


class FunctionalMLP(nn.Module):
    """The same with functional activations (``F.relu(self.fc(x))``), which wconv reads as fused."""

    def __init__(self, sizes=(7, 5, 3), activation="relu"):
        super().__init__()
        self.activation = activation
        self.fc_in = nn.Linear(sizes[0], sizes[1])
        self.fc_out = nn.Linear(sizes[1], sizes[2])

    def forward(self, x):
        x = self._act(self.fc_in(x))
        return self._act(self.fc_out(x))

    def _act(self, x):
        return FUNCTIONS[self.activation](x)


def seeded_state(module, seed=0):
    torch.manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.normal_(0, 0.5)  # non-zero biases too
    return module.state_dict()
