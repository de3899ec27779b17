"""torch conv nets for the tests (wconv reads them by file path), non-square on purpose."""

import torch
import torch.nn.functional as F
from torch import nn


class ConvBnPool(nn.Module):
    """Conv (stride 2, asymmetric kernel) -> BatchNorm -> ReLU -> MaxPool -> grouped conv -> Flatten -> Linear."""

    input_shape = (3, 13, 10)

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, kernel_size=(3, 2), stride=2, padding=(1, 0))
        self.bn1 = nn.BatchNorm2d(6, eps=1e-3)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(6, 4, kernel_size=3, padding=1, groups=2, bias=False)
        self.fc = nn.Linear(4 * 3 * 2, 5)

    def forward(self, x):
        x = self.pool(torch.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(self.conv2(x), 1))


class DepthwiseGlobal(nn.Module):
    """Depthwise conv with multiplier 2 (no bias), 1x1 conv, global average pool kept as (N, C, 1, 1), Linear."""

    input_shape = (4, 9, 12)

    def __init__(self):
        super().__init__()
        self.depthwise = nn.Conv2d(4, 8, kernel_size=3, padding=1, groups=4, bias=False)
        self.pointwise = nn.Conv2d(8, 5, kernel_size=1)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(5, 3)

    def forward(self, x):
        x = torch.relu(self.pointwise(self.depthwise(x.permute(0, 1, 3, 2))))  # width and height swapped
        return self.head(torch.flatten(self.gap(x), 1))


class TfSamePadding(nn.Module):
    """TF's asymmetric 'same' written the torch way: F.pad then a valid conv; padded max pool; avg pool."""

    input_shape = (2, 10, 11)

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 5, kernel_size=3, stride=2)
        self.maxpool = nn.MaxPool2d(3, stride=1, padding=1)
        self.avgpool = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x):
        x = self.conv(F.pad(x, (0, 1, 0, 1)))
        return torch.mean(self.avgpool(self.maxpool(x)), dim=(2, 3))


class Residual(nn.Module):
    """Skip connection (add), concatenation on channels, BatchNorm, global max."""

    input_shape = (3, 10, 7)

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, kernel_size=3, padding=1)
        self.branch_a = nn.Conv2d(4, 4, kernel_size=3, padding=1)
        self.branch_b = nn.Conv2d(4, 2, kernel_size=1)
        self.bn = nn.BatchNorm2d(6)
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        stem = torch.relu(self.stem(x))
        added = stem + self.branch_a(stem)
        joined = torch.cat([added, self.branch_b(stem)], dim=1)
        return self.fc(torch.amax(self.bn(joined), dim=(2, 3)))


