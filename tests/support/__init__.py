"""Test support shared by every tier: the Lambda context, the event loader, the shared checks."""

import pytest

# The shared checks assert here, outside a test module: pytest explains their failures as it
# does a test's own assertions.
pytest.register_assert_rewrite("tests.support.settings_contract")
