"""Prometheus metrics, in a registry per app (no process-global state)."""

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "docent_http_requests",
            "HTTP requests by route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "docent_http_request_duration_seconds",
            "HTTP request latency by route template",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.run_seconds = Histogram(
            "docent_run_duration_seconds",
            "Agent run latency by outcome",
            ["status"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.first_token_seconds = Histogram(
            "docent_run_time_to_first_token_seconds",
            "From the start of a run to its first streamed answer token",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.tokens = Counter("docent_llm_tokens", "Language-model tokens by kind", ["kind"], registry=self.registry)
        self.retrieval_seconds = Histogram(
            "docent_retrieval_duration_seconds",
            "Document search latency by mode",
            ["mode"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter("docent_errors", "Errors by kind", ["kind"], registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)
