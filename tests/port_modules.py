"""torch modules a user wrote by hand, as targets (and sources) of ``wconv port`` in tests/test_port.py."""

import torch


class Square(torch.nn.Module):
    def __init__(self, extra=False):
        super().__init__()
        self.a, self.b, self.c = torch.nn.Linear(16, 16), torch.nn.Linear(16, 16), torch.nn.Linear(16, 3)
        self.extra = torch.nn.Linear(3, 3) if extra else None

    def forward(self, x):
        y = self.c(torch.tanh(self.b(torch.tanh(self.a(x)))))
        return self.extra(y) if self.extra is not None else y


class Branches(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.p, self.q, self.head = torch.nn.Linear(16, 8), torch.nn.Linear(16, 8), torch.nn.Linear(16, 3)

    def forward(self, x):
        return self.head(torch.cat([self.p(x), self.q(x)], dim=1))


class DepthwisePointwise(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.depthwise = torch.nn.Conv2d(4, 8, 3, padding=1, groups=4, bias=False)
        self.pointwise = torch.nn.Conv2d(8, 6, 1)
        self.fc = torch.nn.Linear(6, 3)

    def forward(self, x):
        return self.fc(self.pointwise(self.depthwise(x)).mean((2, 3)))


class Attending(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.attention = torch.nn.MultiheadAttention(8, 2, batch_first=True)
        self.norm = torch.nn.LayerNorm(8, eps=1e-3)  # Keras' epsilon
        self.head = torch.nn.Linear(8, 3)

    def forward(self, x):
        attended, _ = self.attention(x, x, x, need_weights=False)
        return self.head(self.norm(x + attended))
