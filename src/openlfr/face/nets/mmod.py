"""The MMOD face detector's network, built from dlib's weights for ONNX Runtime and PyTorch.

The network (``tools/python/src/cnn_face_detector.cpp``)::

    loss_mmod<con<1,9,9,1,1, rcon5<rcon5<rcon5<downsampler<input_rgb_image_pyramid<...>>>>>>>>
    downsampler = relu<affine<con5d<32, relu<affine<con5d<32, relu<affine<con5d<16,...>>>>>>>>>
    con5d = 5x5 stride 2, no padding;  rcon5 = relu<affine<con5<45>>>, 5x5 stride 1, padding 2

is a plain chain of convolutions, each but the last followed by a per-channel affine
(folded here into the convolution's weights and bias) and a ReLU. Its input is the tiled
pyramid image (``(N, 3, H, W)`` float32, already normalised); its output the ``(N, K, h, w)``
detection scores, one channel per detector window.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from openlfr.errors import ModelError
from openlfr.face.mmod_detector import (
    DEFAULT_MEANS,
    MMODDecoding,
    PyramidLayout,
    tiled_pyramid,
)

ONNX_NAME = "mmod_human_face_detector"
ONNX_VERSION = 2  # bump when the graph built here changes


@dataclass(frozen=True)
class ConvSpec:
    """One convolution with its affine folded in; ``relu`` if a ReLU follows it."""

    weight: np.ndarray  # (out, in, kh, kw) float32
    bias: np.ndarray  # (out,) float32
    stride: tuple[int, int]  # (y, x)
    padding: tuple[int, int]  # (y, x)
    relu: bool


@dataclass(frozen=True)
class MMODSpec:
    """Everything needed to run the detector: the layers, input means and decoding."""

    convs: tuple[ConvSpec, ...]
    means: tuple[float, float, float]
    decoding: MMODDecoding
    source: str = ""  # the .dat file it was read from (names the ONNX cache entry)

    @property
    def min_input(self) -> int:
        """The smallest input side that still gives a 1x1 output."""
        size = 1
        for conv in reversed(self.convs):
            k = conv.weight.shape[2]
            size = (size - 1) * conv.stride[0] + k - 2 * conv.padding[0]
        return size


def fold_affine(weight: np.ndarray, bias: np.ndarray, gamma: np.ndarray,
                beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``affine(con(x)) = gamma * (W x + b) + beta`` as one convolution."""
    g = gamma.reshape(-1).astype(np.float64)
    w = weight.astype(np.float64) * g[:, None, None, None]
    b = bias.reshape(-1).astype(np.float64) * g + beta.reshape(-1).astype(np.float64)
    return w.astype(np.float32), b.astype(np.float32)


