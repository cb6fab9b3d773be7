"""Server-side OpenAI-compatible routing to running instances."""
