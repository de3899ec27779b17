"""A port written by hand, the way people do it: other layer names, weights copied with explicit transposes."""

import numpy as np
import torch
from torch import nn


class HandPort(nn.Module):
    """Mirrors tests/test_validate.py's Keras model: conv -> bn -> relu -> flatten -> tanh(fc1) -> fc2."""

    def __init__(self):
        super().__init__()
        self.features = nn.Conv2d(3, 5, kernel_size=(3, 2))
        self.norm = nn.BatchNorm2d(5, eps=1e-3)
        self.fc1 = nn.Linear(125, 8)
        self.fc2 = nn.Linear(8, 8)

    def forward(self, x):
        x = torch.relu(self.norm(self.features(x)))
        x = torch.flatten(x, 1)
        return self.fc2(torch.tanh(self.fc1(x)))


def port_weights(keras_model, permute_flatten_rows: bool = True) -> dict:
    """The Keras weights in torch layouts; ``permute_flatten_rows=False`` is the classic mistake."""
    get = {layer.name: layer.get_weights() for layer in keras_model.layers}
    kernel, bias = get["conv"]
    gamma, beta, mean, variance = get["bn"]
    hidden, hidden_bias = get["hidden"]
    square, square_bias = get["square"]
    rows = hidden.T  # (8, 5*5*5) in Keras' (h, w, c) order
    if permute_flatten_rows:
        rows = rows.reshape(8, 5, 5, 5).transpose(0, 3, 1, 2).reshape(8, -1)
    arrays = {
        "features.weight": kernel.transpose(3, 2, 0, 1), "features.bias": bias,
        "norm.weight": gamma, "norm.bias": beta, "norm.running_mean": mean, "norm.running_var": variance,
        "norm.num_batches_tracked": np.array(0),
        "fc1.weight": rows, "fc1.bias": hidden_bias, "fc2.weight": square.T, "fc2.bias": square_bias,
    }
    return {key: torch.from_numpy(np.ascontiguousarray(value)) for key, value in arrays.items()}