class Conv1dNet(nn.Module):
    """Conv1d stride 2, BatchNorm1d, AvgPool1d, Flatten, Linear."""

    input_shape = (4, 15)

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(4, 6, kernel_size=3, stride=2, padding=1, dilation=1)
        self.bn = nn.BatchNorm1d(6)
        self.pool = nn.AvgPool1d(2)
        self.fc = nn.Linear(6 * 4, 3)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(torch.tanh(self.bn(self.conv(x)))), 1))


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation with nn.Unflatten and x.reshape, SiLU and hardswish, a broadcast multiply."""

    input_shape = (4, 7, 9)
    onnx_export = False  # torch.onnx writes Unflatten as Shape/Slice arithmetic on the batch size

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 6, kernel_size=3, padding=1)
        self.reduce = nn.Linear(6, 3)
        self.expand = nn.Linear(3, 6)
        self.unflatten = nn.Unflatten(1, (6, 1, 1))
        self.head = nn.Linear(6 * 7 * 9, 2)

    def forward(self, x):
        x = F.silu(self.conv(x))
        squeezed = torch.mean(x, dim=(2, 3))
        gate = torch.sigmoid(self.expand(F.hardswish(self.reduce(squeezed))))
        x = x * self.unflatten(gate) + x * gate.view(-1, 6, 1, 1)
        return self.head(x.reshape(-1, 6 * 7 * 9))


class Decoder(nn.Module):
    """Transposed convs: padding with output_padding, groups, no bias, 1-D."""

    input_shape = (4, 5, 6)

    def __init__(self):
        super().__init__()
        self.up1 = nn.ConvTranspose2d(4, 6, kernel_size=3, stride=2, padding=1, output_padding=1)
        self.up2 = nn.ConvTranspose2d(6, 4, kernel_size=(2, 4), stride=(2, 1), bias=False)
        self.up3 = nn.ConvTranspose2d(4, 3, kernel_size=3, padding=1)

    def forward(self, x):
        return self.up3(torch.relu(self.up2(torch.relu(self.up1(x)))))


class Upsampling(nn.Module):
    """nn.Upsample (nearest, factors 2 and 3) and F.interpolate (bilinear, align_corners=False)."""

    input_shape = (3, 5, 4)

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, kernel_size=3, padding=1)
        self.up = nn.Upsample(scale_factor=(2, 3), mode="nearest")
        self.head = nn.Conv2d(4, 2, kernel_size=1)

    def forward(self, x):
        x = self.up(self.conv(x))
        return self.head(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False))


class PreluSoftmax(nn.Module):
    """nn.PReLU per channel and shared, softmax over channels (dim=1) of a feature map."""

    input_shape = (3, 6, 5)

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, kernel_size=3)
        self.prelu = nn.PReLU(4)
        self.softmax = nn.Softmax(dim=1)
        self.fc = nn.Linear(4 * 4 * 3, 3)
        self.prelu_shared = nn.PReLU()

    def forward(self, x):
        x = self.softmax(self.prelu(self.conv(x)))
        return self.prelu_shared(self.fc(torch.flatten(x, 1)))


class Volumes(nn.Module):
    """Conv3d, BatchNorm3d, MaxPool3d, ConvTranspose3d, Flatten -> Linear from a 3-D feature map."""

    input_shape = (2, 4, 6, 5)

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(2, 3, kernel_size=(2, 3, 2), padding=(1, 1, 0))
        self.bn = nn.BatchNorm3d(3)
        self.pool = nn.MaxPool3d(2)
        self.up = nn.ConvTranspose3d(3, 2, kernel_size=2, stride=2)
        self.fc = nn.Linear(2 * 4 * 6 * 4, 3)

    def forward(self, x):
        x = self.up(self.pool(torch.relu(self.bn(self.conv(x)))))
        return self.fc(torch.flatten(x, 1))


class ReusedActivation(nn.Module):
    """torchvision's BasicBlock habit: one parameter-free ``self.relu`` called three times; DenseNet's
    one-tensor ``torch.cat([x], 1)``."""

    input_shape = (3, 9, 7)

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 5, kernel_size=3, padding=1)
        self.bn1 = nn.BatchNorm2d(5)
        self.conv2 = nn.Conv2d(5, 5, kernel_size=3, padding=1, bias=False)
        self.relu = nn.ReLU()

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        z = self.relu(self.conv2(torch.cat([y], 1)) + y)
        return self.relu(z - y)


MODELS = {cls.__name__: cls for cls in (ReusedActivation, Volumes, PreluSoftmax, Upsampling, Decoder, ConvBnPool, DepthwiseGlobal, TfSamePadding, Residual, Conv1dNet,
                                         SqueezeExcite)}


class TrainingOnlyLayers(nn.Module):
    """Conv -> Dropout2d -> F.dropout2d -> AlphaDropout -> flatten -> Linear: every dropout the identity in eval()."""

    input_shape = (3, 9, 7)

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, kernel_size=(3, 2))
        self.drop_channels = nn.Dropout2d(0.4)
        self.alpha = nn.AlphaDropout(0.2)
        self.fc = nn.Linear(4 * 7 * 6, 5)

    def forward(self, x):
        x = F.dropout2d(self.drop_channels(self.conv(x)), 0.3, self.training)
        return self.fc(torch.flatten(self.alpha(x), 1))


def seeded(model, seed=0):
    """Random weights and non-trivial BatchNorm statistics, so that every parameter shows in the output."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            values = torch.randn(tensor.shape, generator=generator) * 0.5
            if tensor.ndim > 1:  # keep activations O(1) through deep nets: scale kernels by fan-in
                values = values * 2 / tensor[0].numel() ** 0.5
            if name.endswith("running_var"):
                values = values.abs() + 0.5
            tensor.copy_(values)
    return model.eval()

