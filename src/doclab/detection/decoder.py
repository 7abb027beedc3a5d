"""DBNet decoders: four backbone levels -> one fused map at the stride of the shallowest level.

Every decoder takes the backbone's four maps (shallow to deep) and returns
(B, out_channels, h0, w0), where (h0, w0) is the size of level 0. Upsampling always targets the
exact size of the finer level (never a scale factor), so inputs that are not multiples of 32 work.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

DECODERS = ("fpn", "unet", "fpn_asf")


def _resize(x: Tensor, size: torch.Size, mode: str = "nearest") -> Tensor:
    if x.shape[-2:] == size:
        return x
    return F.interpolate(x, size=size, mode=mode, align_corners=False if mode == "bilinear" else None)


def _check_levels(in_channels: Sequence[int], strides: Sequence[int]) -> None:
    if len(in_channels) != len(strides) or len(strides) < 2:
        raise ValueError(f"need matching channels and strides for >= 2 levels, got {in_channels} and {strides}")
    if any(a >= b for a, b in zip(strides, strides[1:])):
        raise ValueError(f"strides must increase from level 0, got {strides}")


class ASF(nn.Module):
    """Adaptive scale fusion of DBNet++ (Liao et al., "Real-Time Scene Text Detection with Differentiable
    Binarization and Adaptive Scale Fusion", TPAMI 2022).

    A 3x3 conv reduces the concatenated scales; channel attention (global pooling, two 1x1 convs)
    and spatial attention (channel mean, 3x3 and 1x1 convs) are added on top; a 1x1 conv + sigmoid
    then gives one weight map per scale, so each pixel picks the scales that suit its text size.
    """

    def __init__(self, channels: int, num_scales: int = 4):
        """Args:
        channels: channels of the concatenated scales (num_scales * channels of one scale).
        num_scales: number of scales concatenated.
        """
        super().__init__()
        inner = max(channels // 4, 1)
        self.num_scales = num_scales
        self.reduce = nn.Conv2d(channels, inner, 3, padding=1)
        self.channel_attention = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(inner, max(inner // 4, 1), 1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(max(inner // 4, 1), inner, 1, bias=False),
            nn.Sigmoid(),
        )
        self.spatial_attention = nn.Sequential(
            nn.Conv2d(1, 1, 3, padding=1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(1, 1, 1, bias=False),
            nn.Sigmoid(),
        )
        self.scale_attention = nn.Sequential(nn.Conv2d(inner, num_scales, 1, bias=False), nn.Sigmoid())

    def forward(self, fused: Tensor, scales: Sequence[Tensor]) -> Tensor:
        """Args:
            fused: the concatenated scales (B, channels, h, w).
            scales: the num_scales maps (B, channels / num_scales, h, w) that make up `fused`.

        Returns:
            (B, channels, h, w): each scale times its weight map, concatenated.
        """
        x = self.reduce(fused)
        x = x + self.channel_attention(x)
        x = x + self.spatial_attention(x.mean(dim=1, keepdim=True))
        weights = self.scale_attention(x)
        return torch.cat([weights[:, i : i + 1] * scale for i, scale in enumerate(scales)], dim=1)


class FPNDecoder(nn.Module):
    """DBNet's FPN (Liao et al., AAAI 2020, Fig. 2), optionally with DBNet++'s ASF.

    1x1 lateral convs to `inner_channels`, top-down nearest upsampling and addition, a 3x3 conv
    per level to inner_channels/4, all upsampled to level 0 and concatenated.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        strides: Sequence[int],
        inner_channels: int = 256,
        adaptive_fusion: bool = False,
    ):
        """Args:
        in_channels: channels of the backbone levels, shallow to deep.
        strides: their strides, strictly increasing.
        inner_channels: output channels; a multiple of the number of levels.
        adaptive_fusion: re-weight the scales with `ASF` (the 'fpn_asf' decoder).
        """
        super().__init__()
        _check_levels(in_channels, strides)
        levels = len(in_channels)
        if inner_channels % levels:
            raise ValueError(
                f"decoder channels (detector.decoder_channels) must be a multiple of {levels}, got {inner_channels}"
            )
        self.out_channels = inner_channels
        self.out_stride = strides[0]
        self.lateral = nn.ModuleList(nn.Conv2d(c, inner_channels, 1, bias=False) for c in in_channels)
        self.smooth = nn.ModuleList(
            nn.Conv2d(inner_channels, inner_channels // levels, 3, padding=1, bias=False) for _ in in_channels
        )
        self.fusion = ASF(inner_channels, levels) if adaptive_fusion else None

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        """Args:
            features: backbone levels, level i (B, in_channels[i], h_i, w_i).

        Returns:
            (B, inner_channels, h_0, w_0).
        """
        merged = [conv(f) for conv, f in zip(self.lateral, features)]
        for i in range(len(merged) - 2, -1, -1):
            merged[i] = merged[i] + _resize(merged[i + 1], merged[i].shape[-2:])
        size = merged[0].shape[-2:]
        scales = [_resize(conv(m), size) for conv, m in zip(self.smooth, merged)]
        fused = torch.cat(scales, dim=1)
        return fused if self.fusion is None else self.fusion(fused, scales)


def _conv_bn_relu(in_channels: int, out_channels: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class UNetDecoder(nn.Module):
    """U-Net style decoder (Ronneberger et al., 2015): from the deepest level up, upsample
    bilinearly, concatenate the skip level, two 3x3 conv-BN-ReLU."""

    def __init__(self, in_channels: Sequence[int], strides: Sequence[int], inner_channels: int = 256):
        """Args:
        in_channels: channels of the backbone levels, shallow to deep.
        strides: their strides, strictly increasing.
        inner_channels: channels of every decoder block and of the output.
        """
        super().__init__()
        _check_levels(in_channels, strides)
        self.out_channels = inner_channels
        self.out_stride = strides[0]
        self.top = _conv_bn_relu(in_channels[-1], inner_channels, 1)
        self.blocks = nn.ModuleList(
            nn.Sequential(
                _conv_bn_relu(inner_channels + c, inner_channels, 3),
                _conv_bn_relu(inner_channels, inner_channels, 3),
            )
            for c in in_channels[:-1]
        )

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        """Args:
            features: backbone levels, level i (B, in_channels[i], h_i, w_i).

        Returns:
            (B, inner_channels, h_0, w_0).
        """
        x = self.top(features[-1])
        for i in range(len(self.blocks) - 1, -1, -1):
            skip = features[i]
            x = self.blocks[i](torch.cat([_resize(x, skip.shape[-2:], "bilinear"), skip], dim=1))
        return x


def build_decoder(kind: str, in_channels: Sequence[int], strides: Sequence[int], inner_channels: int) -> nn.Module:
    """Args:
        kind: 'fpn', 'unet' or 'fpn_asf' (`detector.decoder`).
        in_channels: channels of the backbone levels, shallow to deep.
        strides: their strides.
        inner_channels: output channels (`detector.decoder_channels`).

    Returns:
        A decoder with `out_channels` and `out_stride` attributes.
    """
    if kind == "fpn":
        return FPNDecoder(in_channels, strides, inner_channels)
    if kind == "fpn_asf":
        return FPNDecoder(in_channels, strides, inner_channels, adaptive_fusion=True)
    if kind == "unet":
        return UNetDecoder(in_channels, strides, inner_channels)
    raise ValueError(f"detector.decoder: got {kind!r}, expected one of {', '.join(DECODERS)}")
