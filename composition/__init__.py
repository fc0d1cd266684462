"""The composition: the one package that knows all four services. It holds the service catalogue and
the single-process dev app (catalog), the `pena` command (cli) and the local PostgreSQL and Kafka
(infra). The kernel (`pena`) never imports it; it may import the kernel and every service."""
