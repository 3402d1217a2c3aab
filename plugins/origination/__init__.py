"""origination: applications (进件) and their approval workflows.

The approval workflow engine (`plugins.origination.workflow`) is pure: no database, no I/O.
Workflows are data that the lender's business staff edit; every action returns a new
instance state and the events it caused, so storing them is the caller's only job.
"""

from __future__ import annotations

__version__ = "0.1.0"
