"""Inference engine backends that build launch specs."""
