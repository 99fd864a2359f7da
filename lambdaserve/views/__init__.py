"""Terminal views of use-case results, shared by the CLI and the demo."""
