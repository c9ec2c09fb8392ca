"""Prometheus metrics: one catalog of every metric (``catalog``), served over HTTP (``serve``)."""
