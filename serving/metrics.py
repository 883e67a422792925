"""Prometheus metrics of one ingress replica (its own registry: no global state, no duplicate registration).

Model deployments return their batch timings with every reply, so the ingress observes queue time, inference
time and executed batch sizes of every model without scraping other replicas.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

_LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)


class ServingMetrics:
    def __init__(self) -> None:
        disable_created_metrics()  # no *_created series: they double the exposition for no use here
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "xiaoke_serving_requests",
            "HTTP requests by endpoint and result code",
            ["endpoint", "code"],
            registry=r,
        )
        self.latency = Histogram(
            "xiaoke_serving_request_seconds",
            "End-to-end request time",
            ["endpoint"],
            buckets=_LATENCY,
            registry=r,
        )
        self.texts = Histogram(
            "xiaoke_serving_texts_per_request",
            "Texts per /v1/nlu or /v1/embed request",
            buckets=_SIZES,
            registry=r,
        )
        self.batch_rows = Histogram(
            "xiaoke_serving_batch_rows", "Texts in the model run that served a request", ["model"], buckets=_SIZES,
            registry=r,
        )  # fmt: skip
        self.queue = Histogram(
            "xiaoke_serving_queue_seconds", "Time a request waited in a model's batch queue", ["model"],
            buckets=_LATENCY, registry=r,
        )  # fmt: skip
        self.inference = Histogram(
            "xiaoke_serving_inference_seconds", "Tokenize + ORT time of the batch that served a request", ["model"],
            buckets=_LATENCY, registry=r,
        )  # fmt: skip
        self.retrieval = Histogram(
            "xiaoke_serving_retrieval_seconds", "FAQ search time per request", buckets=_LATENCY, registry=r
        )
        self.padding = Histogram(
            "xiaoke_serving_padding_ratio", "Padded / real tokens of a model run", ["model"],
            buckets=(1.0, 1.05, 1.1, 1.25, 1.5, 2.0, 3.0, 5.0), registry=r,
        )  # fmt: skip
        self.shadow_compared = Counter(
            "xiaoke_serving_shadow_compared", "Texts scored by a shadow bundle", ["model"], registry=r
        )
        self.shadow_disagreed = Counter(
            "xiaoke_serving_shadow_disagreements", "Shadow bundle disagreed with the live bundle", ["model"],
            registry=r,
        )  # fmt: skip
        self.inflight = Gauge("xiaoke_serving_inflight", "Admitted requests in flight", registry=r)
        self.embedder_mismatch = Counter(
            "xiaoke_serving_index_embedder_mismatch", "Searches whose index was built by another embedder",
            registry=r,
        )  # fmt: skip

    def render(self) -> bytes:
        return generate_latest(self.registry)
