"""Prometheus metrics of the kernel (served at /metrics)."""

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter("pena_http_requests_total", "HTTP requests", ["method", "route", "status"])
HTTP_LATENCY = Histogram("pena_http_request_seconds", "HTTP request latency", ["method", "route"])
OUTBOX_PUBLISHED = Counter("pena_outbox_published_total", "Outbox rows published", ["service"])
OUTBOX_FAILURES = Counter("pena_outbox_publish_failures_total", "Failed publish attempts", ["service"])
# live gauges, refreshed every PENA_METRICS_INTERVAL_SECONDS by the runtime (pena.runtime.sample_metrics)
OUTBOX_PENDING = Gauge("pena_outbox_pending", "Unpublished outbox rows", ["service"])
CONSUMER_LAG = Gauge(
    "pena_consumer_lag",
    "Records not yet handled on the partitions assigned to this process's consumer, per topic",
    ["consumer", "topic"],
)
EVENTS_HANDLED = Counter("pena_events_handled_total", "Consumed events by outcome", ["consumer", "event", "outcome"])
EVENT_LAG = Histogram(
    "pena_event_lag_seconds",
    "Event time to handled time",
    ["consumer"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
JOBS_RUN = Counter("pena_scheduled_jobs_total", "Scheduled jobs run by outcome", ["kind", "outcome"])
