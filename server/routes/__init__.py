"""The server's routes, one module per resource: models (+ profile), infer, ops (health, load, metrics)."""
