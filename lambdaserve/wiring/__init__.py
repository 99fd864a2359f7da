"""The composition root: a backend (local or AWS) assembled into the adapters entry points use."""
