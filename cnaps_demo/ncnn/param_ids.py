"""What ncnn's numbered layer parameters mean (ids from ncnn's docs/developer-guide/operators.md).

One class per layer type, used only as a namespace, so code reads ``layer.get(Convolution.KERNEL_W)``
rather than ``layer.get(1)``. Only the ids this reader uses are listed, plus the enumerated values
some of them take (op types, activation types). Pure constants: no imports.
"""

from __future__ import annotations


class _WeightedConv:
    """The ids the four convolution types share."""

    NUM_OUTPUT = 0
    KERNEL_W = 1
    DILATION_W = 2
    STRIDE_W = 3
    PAD_LEFT = 4
    BIAS_TERM = 5
    WEIGHT_DATA_SIZE = 6
    GROUP = 7  # the DepthWise variants only
    # Documented for Convolution only; the reader checks it on all four to refuse int8 weights.
    INT8_SCALE_TERM = 8
    ACTIVATION_TYPE = 9
    ACTIVATION_PARAMS = 10
    KERNEL_H = 11
    DILATION_H = 12
    STRIDE_H = 13
    PAD_TOP = 14
    PAD_RIGHT = 15
    PAD_BOTTOM = 16


class Convolution(_WeightedConv):
    """Convolution and ConvolutionDepthWise."""

    PAD_VALUE = 18


class Deconvolution(_WeightedConv):
    """Deconvolution and DeconvolutionDepthWise."""

    OUTPUT_PAD_RIGHT = 18
    OUTPUT_PAD_BOTTOM = 19
    OUTPUT_W = 20
    OUTPUT_H = 21


class InnerProduct:
    NUM_OUTPUT = 0
    BIAS_TERM = 1
    WEIGHT_DATA_SIZE = 2
    INT8_SCALE_TERM = 8
    ACTIVATION_TYPE = 9
    ACTIVATION_PARAMS = 10


class Activation:
    """Values of the fused ``ACTIVATION_TYPE`` of the weighted layers."""

    NONE = 0
    RELU = 1
    LEAKY_RELU = 2
    CLIP = 3
    SIGMOID = 4
    MISH = 5
    HARDSWISH = 6


class Pooling:
    POOLING_TYPE = 0
    KERNEL_W = 1
    STRIDE_W = 2
    PAD_LEFT = 3
    GLOBAL_POOLING = 4
    PAD_MODE = 5
    ADAPTIVE_POOLING = 7
    KERNEL_H = 11
    STRIDE_H = 12
    PAD_TOP = 13
    PAD_RIGHT = 14
    PAD_BOTTOM = 15

    # POOLING_TYPE values
    MAX = 0
    AVG = 1
    # PAD_MODE value: use the explicit pads as they are
    PAD_VALID = 1


class BinaryOp:
    OP_TYPE = 0
    WITH_SCALAR = 1
    B = 2  # the scalar operand

    # OP_TYPE values (R* = the operands swapped)
    ADD = 0
    SUB = 1
    MUL = 2
    DIV = 3
    MAX = 4
    MIN = 5
    POW = 6
    RSUB = 7
    RDIV = 8
    RPOW = 9
    ATAN2 = 10
    RATAN2 = 11


class Eltwise:
    OP_TYPE = 0
    COEFFS = 1

    # OP_TYPE values
    PROD = 0
    SUM = 1
    MAX = 2


class Crop:
    WOFFSET = 0
    HOFFSET = 1
    COFFSET = 2
    OUTW = 3
    OUTH = 4
    OUTC = 5
    WOFFSET2 = 6
    HOFFSET2 = 7
    COFFSET2 = 8
    STARTS = 9  # numpy-style slice; when given, the offsets above are ignored
    ENDS = 10
    AXES = 11

    END_OF_AXIS = -233  # an ENDS value meaning "to the end"


class Concat:
    AXIS = 0


class Interp:
    RESIZE_TYPE = 0
    HEIGHT_SCALE = 1
    WIDTH_SCALE = 2
    OUTPUT_HEIGHT = 3
    OUTPUT_WIDTH = 4
    DYNAMIC_TARGET_SIZE = 5
    ALIGN_CORNER = 6

    # RESIZE_TYPE values
    NEAREST = 1
    BILINEAR = 2
    BICUBIC = 3


class PReLU:
    NUM_SLOPE = 0


class PixelShuffle:
    UPSCALE_FACTOR = 0
    MODE = 1


class ReLU:
    SLOPE = 0


class Clip:
    MIN = 0
    MAX = 1
