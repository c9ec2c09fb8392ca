"""The shared gRPC service base: host, interceptor, worker and the runner.

Nothing is imported here, so that ``python -m voxstack.server SERVICE`` (the
lean entry a supervisor starts) loads only what that service needs.
"""
