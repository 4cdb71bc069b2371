"""The cloud half: a FastAPI service that runs any tail of a model's segment chain (LiteRT only, no
TensorFlow), and the typed client the harness uses to talk to it."""
