"""torch modules with attributes that have no faithful equivalent somewhere: wconv must refuse them."""

from torch import nn


class ReflectPadding(nn.Module):
    input_shape = (3, 8, 6)

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, kernel_size=3, padding=1, padding_mode="reflect")

    def forward(self, x):
        return self.conv(x)


class GroupedTranspose(nn.Module):
    input_shape = (4, 5, 6)

    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose2d(4, 6, kernel_size=3, stride=2, groups=2)

    def forward(self, x):
        return self.up(x)


class AlignCorners(nn.Module):
    input_shape = (2, 5, 4)

    def __init__(self):
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)

    def forward(self, x):
        return self.up(x)
