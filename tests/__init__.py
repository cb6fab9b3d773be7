"""Test suite for gpustack."""
