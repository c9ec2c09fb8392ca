"""voxstack: a voice-assistant backend of gRPC microservices with a hot-reload development mode."""
