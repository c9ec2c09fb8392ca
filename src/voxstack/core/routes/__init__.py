"""The core's routes, one module per thing they serve; ``core.app`` includes each router."""
