"""torch modules written the way model libraries write them (timm, torchvision): functional calls on a module's own
parameters, shape arithmetic, splits and slices, eval-time identities. Non-square on purpose."""

import torch
import torch.nn.functional as F
from torch import nn


class BatchNormAct(nn.BatchNorm2d):
    """timm's BatchNormAct2d: a BatchNorm subclass whose forward() is F.batch_norm, then its activation."""

    def __init__(self, channels):
        super().__init__(channels, eps=1e-3)
        self.act = nn.ReLU()

    def forward(self, x):
        torch._assert(x.ndim == 4, "expected a 4-D input")
        x = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, self.training,
                         self.momentum, self.eps)
        return self.act(x)


class LayerNorm2d(nn.LayerNorm):
    """torchvision's ConvNeXt LayerNorm2d: LayerNorm over channels of a channels-first map."""

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class SamePadConv(nn.Conv2d):
    """A Conv2d subclass calling F.conv2d itself, as timm's Conv2dSame does."""

    def forward(self, x):
        return F.conv2d(F.pad(x, (0, 1, 1, 1)), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class LibraryLayers(nn.Module):
    input_shape = (3, 11, 8)

    def __init__(self):
        super().__init__()
        self.stem = SamePadConv(3, 6, (3, 2), stride=2)
        self.bn = BatchNormAct(6)
        self.norm = LayerNorm2d(6, eps=1e-4)
        self.group = nn.GroupNorm(3, 6)
        self.head_weight = nn.Parameter(torch.randn(5, 6))

    def forward(self, x):
        x = self.norm(self.bn(self.stem(x)))
        x = F.group_norm(x, 3, self.group.weight, self.group.bias, self.group.eps)
        x = F.max_pool2d(F.avg_pool2d(x, 3, 1, 1), 2, ceil_mode=True)  # counts its padding; partial windows
        return F.linear(x.reshape(x.size(0), -1)[:, 2:8] + x.mean((2, 3)), self.head_weight)


class Splits(nn.Module):
    """MixNet's split into kernels, CSPNet's chunk, ReXNet's partial residual x[:, :c], flatten by x.size(0)."""

    input_shape = (3, 4, 5)

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 6, 3, padding=1)
        self.b = nn.Conv2d(2, 4, (3, 1), padding=(1, 0))
        self.c = nn.Conv2d(8, 4, 1)
        self.fc = nn.Linear(13, 5)

    def forward(self, x):
        x = self.a(x)
        p, q = torch.split(x, [2, 4], dim=1)
        parts = q.chunk(2, dim=1)
        u, v = parts[0], parts[-1]  # Res2Net takes its last part as spx[-1]
        y = torch.cat([self.b(p), u.contiguous(), F.dropout(v, 0.2, self.training)], 1)
        y = self.c(y)[:, 1:4] + x[:, :3][:, 0:3]  # the second slice keeps every channel (GhostNet's)
        z = y.view(y.size(0), -1)
        return self.fc(torch.cat([z[:, 5:10], y.mean((2, 3)), x.mean((2, 3))[:, 1:6]], 1))


class CeilAvgPool(nn.Module):
    """ResNet-D's shortcut: AvgPool2d(2, ceil_mode=True, count_include_pad=False) on odd sizes."""

    input_shape = (4, 7, 9)

    def __init__(self):
        super().__init__()
        self.pool = nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False)
        self.conv = nn.Conv2d(4, 3, 1)

    def forward(self, x):
        return self.conv(self.pool(x))


class StandardizedWeight(nn.Module):
    """Weight standardization as timm's ScaledStdConv2d writes it (NF-ResNet): the conv's weight normalized per
    output channel with F.batch_norm(training=True) and scaled by a learned gain, on every call; and a Linear whose
    weight is a parameter times 2, which the Linear also reads raw (so the computed one gets a key of its own)."""

    input_shape = (3, 6, 5)

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.gain = nn.Parameter(torch.ones(4, 1, 1, 1))
        self.head = nn.Linear(4, 4)

    def forward(self, x):
        out = self.conv.weight.shape[0]
        weight = F.batch_norm(self.conv.weight.reshape(1, out, -1), None, None, weight=(self.gain * 0.5).view(-1),
                              training=True, momentum=0.0, eps=1e-5).reshape_as(self.conv.weight)
        x = F.conv2d(x, weight, self.conv.bias).mean((2, 3))
        return self.head(x) + F.linear(x, self.head.weight * 2)


class InputDependentWeight(nn.Module):
    """A weight computed from the input (a dynamic convolution): not a weight at all, so refused by name."""

    input_shape = (3, 6, 5)

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return F.conv2d(x, self.conv.weight * x.mean(), self.conv.bias)


class BatchDependentShape(nn.Module):
    """A reshape that folds the batch into another axis: depends on the batch size, refused."""

    input_shape = (4, 6)

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        return self.fc(x.reshape(x.size(0) * 4, 6))


class FailingAssert(nn.Module):
    """The model's own check, which the declared input shape fails."""

    input_shape = (3, 6, 5)

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        torch._assert(x.shape[2] == x.shape[3], "input must be square")
        return self.conv(x)


class LayerScales(nn.Module):
    """ConvNeXt's layer scales: torchvision's (C, 1, 1) parameter times the branch, timm's
    x.mul(gamma.reshape(1, -1, 1, 1)), and wconv's own LayerScale helper."""

    input_shape = (5, 6, 9)

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(5, 4, 3, padding=1, groups=1)
        self.layer_scale = nn.Parameter(torch.randn(4, 1, 1))
        self.gamma = nn.Parameter(torch.randn(4))
        self.fc = nn.Linear(4, 3)
        self.vector_scale = nn.Parameter(torch.randn(1, 3))

    def forward(self, x):
        y = self.layer_scale * self.conv(x)
        y = y.mul(self.gamma.reshape(1, -1, 1, 1)) + y
        return self.fc(y.mean((2, 3))) * self.vector_scale


