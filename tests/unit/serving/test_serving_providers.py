"""Provider selection: every branch with faked availability; the CPU path for real; GPU only where present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bundle.manifest import Variant
from serving.providers import (
    CPU_EP,
    CUDA_EP,
    Device,
    FaissPlan,
    available_ort_providers,
    create_session,
    faiss_gpu_count,
    place_faiss_index,
    select_faiss,
    select_ort,
)

ALL = {Variant.FP32, Variant.INT8, Variant.FP16}
WITH_CUDA = [CUDA_EP, CPU_EP]
CPU_ONLY = [CPU_EP]


@pytest.mark.parametrize(
    ("device", "available", "variants", "expected"),
    [
        (Device.AUTO, WITH_CUDA, ALL, ((CUDA_EP, CPU_EP), Variant.FP16, True)),
        (Device.GPU, WITH_CUDA, ALL, ((CUDA_EP, CPU_EP), Variant.FP16, True)),
        (Device.CPU, WITH_CUDA, ALL, ((CPU_EP,), Variant.INT8, False)),
        (Device.AUTO, CPU_ONLY, ALL, ((CPU_EP,), Variant.INT8, False)),
        (Device.GPU, CPU_ONLY, ALL, ((CPU_EP,), Variant.INT8, False)),  # asked for gpu, none: CPU + warning
        (Device.AUTO, WITH_CUDA, {Variant.FP32, Variant.INT8}, ((CUDA_EP, CPU_EP), Variant.FP32, True)),
        (Device.CPU, CPU_ONLY, {Variant.FP32}, ((CPU_EP,), Variant.FP32, False)),
    ],
)
def test_select_ort(device: Device, available: list[str], variants: set[Variant], expected: tuple) -> None:
    plan = select_ort(device, variants, available)
    assert (plan.providers, plan.variant, plan.on_gpu) == expected
    assert plan.provider == expected[0][0]


def test_select_ort_warns_when_gpu_missing(caplog: pytest.LogCaptureFixture) -> None:
    select_ort(Device.GPU, ALL, CPU_ONLY)
    assert "running on CPU" in caplog.text


def test_select_ort_refuses_bundle_without_usable_variant() -> None:
    with pytest.raises(ValueError):
        select_ort(Device.CPU, {Variant.FP16}, CPU_ONLY)


@pytest.mark.parametrize(
    ("device", "gpus", "on_gpu"),
    [
        (Device.AUTO, 1, True),
        (Device.GPU, 2, True),
        (Device.CPU, 1, False),
        (Device.AUTO, 0, False),
        (Device.GPU, 0, False),
    ],
)
def test_select_faiss(device: Device, gpus: int, on_gpu: bool) -> None:
    assert select_faiss(device, gpus).on_gpu is on_gpu


def test_cpu_faiss_placement_is_identity() -> None:
    import faiss

    index = faiss.IndexFlatIP(4)
    assert place_faiss_index(index, FaissPlan(on_gpu=False)) is index


def _identity_model(path: Path) -> Path:
    from onnx import TensorProto, helper, save

    x = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["b", "s"])
    y = helper.make_tensor_value_info("logits", TensorProto.INT64, ["b", "s"])
    graph = helper.make_graph([helper.make_node("Identity", ["input_ids"], ["logits"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    save(model, str(path))
    return path


def test_cpu_session_runs_for_real_with_one_thread(tmp_path: Path) -> None:
    plan = select_ort(Device.AUTO, ALL, CPU_ONLY)
    sess = create_session(str(_identity_model(tmp_path / "m.onnx")), plan, intra_op_threads=1)
    assert sess.get_providers() == [CPU_EP]
    assert sess.get_session_options().intra_op_num_threads == 1
    x = np.arange(6, dtype=np.int64).reshape(2, 3)
    assert np.array_equal(sess.run(None, {"input_ids": x})[0], x)


def test_real_availability_queries_work() -> None:
    assert CPU_EP in available_ort_providers()
    assert faiss_gpu_count() >= 0


@pytest.mark.gpu
def test_gpu_path_runs_where_cuda_exists(tmp_path: Path) -> None:
    if CUDA_EP not in available_ort_providers() or faiss_gpu_count() == 0:
        pytest.skip("no CUDA execution provider / faiss GPU on this machine")
    plan = select_ort(Device.AUTO, ALL)
    assert plan.on_gpu and plan.variant is Variant.FP16
    sess = create_session(str(_identity_model(tmp_path / "m.onnx")), plan, intra_op_threads=1)
    assert sess.get_providers()[0] == CUDA_EP
    import faiss

    index = place_faiss_index(faiss.IndexFlatIP(4), select_faiss(Device.AUTO))
    assert "Gpu" in type(index).__name__


def _bundle_with_gpu_and_cpu_variants(d: Path) -> Path:
    from tokenizers import Tokenizer, models

    from bundle.manifest import BundleKind, Manifest
    from bundle.store import write_manifest

    d.mkdir()
    _identity_model(d / "model.fp16.onnx")
    _identity_model(d / "model.int8.onnx")
    Tokenizer(models.WordLevel({"[PAD]": 0, "[UNK]": 1}, unk_token="[UNK]")).save(str(d / "tokenizer.json"))
    variants = {Variant.FP16: "model.fp16.onnx", Variant.INT8: "model.int8.onnx"}
    write_manifest(
        d, Manifest(kind=BundleKind.INTENT, version="v1", source_checkpoint="c", variants=variants)
    )
    return d


def test_cuda_listed_but_failing_to_initialize_falls_back_to_cpu_plan(tmp_path: Path) -> None:
    """ORT lists CUDA (GPU build installed) but the CUDA provider cannot start (here: no CUDA at all, so ORT
    drops it and builds a CPU session). The runtime must run - and report - the CPU plan with the CPU variant,
    not the fp16 file on CPU while claiming CUDA."""
    from serving.runtime import OnnxModel

    model = OnnxModel(_bundle_with_gpu_and_cpu_variants(tmp_path / "b"), available_providers=WITH_CUDA)
    assert model.session.get_providers() == [CPU_EP]
    assert (model.plan.provider, model.plan.variant, model.plan.on_gpu) == (CPU_EP, Variant.INT8, False)


def test_cuda_session_raising_falls_back_to_cpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from serving import providers

    real = providers.create_session

    def cuda_fails(path: str, plan: providers.OrtPlan, threads: int) -> object:
        if plan.on_gpu:
            raise RuntimeError("CUDA failure 100: no CUDA-capable device is detected")
        return real(path, plan, threads)

    monkeypatch.setattr(providers, "create_session", cuda_fails)
    paths = {Variant.FP16: "fp16", Variant.INT8: str(_identity_model(tmp_path / "m.onnx"))}
    sess, plan = providers.open_session(paths.__getitem__, select_ort(Device.GPU, ALL, WITH_CUDA), ALL, 1)
    assert plan.variant is Variant.INT8 and not plan.on_gpu
    assert sess.get_providers() == [CPU_EP]


def test_faiss_gpu_placement_failure_keeps_cpu_index(caplog: pytest.LogCaptureFixture) -> None:
    import faiss

    if faiss_gpu_count() > 0:
        pytest.skip("this machine has a faiss GPU")
    index = faiss.IndexFlatIP(4)  # faiss-cpu: no GPU resources at all, like a GPU build without a device
    assert place_faiss_index(index, FaissPlan(on_gpu=True)) is index
    assert "stays on CPU" in caplog.text
