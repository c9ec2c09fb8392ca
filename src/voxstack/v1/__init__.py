"""Generated gRPC stubs for the voxstack.v1 API (``make proto``; do not edit)."""