class PaddedMaxPool(nn.Module):
    """timm's stems: MaxPool2d(3, 2, padding=1) after an activation that can be negative (SiLU, LeakyReLU), which
    Keras' pooling cannot pad (-inf, not TF 'same') and zeros would change."""

    input_shape = (3, 10, 7)

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.act = nn.SiLU()
        self.pool = nn.MaxPool2d(3, 2, padding=1)
        self.pool1d = nn.MaxPool1d(3, 2, padding=1)

    def forward(self, x):
        y = self.pool(self.act(self.conv(x)))
        return self.pool1d(y.reshape(y.size(0), y.size(1), -1))


class Arithmetic(nn.Module):
    """Arithmetic with numbers: MobileNetV3's hard-swish written out, x * relu6(x + 3) / 6, and 1 - x; clipping
    to other bounds than relu6's (torch.clamp, F.hardtanh, nn.Hardtanh)."""

    input_shape = (4, 5, 7)

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 6, 3)
        self.hardtanh = nn.Hardtanh(-0.5, 0.75)

    def forward(self, x):
        y = self.conv(x)
        y = y * F.relu6(y + 3.0) / 6.0
        y = torch.clamp(1.0 - y * 0.5, min=-0.25) + F.hardtanh(y) + y.clamp(max=0.5)
        return self.hardtanh(y)


class ChannelShuffle(nn.Module):
    """ShuffleNetV2's block: chunk into two branches, concatenate, shuffle channels by view/transpose/view on the
    sizes read from x.size()."""

    input_shape = (8, 6, 5)

    def __init__(self):
        super().__init__()
        self.branch = nn.Sequential(nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4), nn.ReLU())
        self.head = nn.Conv2d(8, 3, 1)

    def forward(self, x):
        a, b = x.chunk(2, dim=1)
        x = torch.cat((a, self.branch(b)), dim=1)
        batch, channels, height, width = x.size()
        x = x.view(batch, 2, channels // 2, height, width).transpose(1, 2).contiguous()
        return self.head(x.view(batch, -1, height, width))


class ChannelsLastHead(nn.Module):
    """ConvNeXt's ending: a Linear over channels between permutes (a channels-last tensor in a channels-first
    net), global pooling, LayerNorm2d, flatten, Linear. torch.onnx's dynamo exporter writes the pooled map's
    as_strided as a flat Reshape and a Gather (strided_pass.py)."""

    input_shape = (3, 9, 11)

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.mix = nn.Linear(8, 6)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.norm = nn.LayerNorm(6)
        self.head = nn.Linear(6, 4)

    def forward(self, x):
        x = self.pool(self.mix(self.conv(x).permute(0, 2, 3, 1)).permute(0, 3, 1, 2))
        x = self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return self.head(torch.flatten(x, 1))


class PatchTransformer(nn.Module):
    """A vision transformer as DeiT writes it: patches as a sequence, a class and a distillation token expanded
    over the batch and put first, a learned position table added, two attention blocks, then the two tokens read
    out (``x[:, 0]``, ``x[:, 1]``) into two heads averaged. 2 x 3 patches of a non-square image; width 12."""

    input_shape = (3, 8, 12)

    def __init__(self, width=12, heads=3, classes=5):
        super().__init__()
        self.patches = nn.Conv2d(3, width, 4, stride=4)
        self.cls_token = nn.Parameter(torch.randn(1, 1, width))
        self.dist_token = nn.Parameter(torch.randn(1, 1, width))
        self.pos_embed = nn.Parameter(torch.randn(1, 2 + 6, width))
        self.blocks = nn.ModuleList(nn.TransformerEncoderLayer(width, heads, 20, dropout=0.0, batch_first=True,
                                                               norm_first=True, activation="gelu") for _ in range(2))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, classes)
        self.head_dist = nn.Linear(width, classes)

    def forward(self, x):
        x = self.patches(x).flatten(2).transpose(1, 2)
        n = x.shape[0]
        x = torch.cat([self.cls_token.expand(n, -1, -1), self.dist_token.expand(n, -1, -1), x], dim=1)
        x = x + self.pos_embed
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        return (self.head(x[:, 0]) + self.head_dist(x[:, 1])) / 2


class ShiftPad(nn.Module):
    """NASNet's shift: ZeroPad2d with negative pads, which crop the start while padding the end, before a strided
    pool. Keras gets a Cropping2D then a ZeroPadding2D."""

    input_shape = (3, 7, 6)

    def __init__(self):
        super().__init__()
        self.pad = nn.ZeroPad2d((-1, 1, -2, 1))
        self.pool = nn.AvgPool2d(1, stride=2, count_include_pad=False)
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x):
        return self.conv(self.pool(self.pad(x)))


class AdaptivePools(nn.Module):
    """AlexNet's ending on a small image: AdaptiveAvgPool2d((6, 6)) of a 2 x 3 map (each bin one value, an
    upsampling), and of a 12 x 6 map (each bin 2 x 1 values), which torch.onnx's dynamo exporter writes as a
    GatherND of the bins and a ReduceMean (adaptive_pool_pass.py)."""

    input_shape = (3, 8, 10)

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=3)
        self.wide = nn.Conv2d(3, 4, (1, 3), stride=(1, 2), padding=(2, 2))
        self.pool = nn.AdaptiveAvgPool2d((6, 6))
        self.head = nn.Linear(2 * 4 * 36, 5)

    def forward(self, x):
        small, tall = self.pool(self.conv(x)), self.pool(self.wide(x))
        return self.head(torch.flatten(torch.cat([small, tall], 1), 1))
