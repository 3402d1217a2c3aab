"""The approvals piccolo app: workflow versions, instances, tasks and their events."""
