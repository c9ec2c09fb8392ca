"""Development mode: file watching, the module-to-service map, and hot reload. Never imported in prod."""
