"""A small model built from timm's TensorFlow-'SAME' layers, which pad in forward() by the input's size (timm's
TF-ported models: tf_efficientnet, tf_mixnet). Imported only after timm (tests/third_party.py)."""

from torch import nn
from timm.layers.conv2d_same import Conv2dSame
from timm.layers.pool2d_same import AvgPool2dSame, MaxPool2dSame


class SamePadded(nn.Module):
    """Odd, non-square sizes and stride 2, where 'SAME' pads more at the end than at the start."""

    input_shape = (3, 13, 10)

    def __init__(self):
        super().__init__()
        self.conv = Conv2dSame(3, 6, 4, stride=2)
        self.max_pool = MaxPool2dSame(3, stride=2)
        self.avg_pool = AvgPool2dSame(2, stride=2)
        self.depthwise = Conv2dSame(6, 6, 3, stride=1, dilation=2, groups=6)
        self.head = nn.Linear(6 * 2 * 2, 5)

    def forward(self, x):
        x = self.avg_pool(self.max_pool(self.conv(x)))
        return self.head(self.depthwise(x).flatten(1))
