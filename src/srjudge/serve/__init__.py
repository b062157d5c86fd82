"""``srjudge serve``: one loaded VLM behind an OpenAI-compatible API and judge endpoints."""