def output_to_input(convs: Sequence[ConvSpec]) -> tuple[float, float]:
    """dlib's ``output_tensor_to_input_tensor`` as ``p_in = p_out * stride + offset``.

    Each convolution maps ``p -> p * stride - padding + kernel // 2``.
    """
    stride, offset = 1.0, 0.0
    for conv in convs:  # input side first: compose outer(inner(p))
        k = conv.weight.shape[3]
        s, pad = conv.stride[1], conv.padding[1]
        # p_in_of_this = p_out * s - pad + k//2; the running map applies to that result
        offset = offset + stride * (-pad + k // 2)
        stride = stride * s
    return stride, offset


# ----------------------------------------------------------------------------- loading


def spec_from_parsed(net: Any) -> MMODSpec:
    """Turn :func:`openlfr.face.dlib_dnn.read_dnn`'s parse of the model into an
    :class:`MMODSpec`: a chain of ``con`` [``affine``] [``relu``] layers, affines folded."""
    layers = net.layers
    inp, loss = layers[0], layers[-1]
    if inp.kind != "input_rgb_image_pyramid" or loss.kind != "loss_mmod":
        raise ModelError(f"{net.source}: not an MMOD detector (input {inp.kind}, loss {loss.kind})")
    opts = loss.params
    if opts.get("use_bounding_box_regression"):
        raise ModelError(f"{net.source}: bounding-box regression is not supported")
    convs: list[ConvSpec] = []
    for layer in layers[1:-1]:
        p = layer.params
        if layer.kind == "con":
            bias = p["bias"] if p["bias"] is not None else np.zeros(p["num_filters"], np.float32)
            convs.append(ConvSpec(p["weights"], bias, tuple(p["stride"]), tuple(p["padding"]), bool(p["fused_relu"])))
        elif layer.kind == "affine" and convs and p["mode"] == "conv" and not convs[-1].relu:
            if not p.get("disabled"):
                last = convs[-1]
                w, b = fold_affine(last.weight, last.bias, p["gamma"], p["beta"])
                convs[-1] = ConvSpec(w, b, last.stride, last.padding, last.relu)
        elif layer.kind == "relu" and convs:
            last = convs[-1]
            convs[-1] = ConvSpec(last.weight, last.bias, last.stride, last.padding, True)
        else:
            raise ModelError(f"{net.source}: unexpected layer {layer.kind} in an MMOD network")
    stride, offset = output_to_input(convs)
    windows = tuple((float(w), float(h)) for w, h, _ in opts["detector_windows"])
    if len(windows) != convs[-1].weight.shape[0]:
        raise ModelError(f"{net.source}: {len(windows)} detector windows for {convs[-1].weight.shape[0]} outputs")
    iou, covered = opts["overlaps_nms"]
    decoding = MMODDecoding(
        windows=windows,
        stride=stride,
        offset=offset,
        iou_thresh=float(iou),
        covered_thresh=float(covered),
        pyramid_n=int(inp.params.get("pyramid_down", 6)),
    )
    if (inp.params.get("pyramid_padding"), inp.params.get("pyramid_outer_padding")) != (10, 11):
        raise ModelError(f"{net.source}: only pyramid paddings 10/11 are supported")
    means = tuple(float(m) for m in inp.params["mean"])
    return MMODSpec(tuple(convs), means, decoding, str(net.source))  # type: ignore[arg-type]


@lru_cache(maxsize=2)
def load_spec(path: str | None = None) -> MMODSpec:
    """Read ``mmod_human_face_detector.dat`` (the bundled copy by default)."""
    from openlfr.face import dlib_dnn
    from openlfr.face.model_files import MMOD, model_path

    return spec_from_parsed(dlib_dnn.read_dnn(path or str(model_path(MMOD))))


# ----------------------------------------------------------------------------- ONNX


def pad_channels(convs: Sequence[ConvSpec], multiple: int) -> list[ConvSpec]:
    """Zero filters (and matching zero input weights downstream) so that every layer but the
    last has a multiple of ``multiple`` channels; results are unchanged.

    ONNX Runtime's fast blocked (NCHWc) convolutions on x86 need channel counts that are
    multiples of 8; the 45-channel layers otherwise fall back to a much slower path.
    """
    out: list[ConvSpec] = []
    extra_in = 0
    for i, conv in enumerate(convs):
        w, b = conv.weight, conv.bias
        if extra_in:
            w = np.concatenate([w, np.zeros((w.shape[0], extra_in, *w.shape[2:]), np.float32)], axis=1)
        extra = (-w.shape[0]) % multiple if i < len(convs) - 1 else 0
        if extra:
            w = np.concatenate([w, np.zeros((extra, *w.shape[1:]), np.float32)], axis=0)
            b = np.concatenate([b, np.zeros(extra, np.float32)])
        extra_in = extra
        out.append(ConvSpec(w, b, conv.stride, conv.padding, conv.relu))
    return out


def build_onnx(spec: MMODSpec, channel_multiple: int = 8, split_last: bool = True) -> bytes:
    """The network as a serialised ONNX model: input ``image`` ``(N, 3, H, W)``, output
    ``scores`` ``(N, K, h, w)``, dynamic batch and size.

    Two rewrites keep ONNX Runtime on its fast convolutions without changing the function:
    channels padded to ``channel_multiple`` (:func:`pad_channels`), and, with
    ``split_last``, the final ``K``-output ``kh x kw`` convolution computed as a 1x1
    convolution to ``K*kh*kw`` planes followed by the sum of those planes, each shifted by
    its kernel offset (a one-output 9x9 convolution is otherwise the slowest layer).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    convs = pad_channels(spec.convs, channel_multiple) if channel_multiple > 1 else list(spec.convs)
    last = convs[-1]
    split = split_last and last.stride == (1, 1) and not last.relu
    nodes: list[onnx.NodeProto] = []
    inits = []

    def init(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def conv_node(x: str, w: np.ndarray, b: np.ndarray, stride: Sequence[int], pad: Sequence[int], y: str) -> str:
        i = len(nodes)
        kh, kw = w.shape[2:]
        nodes.append(
            helper.make_node(
                "Conv",
                [x, init(f"w{i}", w.astype(np.float32)), init(f"b{i}", b.astype(np.float32))],
                [y],
                kernel_shape=[kh, kw],
                strides=list(stride),
                pads=[pad[0], pad[1], pad[0], pad[1]],
            )
        )
        return y

    x = "image"
    body = convs[:-1] if split else convs
    for i, conv in enumerate(body):
        x = conv_node(x, conv.weight, conv.bias, conv.stride, conv.padding, f"conv{i}")
        if conv.relu:
            nodes.append(helper.make_node("Relu", [x], [f"relu{i}"]))
            x = f"relu{i}"
    k = spec.convs[-1].weight.shape[0]
    if not split:
        nodes[-1].output[0] = "scores"
    else:
        kk, c, kh, kw = last.weight.shape
        py, px = last.padding
        # planes[o*kh*kw + dy*kw + dx] = sum_c w[o, c, dy, dx] * x[c]
        w1 = last.weight.transpose(0, 2, 3, 1).reshape(kk * kh * kw, c, 1, 1)
        n_planes = w1.shape[0]
        extra = (-n_planes) % max(channel_multiple, 1)
        if extra:
            w1 = np.concatenate([w1, np.zeros((extra, c, 1, 1), np.float32)])
        planes = conv_node(x, w1, np.zeros(w1.shape[0], np.float32), (1, 1), (0, 0), "planes")
        nodes.append(
            helper.make_node(
                "Pad", [planes, init("plane_pads", np.array([0, 0, py, px, 0, 0, py, px], np.int64))], ["planes_padded"]
            )
        )
        big = np.iinfo(np.int64).max
        outs = []
        for o in range(kk):
            acc = ""
            for dy in range(kh):
                for dx in range(kw):
                    ch = o * kh * kw + dy * kw + dx
                    end_y = dy - (kh - 1) if dy < kh - 1 else big
                    end_x = dx - (kw - 1) if dx < kw - 1 else big
                    name = f"shift{ch}"
                    nodes.append(
                        helper.make_node(
                            "Slice",
                            [
                                "planes_padded",
                                init(f"{name}_s", np.array([ch, dy, dx], np.int64)),
                                init(f"{name}_e", np.array([ch + 1, end_y, end_x], np.int64)),
                                init(f"{name}_a", np.array([1, 2, 3], np.int64)),
                            ],
                            [name],
                        )
                    )
                    if acc:
                        nodes.append(helper.make_node("Add", [acc, name], [f"{name}_sum"]))
                        acc = f"{name}_sum"
                    else:
                        acc = name
            out = f"score{o}" if kk > 1 else "scores_nobias"
            nodes.append(helper.make_node("Identity", [acc], [out]))
            outs.append(out)
        if kk > 1:
            nodes.append(helper.make_node("Concat", outs, ["scores_nobias"], axis=1))
        bias = init("last_bias", last.bias.reshape(1, kk, 1, 1).astype(np.float32))
        nodes.append(helper.make_node("Add", ["scores_nobias", bias], ["scores"]))
    graph = helper.make_graph(
        nodes,
        "mmod",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", k, "h", "w"])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="openlfr")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


class OnnxMMOD:
    """Runs the network on ONNX Runtime (CPU)."""

    def __init__(self, spec: MMODSpec, threads: int | None = None) -> None:
        from openlfr.face import onnx_runtime

        self.spec = spec
        path = onnx_runtime.cached_model(
            ONNX_NAME, lambda: build_onnx(spec), source=spec.source or None, version=ONNX_VERSION
        )
        self.session = onnx_runtime.make_session(path, backend="cpu", threads=threads)

    def fits(self, height: int, width: int) -> bool:
        return min(height, width) >= self.spec.min_input

    def run_tensor(self, batch: np.ndarray) -> np.ndarray:
        """``(N, 3, H, W)`` float32 -> ``(N, K, h, w)`` scores."""
        return self.session.run(["scores"], {"image": np.ascontiguousarray(batch, dtype=np.float32)})[0]

    def run_images(self, images: Sequence[np.ndarray], layout: PyramidLayout, means: Sequence[float]) -> np.ndarray:
        """Pyramid (numpy) then network, for same-size RGB images."""
        batch = np.stack([tiled_pyramid(img, layout, means)[0] for img in images])
        return self.run_tensor(batch)


# ----------------------------------------------------------------------------- PyTorch


def torch_module(spec: MMODSpec) -> Any:
    """The network as a ``torch.nn.Sequential`` (torch is imported here, lazily)."""
    import torch
    from torch import nn

    layers: list[Any] = []
    for conv in spec.convs:
        o, i, kh, kw = conv.weight.shape
        c = nn.Conv2d(i, o, (kh, kw), stride=conv.stride, padding=conv.padding, bias=True)
        with torch.no_grad():
            c.weight.copy_(torch.from_numpy(conv.weight))
            c.bias.copy_(torch.from_numpy(conv.bias))
        layers.append(c)
        if conv.relu:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers).eval()


class TorchMMOD:
    """Runs the pyramid and the network with PyTorch (GPU, or CPU for tests).

    The pyramid levels are built on the device with corner-aligned bilinear resizing
    (``F.interpolate(..., align_corners=True)``), the same arithmetic as dlib's float pyramid.
    ``precision``: ``"fp32"`` (exact float32 convolutions: turns cuDNN's TF32 off, a global
    PyTorch setting), ``"tf32"`` (TF32 allowed) or ``"fp16"`` (half-precision network).
    ``channels_last`` runs the network in NHWC memory format (often faster for fp16 on
    tensor cores; the same function, cuDNN may pick other kernels); ``channel_multiple``
    pads the hidden layers with zero filters to a multiple of that many channels
    (:func:`pad_channels`: the same function; tensor-core kernels like multiples of 8).

    :meth:`iter_candidates` is the fast end-to-end path: frames go up through reusable
    pinned host buffers, the scores are thresholded on the device and only the positions
    above the threshold come back; batches are cut into ``chunk``-frame pieces so that the
    host copies and decoding of one piece overlap the device's work on the previous one.
    """

    # candidate rows fetched per image without a second look; more fall back to an exact
    # (synchronous) ``nonzero`` for that chunk
    CANDIDATES_PER_IMAGE = 4096

    def __init__(
        self,
        spec: MMODSpec,
        device: str = "cuda",
        precision: str = "fp32",
        chunk: int = 4,
        channels_last: bool = False,
        channel_multiple: int = 1,
    ) -> None:
        import dataclasses

        import torch

        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ModelError("the cuda backend needs PyTorch with a CUDA GPU; none is available")
        if precision not in ("fp32", "tf32", "fp16"):
            raise ModelError(f"unknown precision {precision!r} (fp32, tf32 or fp16)")
        if chunk < 1:
            raise ModelError("chunk must be 1 or more")
        self.spec = spec
        self.device = torch.device(device)
        self.precision = precision
        self.chunk = int(chunk)
        self.channels_last = bool(channels_last)
        net_spec = spec
        if channel_multiple > 1:
            net_spec = dataclasses.replace(spec, convs=tuple(pad_channels(spec.convs, channel_multiple)))
        self.module = torch_module(net_spec).to(self.device)
        if precision == "fp16":
            self.module = self.module.half()
        if self.channels_last:
            self.module = self.module.to(memory_format=torch.channels_last)
        self._cuda = self.device.type == "cuda"
        if self._cuda:
            torch.backends.cudnn.benchmark = True
            torch.backends.cudnn.allow_tf32 = precision == "tf32"
        self._mean = torch.tensor(spec.means, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self._slots: list[_Slot] = [_Slot(), _Slot()]  # ring of pinned staging buffers
        self._has_nonzero_static = hasattr(torch, "nonzero_static")

    def fits(self, height: int, width: int) -> bool:
        return min(height, width) >= self.spec.min_input

    def pyramid(self, images: Any, layout: PyramidLayout) -> Any:
        """``(N, H, W, 3)`` uint8 tensor on the device -> ``(N, 3, NR, NC)`` float32 tiled pyramid."""
        import torch
        import torch.nn.functional as F

        x = images.permute(0, 3, 1, 2).float()
        out = torch.zeros((x.shape[0], 3, layout.height, layout.width), dtype=torch.float32, device=self.device)
        l, t, r, b = (int(v) for v in layout.rects[0])
        # (pixel - mean) / 256 in float32 as dlib does (dividing by 256 is exact)
        level = (x - self._mean) * (1.0 / 256.0)
        out[:, :, t : b + 1, l : r + 1] = level
        for rect in layout.rects[1:]:
            l, t, r, b = (int(v) for v in rect)
            level = F.interpolate(level, size=(b - t + 1, r - l + 1), mode="bilinear", align_corners=True)
            out[:, :, t : b + 1, l : r + 1] = level
        return out

    def run_tensor(self, batch: Any) -> Any:
        """``(N, 3, H, W)`` float32 tensor on the device -> ``(N, K, h, w)`` float32 scores."""
        import torch

        with torch.inference_mode():
            if self.precision == "fp16":
                batch = batch.half()
            if self.channels_last:
                batch = batch.contiguous(memory_format=torch.channels_last)
            return self.module(batch).float().contiguous()

    def run_images(self, images: Sequence[np.ndarray], layout: PyramidLayout, means: Sequence[float]) -> np.ndarray:
        """Upload same-size RGB images, build their pyramids and run the network: the whole
        ``(N, K, h, w)`` score map (the simple path; :meth:`iter_candidates` is faster)."""
        import torch

        with torch.inference_mode():
            t = torch.from_numpy(np.stack(images)).to(self.device, non_blocking=True)
            return self.run_tensor(self.pyramid(t, layout)).cpu().numpy()

    # -- the pipelined path ---------------------------------------------------------

    def iter_candidates(
        self, images: Sequence[np.ndarray], layout: PyramidLayout, threshold: float
    ) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """For same-size RGB ``uint8`` images, yield ``(i, k, rows, cols, scores)`` per image
        (in order): the output positions whose float32 score is ``> threshold``, in the score
        map's row-major order, exactly the entries ``np.nonzero(scores > threshold)`` of the
        whole map would give. Chunk ``c + 1`` is submitted before chunk ``c`` is collected,
        so the caller's work between items overlaps the device's."""
        import torch

        n = len(images)
        lo = _threshold_below(threshold)
        pending: list[_Pending] = []
        for c, start in enumerate(range(0, n, self.chunk)):
            # two chunks in flight at most, each with its own staging slot; inference mode
            # only around torch work, not across the yields to the caller
            with torch.inference_mode():
                pending.append(self._submit(images, start, min(start + self.chunk, n), layout, lo, c % 2))
            if len(pending) > 1:
                yield from self._collect(pending.pop(0), threshold)
        while pending:
            yield from self._collect(pending.pop(0), threshold)

    def _submit(self, images: Sequence[np.ndarray], start: int, stop: int, layout: PyramidLayout, lo: float,
                slot_i: int) -> _Pending:
        """Upload frames ``start:stop``, queue pyramid, network and thresholding (no sync)."""
        import torch

        count = stop - start
        h, w = images[start].shape[:2]
        slot = self._slots[slot_i]
        if self._cuda:
            slot.wait()  # its previous transfers have finished before it is overwritten
            host = slot.frames(count, h, w)
            dev = torch.empty((count, h, w, 3), dtype=torch.uint8, device=self.device)
            for j in range(count):
                # copy straight into page-locked memory (torch copies with its threads),
                # then let the DMA run while the next frame is copied
                host[j].copy_(torch.from_numpy(np.ascontiguousarray(images[start + j])))
                dev[j].copy_(host[j], non_blocking=True)
        else:
            dev = torch.from_numpy(np.stack(images[start:stop]))
        scores = self.run_tensor(self.pyramid(dev, layout))
        mask = scores >= lo  # a superset of "> threshold"; the host applies the exact test
        cap = count * self.CANDIDATES_PER_IMAGE
        idx = None
        if self._has_nonzero_static:
            try:
                idx = torch.nonzero_static(mask, size=cap, fill_value=0)
            except (NotImplementedError, RuntimeError):
                self._has_nonzero_static = False  # older torch: fall back to nonzero
        if idx is None:
            idx = torch.nonzero(mask)  # synchronises; exact
            total = torch.tensor([idx.shape[0]], dtype=torch.int64)
            vals = scores[mask]
            return _Pending(start, count, idx.cpu(), vals.cpu(), total, None, None, None)
        total = mask.sum().view(1)
        vals = scores[idx[:, 0], idx[:, 1], idx[:, 2], idx[:, 3]]
        if self._cuda:
            h_idx, h_vals, h_total = slot.results(cap)
            h_idx.copy_(idx, non_blocking=True)
            h_vals.copy_(vals, non_blocking=True)
            h_total.copy_(total, non_blocking=True)
            slot.record(self.device)
            idx, vals, total = h_idx, h_vals, h_total
        return _Pending(start, count, idx, vals, total, slot if self._cuda else None, scores, mask)

    def _collect(self, p: _Pending,
                 threshold: float) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """Wait for a submitted chunk and split its candidates per image."""
        import torch

        if p.slot is not None:
            p.slot.wait()
        total = int(p.total[0])
        if total > p.idx.shape[0]:  # more candidates than fetched: take them all, exactly
            with torch.inference_mode():
                idx = torch.nonzero(p.mask).cpu().numpy()
                vals = p.scores[p.mask].cpu().numpy()
        else:
            idx = p.idx[:total].numpy().copy()
            vals = p.vals[:total].numpy().copy()
        keep = vals > threshold  # numpy's float32 comparison, as decode_output makes it
        idx, vals = idx[keep], vals[keep]
        bounds = np.searchsorted(idx[:, 0], np.arange(p.count + 1))
        for j in range(p.count):
            a, b = bounds[j], bounds[j + 1]
            yield p.start + j, idx[a:b, 1], idx[a:b, 2], idx[a:b, 3], vals[a:b]


def _threshold_below(threshold: float) -> float:
    """The largest float32 value ``<=`` ``threshold``: ``score >= it`` on the device keeps
    every float32 score that is ``> threshold`` however the comparison is rounded."""
    lo = np.float32(threshold)
    if float(lo) > threshold:
        lo = np.nextafter(lo, np.float32(-np.inf))
    return float(lo)


class _Slot:
    """Reusable page-locked host buffers for one chunk in flight, and the CUDA event
    recorded after its last transfer."""

    def __init__(self) -> None:
        self._frames: Any = None
        self._results: Any = None
        self._event: Any = None

    def frames(self, n: int, h: int, w: int) -> Any:
        import torch

        need = n * h * w * 3
        if self._frames is None or self._frames.numel() < need:
            self._frames = torch.empty(need, dtype=torch.uint8, pin_memory=True)
        return self._frames[:need].view(n, h, w, 3)

    def results(self, cap: int) -> tuple[Any, Any, Any]:
        import torch

        if self._results is None or self._results[1].numel() < cap:
            self._results = (
                torch.empty((cap, 4), dtype=torch.int64, pin_memory=True),
                torch.empty(cap, dtype=torch.float32, pin_memory=True),
                torch.empty(1, dtype=torch.int64, pin_memory=True),
            )
        i, v, t = self._results
        return i[:cap], v[:cap], t

    def record(self, device: Any) -> None:
        import torch

        self._event = torch.cuda.Event()
        self._event.record(torch.cuda.current_stream(device))

    def wait(self) -> None:
        if self._event is not None:
            self._event.synchronize()


@dataclass
class _Pending:
    """A submitted chunk: candidate rows (host, or pinned and in flight) and what an exact
    fallback needs."""

    start: int
    count: int
    idx: Any  # (cap, 4) int64: image, channel, row, column
    vals: Any  # (cap,) float32
    total: Any  # (1,) int64: rows that really are candidates
    slot: _Slot | None
    scores: Any
    mask: Any


__all__ = [
    "ConvSpec",
    "MMODSpec",
    "fold_affine",
    "output_to_input",
    "load_spec",
    "spec_from_parsed",
    "build_onnx",
    "pad_channels",
    "OnnxMMOD",
    "TorchMMOD",
    "torch_module",
    "DEFAULT_MEANS",
]
