"""Built-in plugins. Each is registered exactly like an external plugin would be."""
