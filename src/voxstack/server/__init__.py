"""The shared gRPC service base: host, interceptor and the runner used by ``voxstack serve``."""

from voxstack.server.host import BindError, Service, ServiceHost
from voxstack.server.run import load_factory, run_service

__all__ = ["BindError", "Service", "ServiceHost", "load_factory", "run_service"]
