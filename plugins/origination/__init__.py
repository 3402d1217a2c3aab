"""origination: applications (进件) and their approval workflows.

The approval workflow engine (`plugins.origination.workflow`) is pure: no database, no I/O.
Workflows are data that the lender's business staff edit; every action returns a new
instance state and the events it caused, so storing them is the caller's only job.
"""

from __future__ import annotations

__version__ = "0.1.0"

# Approvals (审批): the engine wired to the database, API and UI (hooks_approvals.py).
from plugins.origination.hooks_approvals import *  # noqa: E402,F401,F403
