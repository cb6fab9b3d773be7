"""SQLModel tables and DTOs, one module per resource."""


def load_all() -> None:
    """Import every table module so SQLModel.metadata knows the whole schema."""
    from gpustack.schemas import api_keys, instances, model_files, models, users, workers  # noqa: F401
