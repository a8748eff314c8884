"""The model table (torch): CIFAR-style ResNet-20/32/56, a small plain CNN, and ViTs.

:func:`build_model` builds any of :data:`MODELS` by name for a dataset's classes, channels
and image size. The vision transformers (``vit_digits``, ``deit_tiny``, ``deit_small``,
``deit_base``) live in :mod:`quant.torch.vit`; their image size is the data's, so a DeiT
needs images whose sides are multiples of 16 (224 for released checkpoints).

The ResNets follow He et al. (arXiv 1512.03385, section 4.2): a 3x3 stem, three stages of
``n`` basic blocks with 16, 32, 64 channels (times ``width``), stride 2 at the start of
stages 2 and 3, global average pooling and a linear classifier; depth = 6n + 2. Shortcuts
that change shape are 1x1 convolutions with BN ("option B"), so every layer is a conv,
BN, ReLU, pooling or addition that :func:`quant.torch.qat.quantize_` converts. Each ReLU is its
own module (a quantizer is attached to each use).
"""

from __future__ import annotations

import torch
from torch import nn

from quant.errors import ConfigError, check_choice, check_int_range
from quant.torch.train import TrainConfig
from quant.torch.vit import VITS

CNNS = ("resnet20", "resnet32", "resnet56", "cnn")
MODELS = (*CNNS, *VITS)
RESNET_BLOCKS = {"resnet20": 3, "resnet32": 5, "resnet56": 9}

# DeiT's recipe (arXiv 2012.12877, Table 9: AdamW, lr 5e-4 x batch/512, weight decay 0.05,
# label smoothing 0.1, mixup, 300 epochs) at batch 64; no shift augmentation.
_DEIT_RECIPE = {"optimizer": "adamw", "lr": 5e-4 * 64 / 512, "weight_decay": 0.05,
                "batch_size": 64, "shift": 0, "mixup": 0.5, "label_smoothing": 0.1,
                "epochs": 300}
#: Float training recipes (TrainConfig fields) by model; others use TrainConfig's defaults.
#: vit_digits: tuned on the bundled digits (docs/vit.md, "Float training").
FLOAT_RECIPES: dict[str, dict] = {
    "vit_digits": {"optimizer": "adamw", "lr": 2e-3, "weight_decay": 0.05, "batch_size": 64,
                   "shift": 0, "mixup": 0.5, "epochs": 150},
    "deit_tiny": _DEIT_RECIPE, "deit_small": _DEIT_RECIPE, "deit_base": _DEIT_RECIPE,
}

#: QAT recipes (TrainConfig fields) by model; others get :data:`QAT_DEFAULTS`. ViTs fine-tune
#: with AdamW at a tenth of the float learning rate, without mixup (docs/vit.md).
QAT_DEFAULTS: dict = {"epochs": 30, "lr": 0.01, "batch_size": 128}
_VIT_QAT = {"optimizer": "adamw", "weight_decay": 0.05, "batch_size": 64, "shift": 0}
QAT_RECIPES: dict[str, dict] = {
    "vit_digits": {**_VIT_QAT, "lr": 2e-4, "epochs": 3},
    **{name: {**_VIT_QAT, "lr": _DEIT_RECIPE["lr"] / 10, "label_smoothing": 0.1, "epochs": 30}
       for name in ("deit_tiny", "deit_small", "deit_base")},
}


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus the shortcut, then ReLU."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                          nn.BatchNorm2d(cout))
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class ResNet(nn.Module):
    """CIFAR-style ResNet with ``blocks`` basic blocks per stage (depth 6*blocks + 2)."""

    def __init__(self, blocks: int, num_classes: int = 10, in_channels: int = 3,
                 width: int = 1) -> None:
        super().__init__()
        c = [16 * width, 32 * width, 64 * width]
        self.conv1 = nn.Conv2d(in_channels, c[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c[0])
        self.relu = nn.ReLU()
        layers = []
        cin = c[0]
        for i, cout in enumerate(c):
            stage = []
            for j in range(blocks):
                stage.append(BasicBlock(cin, cout, 2 if (i > 0 and j == 0) else 1))
                cin = cout
            layers.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3 = layers
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(c[2], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.flatten(self.pool(x)))


class SmallCNN(nn.Module):
    """A plain CNN: conv(16)-conv(32)-maxpool-conv(64)-avgpool-linear, each conv with BN+ReLU."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3, width: int = 1) -> None:
        super().__init__()
        c = [16 * width, 32 * width, 64 * width]
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c[0], 3, 1, 1, bias=False), nn.BatchNorm2d(c[0]), nn.ReLU(),
            nn.Conv2d(c[0], c[1], 3, 1, 1, bias=False), nn.BatchNorm2d(c[1]), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c[1], c[2], 3, 1, 1, bias=False), nn.BatchNorm2d(c[2]), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.fc = nn.Linear(c[2], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def build_model(name: str, num_classes: int = 10, in_channels: int = 3, width: int = 1,
                input_size: int | tuple[int, int] = 32) -> nn.Module:
    """A model by name (:data:`MODELS`) for ``input_size`` images (a ViT is built for it)."""
    check_choice("model", name, MODELS)
    check_int_range("num_classes", num_classes, 2, 100_000)
    check_int_range("in_channels", in_channels, 1, 4096)
    check_int_range("width", width, 1, 64)
    hw = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    if name in VITS:
        if width != 1:
            raise ConfigError(f"width must be 1 for {name} (a ViT's size is its embed_dim), "
                              f"not {width}")
        return VITS[name](img_size=hw, in_chans=in_channels, num_classes=num_classes)
    if min(hw) < 4:
        raise ConfigError(f"input size must be at least 4x4 for {name}, not {hw}")
    if name == "cnn":
        return SmallCNN(num_classes, in_channels, width)
    return ResNet(RESNET_BLOCKS[name], num_classes, in_channels, width)


def float_recipe(name: str, **overrides: object) -> TrainConfig:
    """The float training configuration for model ``name`` (:data:`FLOAT_RECIPES`, else
    TrainConfig's defaults: also for a user's model factory), with ``overrides`` (e.g.
    ``seed``) applied."""
    return TrainConfig(**{**FLOAT_RECIPES.get(name, {}), **overrides})


def qat_recipe(name: str, **overrides: object) -> TrainConfig:
    """The QAT fine-tuning configuration for model ``name`` (:data:`QAT_RECIPES`, else
    :data:`QAT_DEFAULTS`: also for a user's model factory), with ``overrides`` applied."""
    return TrainConfig(**{**QAT_RECIPES.get(name, QAT_DEFAULTS), **overrides})
