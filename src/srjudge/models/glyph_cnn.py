"""A small CNN that reads one 32x32 gray glyph into 36 class logits (the testbed's readers).

Input: (B, 1, 32, 32) float, ink dark on light paper, values in [0, 1]; the network centres them
itself (x - 0.5). Layout, with ``width`` w::

    conv3x3(1->w)   BN ReLU, maxpool   -> 16x16
    conv3x3(w->2w)  BN ReLU, maxpool   -> 8x8
    conv3x3(2w->4w) BN ReLU, maxpool   -> 4x4
    flatten, dropout, linear(16*4w -> 128) ReLU, linear(128 -> 36)

Kept small so that it trains in minutes on two shared CPU cores: width 16 has about 0.16 M
parameters and 2.6 M multiply-adds per glyph; width 24 about 0.29 M parameters.
"""

from __future__ import annotations

import torch
from torch import nn

GLYPH_SIZE = 32
NUM_CLASSES = 36


class GlyphCNN(nn.Module):
    def __init__(self, width: int = 16, num_classes: int = NUM_CLASSES, dropout: float = 0.2) -> None:
        super().__init__()
        if width < 4:
            raise ValueError(f"width must be >= 4, got {width}")
        self.width = width

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [
                nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            ]

        w = width
        self.features = nn.Sequential(
            *block(1, w),
            nn.MaxPool2d(2),
            *block(w, 2 * w),
            nn.MaxPool2d(2),
            *block(2 * w, 4 * w),
            nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(16 * 4 * w, 128),
            nn.ReLU(inplace=True),
            nn.Linear(128, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.head(self.features(x - 0.5))
        return logits
