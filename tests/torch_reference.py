"""The official Coordinate Attention MobileNetV2 and torchvision's, in PyTorch.

Re-implemented from the papers and the checkpoint key layouts in the project
notes, so that ``state_dict`` keys and shapes are those of the released
checkpoints (``mbv2_ca`` of the official repository, torchvision's
``mobilenet_v2``). Used by the converter tests (logits parity) and by
``benchmarks/train_throughput.py`` (the official network's training speed on
the same machine as ours).
"""

import torch

nn = torch.nn
F = torch.nn.functional

# (t, c, n, s) of the MobileNetV2 paper's Table 2.
STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
          (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def make_divisible(value, divisor=8):
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def conv_bn(inputs, outputs, kernel_size, stride=1, groups=1):
    return [
        nn.Conv2d(inputs, outputs, kernel_size, stride, kernel_size // 2,
                  groups=groups, bias=False),
        nn.BatchNorm2d(outputs),
    ]


def conv_bn_relu6(inputs, outputs, kernel_size, stride=1, groups=1):
    return nn.Sequential(*conv_bn(inputs, outputs, kernel_size, stride, groups), nn.ReLU6())


class CoordAtt(nn.Module):
    """The paper's block, NCHW: F1 = conv1, BN = bn1, F_h = conv2, F_w = conv3."""

    def __init__(self, channels, reduction=32):
        super().__init__()
        mip = max(8, channels // reduction)
        self.conv1 = nn.Conv2d(channels, mip, 1)
        self.bn1 = nn.BatchNorm2d(mip)
        self.conv2 = nn.Conv2d(mip, channels, 1)
        self.conv3 = nn.Conv2d(mip, channels, 1)

    def forward(self, x):
        height, width = x.shape[2:]
        z_h = x.mean(dim=3, keepdim=True)  # (N, C, H, 1)
        z_w = x.mean(dim=2, keepdim=True).permute(0, 1, 3, 2)  # (N, C, W, 1)
        f = self.bn1(self.conv1(torch.cat([z_h, z_w], dim=2)))
        f = f * F.relu6(f + 3) / 6  # h-swish
        f_h, f_w = torch.split(f, [height, width], dim=2)
        g_h = torch.sigmoid(self.conv2(f_h))  # (N, C, H, 1)
        g_w = torch.sigmoid(self.conv3(f_w.permute(0, 1, 3, 2)))  # (N, C, 1, W)
        return x * g_h * g_w


class InvertedResidual(nn.Module):
    """One block, its `conv` laid out as in mbv2_ca or in torchvision."""

    def __init__(self, layout, inputs, outputs, stride, expansion, attention=True):
        super().__init__()
        hidden = round(inputs * expansion)
        self.residual = stride == 1 and inputs == outputs
        if layout == "coordatt":
            # Flat: expand conv, BN, ReLU6, dw conv, BN, ReLU6, CoordAtt,
            # project conv, BN (no expansion and no attention in block 1).
            layers = []
            if expansion != 1:
                layers += [*conv_bn(inputs, hidden, 1), nn.ReLU6()]
            layers += [*conv_bn(hidden, hidden, 3, stride, groups=hidden), nn.ReLU6()]
            if expansion != 1 and attention:
                layers.append(CoordAtt(hidden))
            layers += conv_bn(hidden, outputs, 1)
        else:
            # Nested conv-BN-ReLU6 units, then the bare projection and BN.
            layers = []
            if expansion != 1:
                layers.append(conv_bn_relu6(inputs, hidden, 1))
            layers.append(conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden))
            layers += conv_bn(hidden, outputs, 1)
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


class ReferenceMobileNetV2(nn.Module):
    """MobileNetV2 with the module names of mbv2_ca ("coordatt") or torchvision.

    ``attention=False`` leaves the CoordAtt blocks out of the "coordatt"
    layout: the official network without its attention.
    """

    def __init__(self, layout, width, classes, attention=True):
        super().__init__()
        channels = make_divisible(32 * width)
        last = make_divisible(1280 * width) if width > 1 else 1280
        features = [conv_bn_relu6(3, channels, 3, 2)]
        for expansion, c, repeats, stride in STAGES:
            for repeat in range(repeats):
                outputs = make_divisible(c * width)
                features.append(InvertedResidual(
                    layout, channels, outputs, stride if repeat == 0 else 1, expansion,
                    attention))
                channels = outputs
        head = conv_bn_relu6(channels, last, 1)
        if layout == "coordatt":
            self.features = nn.Sequential(*features)
            self.conv = head
            dropout = 0.1
        else:
            self.features = nn.Sequential(*features, head)
            self.conv = nn.Identity()  # no weights, no state_dict keys
            dropout = 0.2
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(last, classes))

    def forward(self, x):
        x = self.conv(self.features(x))
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))
