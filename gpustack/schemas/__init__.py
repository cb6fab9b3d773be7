"""SQLModel tables and DTOs, one module per resource."""


def load_all() -> None:
    """Import every table module so SQLModel.metadata knows the whole schema."""
    from gpustack.schemas import (  # noqa: F401
        api_keys,
        gpu_history,
        inference_backends,
        instances,
        model_files,
        model_metadata,
        models,
        usage,
        users,
        workers,
    )
