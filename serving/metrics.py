"""Prometheus metrics of one ingress replica, written to two places:

* the replica's own registry, rendered at Serve's ``/metrics`` (port 8001): one replica's view, for local runs
  and tests (``xiaoke_serving_*``; each request may land on another replica, so not for Prometheus);
* inside a Ray cluster also Ray's metrics agent (``ray.serve.metrics``), which every node exports on its
  metrics port (8080, what the ServiceMonitor scrapes): the same series with Ray's ``ray_`` prefix and Serve's
  ``deployment`` / ``replica`` / ``application`` tags, e.g. ``ray_xiaoke_serving_shadow_disagreements_total``.

Model deployments return their batch timings with every reply, so the ingress observes queue time, inference
time and executed batch sizes of every model without scraping other replicas.
"""

from __future__ import annotations

from typing import Any

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


class _Bound:
    """One labelled child: each update goes to the local child and, when mirrored, to Ray with the same tags."""

    def __init__(self, local: Any, cluster: Any, tags: dict[str, str]) -> None:
        self._local, self._cluster, self._tags = local, cluster, tags

    def inc(self, amount: float = 1.0) -> None:
        self._local.inc(amount)
        if self._cluster is not None and amount > 0:  # Ray counters refuse 0
            self._cluster.inc(amount, tags=self._tags)

    def observe(self, value: float) -> None:
        self._local.observe(value)
        if self._cluster is not None:
            self._cluster.observe(value, tags=self._tags)

    def set(self, value: float) -> None:
        self._local.set(value)
        if self._cluster is not None:
            self._cluster.set(value, tags=self._tags)


class _Family(_Bound):
    """A metric family with the prometheus_client calls the ingress uses (``labels(...)`` / ``inc`` /
    ``observe`` / ``set``)."""

    def __init__(self, local: Any, cluster: Any, labelnames: tuple[str, ...]) -> None:
        super().__init__(local, cluster, {})
        self._labelnames = labelnames

    def labels(self, *values: str) -> _Bound:
        return _Bound(
            self._local.labels(*values), self._cluster, dict(zip(self._labelnames, values, strict=True))
        )


class ServingMetrics:
    def __init__(self, cluster: bool | None = None) -> None:
        """``cluster``: mirror to Ray's metrics agent; default: when running inside Ray."""
        disable_created_metrics()  # no *_created series: they double the exposition for no use here
        self.registry = CollectorRegistry(auto_describe=True)
        if cluster is None:
            import ray

            cluster = ray.is_initialized()
        self._cluster = cluster
        self.requests = self._counter("xiaoke_serving_requests", "HTTP requests by endpoint and result code",
                                      ("endpoint", "code"))  # fmt: skip
        self.latency = self._histogram("xiaoke_serving_request_seconds", "End-to-end request time", _LATENCY,
                                       ("endpoint",))  # fmt: skip
        self.texts = self._histogram("xiaoke_serving_texts_per_request", "Texts per /v1/nlu or /v1/embed request",
                                     _SIZES)  # fmt: skip
        self.batch_rows = self._histogram("xiaoke_serving_batch_rows", "Texts in the model run that served a request",
                                          _SIZES, ("model",))  # fmt: skip
        self.queue = self._histogram("xiaoke_serving_queue_seconds", "Time a request waited in a model's batch queue",
                                     _LATENCY, ("model",))  # fmt: skip
        self.inference = self._histogram("xiaoke_serving_inference_seconds",
                                         "Tokenize + ORT time of the batch that served a request", _LATENCY,
                                         ("model",))  # fmt: skip
        self.retrieval = self._histogram(
            "xiaoke_serving_retrieval_seconds", "FAQ search time per request", _LATENCY
        )
        self.padding = self._histogram("xiaoke_serving_padding_ratio", "Padded / real tokens of a model run",
                                       (1.0, 1.05, 1.1, 1.25, 1.5, 2.0, 3.0, 5.0), ("model",))  # fmt: skip
        self.shadow_compared = self._counter("xiaoke_serving_shadow_compared", "Texts scored by a shadow bundle",
                                             ("model",))  # fmt: skip
        self.shadow_disagreed = self._counter("xiaoke_serving_shadow_disagreements",
                                              "Shadow bundle disagreed with the live bundle", ("model",))  # fmt: skip
        self.inflight = self._gauge("xiaoke_serving_inflight", "Admitted requests in flight")
        self.bundle_refused = self._gauge("xiaoke_serving_bundle_refused",
                                          "1 while the bundle or shadow bundle user_config asks for was refused "
                                          "(missing, tampered, unloadable) and the previous one keeps serving",
                                          ("model",))  # fmt: skip
        self.embedder_mismatch = self._counter("xiaoke_serving_index_embedder_mismatch",
                                               "Searches whose index was built by another embedder")  # fmt: skip
        self.index_reembeds = self._counter("xiaoke_serving_index_reembeds",
                                            "Active FAQ index built by another embedder, resolved by this replica: "
                                            "rebuilt (its questions re-embedded), reactivated (a version of the "
                                            "same questions built by the serving embedder existed), superseded "
                                            "(ACTIVE moved meanwhile; left alone), failed (retried)",
                                            ("outcome",))  # fmt: skip

    def _mirror(self, kind: str, name: str, doc: str, labels: tuple[str, ...], **kw: Any) -> Any:
        if not self._cluster:
            return None
        from ray.serve import metrics as ray_metrics

        return getattr(ray_metrics, kind)(name, description=doc, tag_keys=labels or None, **kw)

    def _counter(self, name: str, doc: str, labels: tuple[str, ...] = ()) -> _Family:
        local = Counter(name, doc, labels, registry=self.registry)
        return _Family(local, self._mirror("Counter", name, doc, labels), labels)

    def _histogram(
        self, name: str, doc: str, buckets: tuple[float, ...], labels: tuple[str, ...] = ()
    ) -> _Family:
        local = Histogram(name, doc, labels, buckets=buckets, registry=self.registry)
        return _Family(local, self._mirror("Histogram", name, doc, labels, boundaries=list(buckets)), labels)

    def _gauge(self, name: str, doc: str, labels: tuple[str, ...] = ()) -> _Family:
        local = Gauge(name, doc, labels, registry=self.registry)
        return _Family(local, self._mirror("Gauge", name, doc, labels), labels)

    def render(self) -> bytes:
        return generate_latest(self.registry)
