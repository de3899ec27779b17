"""Torch models written the way torchvision writes them (its module names: ``layer1.0.conv1``, ``downsample.0``,
``features.0``, ``classifier.6``), as a user's own targets for ``wconv port``: nothing here is named like the
Keras models whose weights they take."""

import torch
from torch import nn


class Bottleneck(nn.Module):
    """torchvision's Bottleneck, but with the stride on the first 1x1 conv, where Keras' ResNet50 (v1) has it
    (torchvision's ResNet-50 is v1.5: the stride on the 3x3)."""

    expansion = 4

    def __init__(self, in_channels, width, stride=1):
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, 1, stride=stride, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(out_channels))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet50(nn.Module):
    """ResNet-50 v1 in torchvision's layout and names."""

    def __init__(self, num_classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        channels, stages = 64, []
        for index, (width, blocks) in enumerate([(64, 3), (128, 4), (256, 6), (512, 3)]):
            layers = []
            for block in range(blocks):
                layers.append(Bottleneck(channels, width, stride=2 if block == 0 and index > 0 else 1))
                channels = width * Bottleneck.expansion
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class VGG16(nn.Module):
    """torchvision's VGG16 (``features.0`` ... ``classifier.6``), its classifier taking the flattened NCHW map.
    ``pooled``: the size AdaptiveAvgPool2d gives; torchvision's (7, 7) for 224x224 images, here the map's own
    size for smaller images (so the pool is the identity, as torchvision's is at 224x224)."""

    def __init__(self, num_classes=1000, pooled=(7, 7)):
        super().__init__()
        layers, channels = [], 3
        for item in [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, item, 3, padding=1), nn.ReLU(inplace=True)]
                channels = item
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(pooled)
        self.classifier = nn.Sequential(nn.Linear(512 * pooled[0] * pooled[1], 4096), nn.ReLU(True), nn.Dropout(),
                                        nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(),
                                        nn.Linear(4096, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class LSTMClassifier(nn.Module):
    """A text classifier written by hand: ids -> table -> LSTM -> the last step's output -> scores."""

    def __init__(self, vocabulary=37, width=6, hidden=9, classes=3):
        super().__init__()
        self.table = nn.Embedding(vocabulary, width)
        self.rnn = nn.LSTM(width, hidden, batch_first=True)
        self.scores = nn.Linear(hidden, classes)

    def forward(self, ids):
        out, _ = self.rnn(self.table(ids))
        return self.scores(out[:, -1])
