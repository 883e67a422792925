"""Ray Serve application builder: `serving.app:build_app` (the import_path of serving/config/*.yaml).

Topologies (ServingArgs.topology; see serving/README.md for the measurements behind the default):
* fused (default): one NluIngress deployment runs intent, sentiment, embedder and the retriever in-process,
  each model behind its own `serve.batch` queue. No handle hops; scale by replicas of the ingress.
* split: NluIngress -> IntentClassifier / SentimentClassifier / Embedder / Retriever deployments over
  DeploymentHandles; each model scales (and takes GPU fractions) independently.
"""

from typing import Any

from ray import serve
from ray.serve import Application
from ray.serve.deployment import Deployment

from serving.ingress import MODEL_KINDS, NluIngress
from serving.servers import ModelServer, RetrieverServer
from serving.settings import ModelUserConfig, ResolvedSettings, ServingArgs, Topology

_MODEL_OPTIONS: dict[str, Any] = {
    "max_ongoing_requests": 256,  # >= max_batch_size in requests: a batch can only fill from admitted calls
    "max_queued_requests": 1024,  # bounded: callers beyond this get BackPressureError -> 429
    "health_check_period_s": 10,
    "graceful_shutdown_timeout_s": 20,
    "ray_actor_options": {"num_cpus": 1},
}


class IntentClassifierServer(ModelServer):
    def __init__(self, settings: ResolvedSettings) -> None:
        super().__init__("intent", settings)


class SentimentClassifierServer(ModelServer):
    def __init__(self, settings: ResolvedSettings) -> None:
        super().__init__("sentiment", settings)


class EmbedderServer(ModelServer):
    def __init__(self, settings: ResolvedSettings) -> None:
        super().__init__("embedder", settings)


class RetrieverServerDeployment(RetrieverServer):
    def __init__(self, settings: ResolvedSettings) -> None:
        super().__init__(settings)


IntentClassifier: Deployment = serve.deployment(name="IntentClassifier", **_MODEL_OPTIONS)(
    IntentClassifierServer
)
SentimentClassifier: Deployment = serve.deployment(name="SentimentClassifier", **_MODEL_OPTIONS)(
    SentimentClassifierServer
)
Embedder: Deployment = serve.deployment(name="Embedder", **_MODEL_OPTIONS)(EmbedderServer)
Retriever: Deployment = serve.deployment(name="Retriever", **_MODEL_OPTIONS)(RetrieverServerDeployment)
Ingress: Deployment = serve.deployment(
    name="NluIngress",
    max_ongoing_requests=512,
    max_queued_requests=1024,
    health_check_period_s=10,
    graceful_shutdown_timeout_s=20,
    ray_actor_options={"num_cpus": 1},
)(NluIngress)


def build_app(args: ServingArgs) -> Application:
    """Typed builder. Model versions, batching knobs and shadow bundles come from each deployment's user_config."""
    if not isinstance(args, ServingArgs):  # a plain dict when called outside Serve's typed-args path
        args = ServingArgs.model_validate(args or {})
    settings = args.settings()
    model_cfg = ModelUserConfig().model_dump()
    if settings.topology is Topology.SPLIT:
        intent = IntentClassifier.options(user_config=model_cfg).bind(settings)
        sentiment = SentimentClassifier.options(user_config=model_cfg).bind(settings)
        embedder = Embedder.options(user_config=model_cfg).bind(settings)
        retriever = Retriever.bind(settings)
        return Ingress.options(user_config={}).bind(settings, intent, sentiment, embedder, retriever)
    return Ingress.options(user_config={"models": dict.fromkeys(MODEL_KINDS, model_cfg)}).bind(settings)
