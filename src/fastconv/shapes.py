"""Shared test and benchmark shapes: named real layers and small awkward cases.

This is the single list used by ``tests/`` and ``benchmarks/`` (NNPACK keeps its
model layers twice; we keep one copy). It imports only the standard library so
that it can ship inside the package.

- ``LAYERS``: name -> :class:`ConvLayer`, convolutions taken from real networks
  (Fashion-MNIST CNN, ResNet-18, ResNet-50, a depthwise layer).
- ``AWKWARD``: small convolution cases that stress edge handling (odd sizes,
  1x1 images and kernels, stride > kernel, dilation, groups, channel counts that
  are not multiples of any SIMD width or micro-kernel tile).
- ``POOL_CASES``: small max-pooling cases in PyTorch's argument conventions.

Layout is NCHW throughout: ``x`` is ``(N, C, H, W)`` and ``w`` is
``(OC, C // groups, KH, KW)``.
"""

import dataclasses

__all__ = ["ConvLayer", "LAYERS", "AWKWARD", "POOL_CASES", "conv_out_size"]


def conv_out_size(size, kernel, stride=1, padding=0, dilation=1):
    """``floor((size + 2*padding - dilation*(kernel-1) - 1) / stride) + 1``."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


@dataclasses.dataclass(frozen=True)
class ConvLayer:
    """One named 2-D convolution: input ``(N, C, H, W)`` -> ``OC`` channels.

    ``stride`` and ``padding`` are the same in both directions; dilation is 1.
    """

    name: str
    N: int
    C: int
    H: int
    W: int
    OC: int
    KH: int
    KW: int
    stride: int = 1
    padding: int = 0
    groups: int = 1

    @property
    def out_hw(self):
        """Output spatial size ``(OH, OW)``."""
        return (conv_out_size(self.H, self.KH, self.stride, self.padding),
                conv_out_size(self.W, self.KW, self.stride, self.padding))

    @property
    def flops(self):
        """Forward FLOPs, counting a multiply-add as 2: ``2*N*OC*OH*OW*(C/groups)*KH*KW``."""
        oh, ow = self.out_hw
        return 2 * self.N * self.OC * oh * ow * (self.C // self.groups) * self.KH * self.KW

    @property
    def x_shape(self):
        """Input shape ``(N, C, H, W)``."""
        return (self.N, self.C, self.H, self.W)

    @property
    def w_shape(self):
        """Weight shape ``(OC, C // groups, KH, KW)``."""
        return (self.OC, self.C // self.groups, self.KH, self.KW)

    def kwargs(self):
        """Keyword arguments for ``fastconv.conv2d`` / ``torch.nn.functional.conv2d``."""
        return {"stride": self.stride, "padding": self.padding, "groups": self.groups}

    def scaled(self, N=None, H=None, W=None):
        """A copy with a smaller batch and/or image, for quick tests."""
        return dataclasses.replace(
            self,
            N=self.N if N is None else N,
            H=self.H if H is None else H,
            W=self.W if W is None else W,
        )


LAYERS = {layer.name: layer for layer in [
    #          name         N    C    H    W    OC  KH KW  stride padding groups
    ConvLayer("fmnist_c1", 64,   1,  28,  28,   32, 3, 3, 1, 1),
    ConvLayer("fmnist_c2", 64,  32,  14,  14,   64, 3, 3, 1, 1),
    ConvLayer("r18_conv1",  8,   3, 224, 224,   64, 7, 7, 2, 3),
    ConvLayer("r18_l2",     8, 128,  28,  28,  128, 3, 3, 1, 1),
    ConvLayer("r18_l3",     8, 256,  14,  14,  256, 3, 3, 1, 1),
    ConvLayer("r50_1x1",    8, 256,  14,  14, 1024, 1, 1, 1, 0),
    ConvLayer("down_s2",    8, 128,  28,  28,  256, 1, 1, 2, 0),
    ConvLayer("dw_3x3",     8, 256,  28,  28,  256, 3, 3, 1, 1, groups=256),
]}


def _conv(id, x, w, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
    return {"id": id, "x": x, "w": w, "stride": stride, "padding": padding,
            "dilation": dilation, "groups": groups}


# Each case: x shape, w shape, and pairs for stride/padding/dilation. All are
# small enough for the float64 NumPy reference to take a few milliseconds.
AWKWARD = [
    _conv("basic_3x3", (2, 3, 7, 7), (5, 3, 3, 3), padding=(1, 1)),
    _conv("odd_nonsquare", (1, 3, 9, 5), (7, 3, 3, 2)),
    _conv("img_1x1", (2, 4, 1, 1), (13, 4, 1, 1)),
    _conv("img_1x1_k3_pad", (1, 4, 1, 1), (5, 4, 3, 3), padding=(1, 1)),
    _conv("k1x1", (2, 17, 6, 5), (33, 17, 1, 1)),
    _conv("k1x1_s2", (2, 8, 7, 9), (17, 8, 1, 1), stride=(2, 2)),
    _conv("k_eq_input", (2, 5, 5, 4), (7, 5, 5, 4)),
    _conv("k_eq_input_pad", (1, 3, 4, 4), (5, 3, 4, 4), padding=(1, 1)),
    _conv("stride_gt_kernel", (2, 3, 11, 10), (5, 3, 2, 2), stride=(3, 3)),
    _conv("stride3_pad", (1, 4, 13, 12), (7, 4, 3, 3), stride=(3, 3), padding=(1, 1)),
    _conv("stride_asym", (1, 3, 9, 11), (5, 3, 3, 3), stride=(2, 1), padding=(1, 0)),
    _conv("pad_gt_kernel", (1, 2, 5, 5), (3, 2, 3, 3), padding=(3, 2)),
    _conv("dilation2", (2, 3, 10, 9), (5, 3, 3, 3), dilation=(2, 2)),
    _conv("dilation_asym", (1, 4, 11, 12), (7, 4, 3, 2), padding=(2, 1), dilation=(2, 3)),
    _conv("dil_stride_pad", (1, 3, 13, 13), (5, 3, 3, 3), stride=(2, 2), padding=(2, 2),
          dilation=(2, 2)),
    _conv("groups2", (2, 6, 7, 7), (10, 3, 3, 3), groups=2),
    _conv("groups3_1x1", (1, 9, 5, 6), (21, 3, 1, 1), groups=3),
    _conv("groups4_dil", (1, 8, 10, 10), (12, 2, 3, 3), padding=(2, 2), dilation=(2, 2),
          groups=4),
    _conv("depthwise", (2, 8, 9, 9), (8, 1, 3, 3), padding=(1, 1), groups=8),
    _conv("depthwise_mult2_s2", (1, 5, 7, 8), (10, 1, 3, 3), stride=(2, 2), padding=(1, 1),
          groups=5),
    _conv("depthwise_17_k5", (1, 17, 6, 6), (17, 1, 5, 5), padding=(2, 2), groups=17),
    _conv("oc1", (2, 3, 8, 8), (1, 3, 3, 3)),
    _conv("c1_oc13", (3, 1, 8, 7), (13, 1, 3, 3), padding=(1, 1)),
    _conv("c7_oc13", (1, 7, 9, 9), (13, 7, 3, 3), padding=(1, 1)),
    _conv("batch1_c33_oc17", (1, 33, 5, 5), (17, 33, 3, 3), padding=(1, 1)),
    _conv("wide_kernel", (1, 2, 6, 20), (3, 2, 1, 7), padding=(0, 3)),
    _conv("tall_kernel", (1, 2, 20, 6), (3, 2, 7, 1), padding=(3, 0)),
    _conv("k5_s2_p2", (2, 3, 15, 15), (8, 3, 5, 5), stride=(2, 2), padding=(2, 2)),
    _conv("gemm_blocks", (2, 16, 13, 11), (24, 16, 3, 3), padding=(1, 1)),
    _conv("gemm_blocks_c32_oc33", (1, 32, 17, 15), (33, 32, 3, 3), padding=(1, 1)),
]


def _pool(id, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    return {"id": id, "x": x, "kernel_size": kernel_size, "stride": stride,
            "padding": padding, "dilation": dilation, "ceil_mode": ceil_mode}


# PyTorch's conventions: stride None means kernel_size; padding <= kernel_size // 2.
# No case has a window that lies entirely in the padding.
POOL_CASES = [
    _pool("k2", (2, 3, 8, 8), 2),
    _pool("k3_s2_p1", (1, 2, 7, 9), 3, 2, 1),
    _pool("k3_s2_ceil", (2, 3, 7, 7), 3, 2, 0, ceil_mode=True),
    _pool("k2_s2_p1_ceil_lastwin", (1, 4, 9, 8), 2, 2, 1, ceil_mode=True),
    _pool("k3_p1_d2", (1, 3, 10, 11), 3, 1, 1, 2),
    _pool("asym_ceil", (1, 2, 11, 13), (3, 2), (2, 3), (1, 1), (1, 2), ceil_mode=True),
    _pool("img_1x1", (1, 1, 1, 1), 1),
    _pool("k_eq_input", (2, 2, 5, 5), 5),
    _pool("stride_gt_kernel", (1, 3, 6, 6), 2, 3),
    _pool("rect_kernel", (1, 2, 13, 7), (2, 3), (1, 2), (0, 1)),
    _pool("k3_s3_p1_ceil", (3, 5, 9, 9), 3, 3, 1, ceil_mode=True),
    _pool("resnet_c17", (1, 17, 15, 15), 3, 2, 1),
    _pool("k4_s2_p2_ceil", (1, 2, 5, 6), 4, 2, 2, ceil_mode=True),
    _pool("k3_s2_p1_d2_ceil", (1, 1, 8, 8), 3, 2, 1, 2, ceil_mode=True),
]
