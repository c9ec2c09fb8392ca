"""The load harness behind `make load` (`python -m bench.load`): clients, probes, reports, the soak."""
