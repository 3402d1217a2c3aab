"""contracts: loan contract templates (Jinja2, zh-CN) rendered to PDF with the repayment
schedule attached, and a local signer producing PAdES signatures with a per-tenant
certificate.

The modules here are pure (no database, no I/O beyond the bytes they are given) so the
later plugin wiring (tables, the encrypted document store, a provider interface for
e签宝 / 法大大 style services, the UI) can be built on tested foundations. The plugin is
not registered yet: nothing else in xindai changes by importing it.
"""

__version__ = "0.1.0"
