"""The one provider-selection point: which ONNX Runtime execution provider and bundle variant, and whether FAISS
runs on a GPU. Everything else in serving asks this module; no other module inspects devices.

Rules:
* ORT: CUDAExecutionProvider + the fp16 variant when ORT reports CUDA and the configured device is gpu or auto;
  otherwise CPUExecutionProvider + the int8 variant. A missing preferred variant falls back to fp32.
  Asking for gpu on a machine without CUDA logs a warning and runs on CPU (a CPU answer beats no answer).
  ORT lists CUDA whenever the GPU build is installed, yet the CUDA provider can still fail to initialize (no
  device or driver, missing cuDNN, out of memory): `open_session` then re-plans for CPU (int8 / fp32 variant).
* FAISS: `index_cpu_to_gpu` when the faiss build reports GPUs and the device is gpu or auto; otherwise CPU
  (also when moving the index to the GPU fails).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bundle.manifest import Variant

log = logging.getLogger(__name__)

CUDA_EP = "CUDAExecutionProvider"
CPU_EP = "CPUExecutionProvider"


class Device(StrEnum):
    AUTO = "auto"
    CPU = "cpu"
    GPU = "gpu"


@dataclass(frozen=True)
class OrtPlan:
    providers: tuple[str, ...]
    variant: Variant
    on_gpu: bool

    @property
    def provider(self) -> str:
        return self.providers[0]


@dataclass(frozen=True)
class FaissPlan:
    on_gpu: bool
    device_id: int = 0


_PREFERENCE: dict[bool, tuple[Variant, ...]] = {
    True: (Variant.FP16, Variant.FP32),  # CUDA
    False: (Variant.INT8, Variant.FP32),  # CPU
}


def available_ort_providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def faiss_gpu_count() -> int:
    import faiss

    get = getattr(faiss, "get_num_gpus", None)
    return int(get()) if get is not None else 0


def select_ort(
    device: Device,
    variants: Collection[Variant],
    available: Sequence[str] | None = None,
) -> OrtPlan:
    """Pick provider(s) and variant for one bundle. `variants`: the variants the bundle ships."""
    providers = list(available) if available is not None else available_ort_providers()
    use_gpu = device in (Device.GPU, Device.AUTO) and CUDA_EP in providers
    if device is Device.GPU and not use_gpu:
        log.warning("device=gpu requested but onnxruntime has no %s; running on CPU", CUDA_EP)
    for variant in _PREFERENCE[use_gpu]:
        if variant in variants:
            break
    else:
        raise ValueError(f"bundle ships none of {[v.value for v in _PREFERENCE[use_gpu]]}")
    eps = (CUDA_EP, CPU_EP) if use_gpu else (CPU_EP,)
    return OrtPlan(eps, variant, use_gpu)


def select_faiss(device: Device, num_gpus: int | None = None) -> FaissPlan:
    gpus = faiss_gpu_count() if num_gpus is None else num_gpus
    use_gpu = device in (Device.GPU, Device.AUTO) and gpus > 0
    if device is Device.GPU and not use_gpu:
        log.warning("device=gpu requested but faiss reports no GPU; FAISS runs on CPU")
    return FaissPlan(on_gpu=use_gpu)


def session_options(intra_op_threads: int) -> Any:
    """One intra-op thread per replica by default: replicas scale out, threads fight (FINDINGS: 4x collapse).
    `intra_op_threads <= 0` keeps ORT's default (one per core) - used only by the naive benchmark baseline."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if intra_op_threads > 0:
        opts.intra_op_num_threads = intra_op_threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return opts


def create_session(model_path: str, plan: OrtPlan, intra_op_threads: int) -> Any:
    import onnxruntime as ort

    return ort.InferenceSession(
        model_path, sess_options=session_options(intra_op_threads), providers=list(plan.providers)
    )


def open_session(
    model_path: Callable[[Variant], str],
    plan: OrtPlan,
    variants: Collection[Variant],
    intra_op_threads: int,
) -> tuple[Any, OrtPlan]:
    """The session of `plan` and the plan it really runs. A CUDA plan whose provider fails to initialize - ORT
    raises, or silently retries on CPU with the fp16 file - falls back to the CPU plan and its variant."""
    if plan.on_gpu:
        try:
            session = create_session(model_path(plan.variant), plan, intra_op_threads)
        except Exception as exc:  # any CUDA init failure: serve on CPU instead
            log.warning("%s failed to initialize (%s); running on CPU", CUDA_EP, type(exc).__name__)
        else:
            if CUDA_EP in session.get_providers():
                return session, plan
            log.warning(
                "%s did not initialize (session runs %s); running on CPU", CUDA_EP, session.get_providers()
            )
        plan = select_ort(Device.CPU, variants, [CPU_EP])
    return create_session(model_path(plan.variant), plan, intra_op_threads), plan


def place_faiss_index(index: Any, plan: FaissPlan) -> Any:
    """Move a CPU FAISS index to the GPU when the plan says so (keeps the GPU resources alive on the index).
    If that fails (faiss without GPU support, no device, out of GPU memory) the index stays on the CPU."""
    if not plan.on_gpu:
        return index
    import faiss

    try:
        res = faiss.StandardGpuResources()  # type: ignore[attr-defined]
        gpu_index: Any = faiss.index_cpu_to_gpu(res, plan.device_id, index)  # type: ignore[attr-defined]
    except Exception as exc:  # a CPU index beats no index
        log.warning(
            "moving the FAISS index to GPU %d failed (%s); it stays on CPU",
            plan.device_id,
            type(exc).__name__,
        )
        return index
    gpu_index._xiaoke_resources = res  # the resources must outlive the index
    return gpu_index
