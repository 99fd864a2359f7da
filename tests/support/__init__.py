"""Test support shared by every tier: the Lambda context, the event loader, the shared checks."""
