"""Benchmarks and the load harness: `make bench` (`python -m bench.run`), `make load` (`python -m bench.load`)."""
