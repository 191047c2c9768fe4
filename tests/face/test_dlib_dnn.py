"""The dlib DNN file parser: the bundled networks, a hand-made one, and broken files."""

from __future__ import annotations

import math

import numpy as np
import pytest

from openlfr.errors import ModelError
from openlfr.face.dlib_dnn import (
    MMOD_HUMAN_FACE_NET_TYPE,
    RESNET_NET_TYPE,
    infer_shapes,
    parse_dnn,
    parse_net_type,
    read_dnn,
)
from openlfr.face.model_files import MMOD, RESNET, model_path


# ----------------------------------------------------------------------------- a tiny writer
# Enough of dlib's serialisation format to write small networks by hand.


def w_int(v: int) -> bytes:
    mag = abs(v)
    body = mag.to_bytes(max(1, (mag.bit_length() + 7) // 8), "little")
    return bytes([len(body) | (0x80 if v < 0 else 0)]) + body


def w_float(x: float) -> bytes:
    if x == 0:
        return w_int(0) + w_int(0)
    m, e = math.frexp(x)
    return w_int(int(m * (1 << 53))) + w_int(e - 53)


def w_str(s: str) -> bytes:
    return w_int(len(s)) + s.encode()


def w_bool(b: bool) -> bytes:
    return b"1" if b else b"0"


def w_tensor(a: np.ndarray | None = None, shape: tuple[int, ...] | None = None) -> bytes:
    a = np.zeros(0, np.float32) if a is None else np.asarray(a, np.float32)
    shape = shape or ((a.size, 1, 1, 1) if a.size else (0, 0, 0, 0))
    return w_int(2) + b"".join(w_int(d) for d in shape) + a.astype("<f4").tobytes()


def w_alias(*dims: int) -> bytes:
    dims = tuple(dims) + (1,) * (4 - len(dims))
    return w_int(1) + b"".join(w_int(d) for d in dims)


def w_state(input_below: bool) -> bytes:
    """The training state stored after each add_layer's details."""
    out = w_bool(True) + w_bool(True) + w_bool(False) + w_tensor() * 3
    return out + (w_int(1) if input_below else b"")


def w_con(weights: np.ndarray, bias: np.ndarray, stride: int, pad: int) -> bytes:
    o, i, kh, kw = weights.shape
    params = np.concatenate([weights.ravel(), bias])
    return (w_str("con_4") + w_tensor(params) + w_int(o) + w_int(kh) + w_int(kw)
            + w_int(stride) * 2 + w_int(pad) * 2 + w_alias(o, i, kh, kw) + w_alias(1, o)
            + w_float(1) + w_float(1) + w_float(1) + w_float(0))


def w_affine(gamma: np.ndarray, beta: np.ndarray) -> bytes:
    n = len(gamma)
    return (w_str("affine_") + w_tensor(np.concatenate([gamma, beta])) + w_alias(1, n)
            + w_alias(1, n) + w_int(0))


def w_fc(weights: np.ndarray, bias: np.ndarray) -> bytes:
    n_in, n_out = weights.shape
    return (w_str("fc_2") + w_int(n_out) + w_int(n_in)
            + w_tensor(np.concatenate([weights.ravel(), bias])) + w_alias(n_in, n_out)
            + w_alias(1, n_out) + w_int(0) + w_float(1) * 3 + w_float(0))


TINY_TYPE = (
    "loss_metric<fc<3,avg_pool_everything<relu<add_prev1<affine<con<2,3,3,1,1,"
    "tag1<con<2,3,3,2,2,input_rgb_image_sized<9>>>>>>>>>>"
)
TINY_MEAN = (120.0, 110.0, 100.0)


def tiny_network(seed: int = 0) -> tuple[bytes, dict[str, np.ndarray]]:
    """A small residual network in dlib's format, and its weights."""
    rng = np.random.default_rng(seed)
    wts = {
        "w1": rng.normal(size=(2, 3, 3, 3)).astype(np.float32),
        "b1": rng.normal(size=2).astype(np.float32),
        "w2": rng.normal(size=(2, 2, 3, 3)).astype(np.float32),
        "b2": rng.normal(size=2).astype(np.float32),
        "g": rng.uniform(0.5, 2, size=2).astype(np.float32),
        "beta": rng.normal(size=2).astype(np.float32),
        "fw": rng.normal(size=(2, 3)).astype(np.float32),
        "fb": rng.normal(size=3).astype(np.float32),
    }
    input_layer = w_str("input_rgb_image_sized") + b"".join(w_float(m) for m in TINY_MEAN) + w_int(9) + w_int(9)
    # Serialised outermost first; an add_layer writes its subnet before its own details.
    data = (
        w_int(1) + w_str("loss_metric_2") + w_float(0.04) + w_float(0.6)  # loss
        + w_int(2)  # fc
        + w_int(2)  # avg_pool_everything
        + w_int(2)  # relu
        + w_int(2)  # add_prev1
        + w_int(2)  # affine
        + w_int(2)  # con 1x1 stride
        + w_int(1)  # tag1
        + w_int(3) + input_layer + w_con(wts["w1"], wts["b1"], 2, 0) + w_state(True)
        + w_con(wts["w2"], wts["b2"], 1, 1) + w_state(False)
        + w_affine(wts["g"], wts["beta"]) + w_state(False)
        + w_str("add_prev_") + w_state(False)
        + w_str("relu_") + w_state(False)
        + w_str("avg_pool_2") + w_int(0) * 2 + w_int(1) * 2 + w_int(0) * 2 + w_state(False)
        + w_fc(wts["fw"], wts["fb"]) + w_state(False)
    )
    return data, wts


def conv_ref(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, pad: int) -> np.ndarray:
    """Plain cross-correlation, (C,H,W) -> (O,h,w)."""
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    o, _, kh, kw = w.shape
    h = 1 + (x.shape[1] - kh) // stride
    wd = 1 + (x.shape[2] - kw) // stride
    out = np.zeros((o, h, wd), np.float64)
    for r in range(h):
        for c in range(wd):
            patch = x[:, r * stride : r * stride + kh, c * stride : c * stride + kw]
            out[:, r, c] = (w * patch).sum(axis=(1, 2, 3)) + b
    return out


def tiny_reference(img: np.ndarray, wts: dict[str, np.ndarray]) -> np.ndarray:
    """What dlib computes for the tiny network on one (9, 9, 3) uint8 image."""
    x = (img.astype(np.float64) - np.array(TINY_MEAN)).transpose(2, 0, 1) / 256.0
    t = conv_ref(x, wts["w1"], wts["b1"], 2, 0)  # 4x4
    y = conv_ref(t, wts["w2"], wts["b2"], 1, 1)
    y = y * wts["g"][:, None, None] + wts["beta"][:, None, None]
    y = np.maximum(y + t, 0)
    return y.mean(axis=(1, 2)) @ wts["fw"] + wts["fb"]


# ----------------------------------------------------------------------------- bundled files


def test_resnet_file_parses_completely() -> None:
    net = read_dnn(model_path(RESNET))  # raises if any byte is left over
    kinds = [layer.kind for layer in net.layers]
    assert len(net.layers) == 132
    assert kinds.count("con") == 29 and kinds.count("affine") == 29 and kinds.count("relu") == 29
    assert kinds.count("add_prev") == 14 and kinds.count("skip") == 4 and kinds.count("avg_pool") == 5
    assert net.input.kind == "input_rgb_image_sized"
    assert net.input.params["size"] == (150, 150)
    assert net.input.params["mean"] == pytest.approx((122.782, 117.001, 104.298), abs=1e-4)
    assert net.loss.kind == "loss_metric"
    assert net.loss.params["distance_threshold"] == pytest.approx(0.6)
    first = net.of_kind("con")[0].params
    assert first["weights"].shape == (32, 3, 7, 7) and first["stride"] == (2, 2)
    assert first["padding"] == (0, 0)  # dlib: no padding when the stride is not 1
    assert net.of_kind("con")[1].params["padding"] == (1, 1)
    fc = net.of_kind("fc")[0].params
    assert fc["weights"].shape == (256, 128) and fc["bias"] is None
    for layer in net.of_kind("affine"):
        assert np.isfinite(layer.params["gamma"]).all() and not layer.params["from_batchnorm"]


def test_resnet_residual_links_and_shapes() -> None:
    net = read_dnn(model_path(RESNET), RESNET_NET_TYPE)
    shapes = infer_shapes(net, 150, 150)
    assert shapes[net.of_kind("max_pool")[0].index] == (32, 35, 35)
    assert shapes[-2] == (128, 1, 1)
    for layer in net.of_kind("add_prev"):
        tag = net.layers[layer.inputs[1]]
        assert tag.kind == "tag" and tag.params["tag"] == layer.params["tag"]
    for layer in net.of_kind("skip"):
        assert net.layers[layer.inputs[0]].params["tag"] == 1
    # The last two down-sampling blocks add tensors of different sizes (dlib zero-fills).
    mixed = [l for l in net.of_kind("add_prev") if shapes[l.inputs[0]] != shapes[l.inputs[1]]]
    assert [(shapes[l.inputs[0]], shapes[l.inputs[1]]) for l in mixed][-2:] == [
        ((128, 4, 4), (256, 3, 3)), ((256, 2, 2), (256, 1, 1))]


def test_mmod_file_parses_completely() -> None:
    net = read_dnn(model_path(MMOD))
    assert [l.kind for l in net.layers].count("con") == 7
    affines = net.of_kind("affine")
    assert len(affines) == 6 and all(l.params["from_batchnorm"] for l in affines)
    assert affines[0].version == "bn_con2"
    inp = net.input
    assert inp.kind == "input_rgb_image_pyramid" and inp.params["pyramid_down"] == 6
    assert (inp.params["pyramid_padding"], inp.params["pyramid_outer_padding"]) == (10, 11)
    loss = net.loss.params
    assert net.loss.kind == "loss_mmod"
    assert loss["detector_windows"] == [(80, 80, "")]
    assert loss["overlaps_nms"][0] == pytest.approx(0.3383, abs=1e-3)
    assert loss["truth_match_iou_threshold"] == 0.5
    last = net.layers[-2].params
    assert last["num_filters"] == 1 and last["kernel"] == (9, 9) and last["padding"] == (4, 4)
    assert infer_shapes(net, 200, 200)[-2][0] == 1


# ----------------------------------------------------------------------------- broken files


@pytest.fixture(scope="module")
def resnet_bytes() -> bytes:
    return model_path(RESNET).read_bytes()


@pytest.mark.parametrize("keep", [0, 10, 300, 5000, 11_000_000, -1])
def test_truncated_file_is_a_model_error(resnet_bytes: bytes, keep: int) -> None:
    data = resnet_bytes[:keep]
    with pytest.raises(ModelError, match="end of file|expected"):
        parse_dnn(data, RESNET_NET_TYPE, "cut.dat")


def test_trailing_bytes_are_a_model_error(resnet_bytes: bytes) -> None:
    with pytest.raises(ModelError, match="unexpected bytes"):
        parse_dnn(resnet_bytes + b"\x00", RESNET_NET_TYPE)


def test_corrupt_layer_name_is_a_model_error(resnet_bytes: bytes) -> None:
    data = resnet_bytes.replace(b"con_4", b"cox_4", 1)
    with pytest.raises(ModelError, match="expected a con layer"):
        parse_dnn(data, RESNET_NET_TYPE)


def test_wrong_network_type_is_a_model_error(resnet_bytes: bytes, tmp_path) -> None:
    with pytest.raises(ModelError):
        parse_dnn(resnet_bytes, MMOD_HUMAN_FACE_NET_TYPE)
    junk = tmp_path / "junk.dat"
    junk.write_bytes(b"not a dlib network at all")
    with pytest.raises(ModelError, match="junk.dat"):
        read_dnn(junk)
    with pytest.raises(ModelError, match="cannot read"):
        read_dnn(tmp_path / "missing.dat")


def test_bad_type_strings() -> None:
    assert parse_net_type("relu<con<3,1,1,1,1,input_rgb_image>>").subnet.nums == [3, 1, 1, 1, 1]
    for bad in ("relu<", "relu<con<1>>>", "relu<$>"):
        with pytest.raises(ModelError):
            parse_net_type(bad)
    with pytest.raises(ModelError, match="unsupported layer"):
        parse_dnn(b"\x01\x02", "frobnicate<input_rgb_image>")


# ----------------------------------------------------------------------------- a hand-made net


def test_tiny_handmade_network_parses() -> None:
    data, wts = tiny_network()
    net = parse_dnn(data, TINY_TYPE, "tiny.dat")
    assert [l.kind for l in net.layers] == [
        "input_rgb_image_sized", "con", "tag", "con", "affine", "add_prev", "relu", "avg_pool",
        "fc", "loss_metric"]
    assert net.layers[5].inputs == [4, 2]
    np.testing.assert_array_equal(net.layers[1].params["weights"], wts["w1"])
    np.testing.assert_array_equal(net.layers[8].params["bias"], wts["fb"])
    assert infer_shapes(net, 9, 9)[3] == (2, 4, 4)
    # A template that disagrees with the file (kernel size) is refused.
    with pytest.raises(ModelError, match="con layer"):
        parse_dnn(data, TINY_TYPE.replace("con<2,3,3,1,1", "con<2,5,5,1,1"))
    with pytest.raises(ModelError):
        parse_dnn(data[:-7], TINY_TYPE)


def test_tiny_handmade_network_runs_on_onnx() -> None:
    from openlfr.face.nets.resnet import build_onnx
    from openlfr.face.onnx_runtime import make_session

    data, wts = tiny_network(seed=3)
    net = parse_dnn(data, TINY_TYPE)
    session = make_session(build_onnx(net), threads=1)
    imgs = np.random.default_rng(1).integers(0, 256, size=(4, 9, 9, 3), dtype=np.uint8)
    got = session.run(None, {"chips": imgs})[0]
    want = np.stack([tiny_reference(img, wts) for img in imgs])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
