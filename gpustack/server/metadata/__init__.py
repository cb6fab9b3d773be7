"""Model metadata for estimates from outside the server: hubs (Hugging Face, ModelScope) and workers."""
