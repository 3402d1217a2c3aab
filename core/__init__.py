"""xindai kernel: tenancy, registry, the one write path and the plugin system.

Nothing about loans lives here; the lending business comes from plugins.
"""

__version__ = "0.1.0"
