"""Use cases across the ports: register, gate and promote, publish, status."""
