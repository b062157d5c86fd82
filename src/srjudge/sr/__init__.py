"""Super-resolution backends that make candidates. Today: classical upscalers for the demo and tests."""
