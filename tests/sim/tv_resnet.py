"""ResNet-18/50 in torchvision's layout (stride on the 3x3 conv, downsample = 1x1 conv + BN),
the architecture sim/zoo.py's shipped topologies describe; shapes only (no weights)."""

from __future__ import annotations

from torch import nn


class Block(nn.Module):
    """A basic (two 3x3) or bottleneck (1x1, 3x3, 1x1) residual block."""

    def __init__(self, cin: int, width: int, stride: int, bottleneck: bool) -> None:
        super().__init__()
        cout = 4 * width if bottleneck else width
        shapes = ([(cin, width, 1, 1), (width, width, 3, stride), (width, cout, 1, 1)]
                  if bottleneck else [(cin, width, 3, stride), (width, width, 3, 1)])
        for i, (a, b, k, s) in enumerate(shapes, start=1):
            setattr(self, f"conv{i}", nn.Conv2d(a, b, k, s, k // 2, bias=False))
            setattr(self, f"bn{i}", nn.BatchNorm2d(b))
        self.n = len(shapes)
        self.relu = nn.ReLU()
        self.downsample = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                         nn.BatchNorm2d(cout))
                           if stride != 1 or cin != cout else None)

    def forward(self, x):
        y = x
        for i in range(1, self.n + 1):
            y = getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(y))
            if i < self.n:
                y = self.relu(y)
        return self.relu(y + (self.downsample(x) if self.downsample is not None else x))


class ResNet(nn.Module):
    def __init__(self, depth: int) -> None:
        super().__init__()
        blocks = {18: [2, 2, 2, 2], 50: [3, 4, 6, 3]}[depth]
        bottleneck = depth == 50
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        for stage, (n, width) in enumerate(zip(blocks, [64, 128, 256, 512], strict=True)):
            layers = []
            for b in range(n):
                layers.append(Block(cin, width, 2 if (b == 0 and stage > 0) else 1, bottleneck))
                cin = 4 * width if bottleneck else width
            setattr(self, f"layer{stage + 1}", nn.Sequential(*layers))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, 1000)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))
