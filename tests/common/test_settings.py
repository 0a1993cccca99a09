"""Settings refuse placeholder secrets without echoing what they refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from reelpolicy_registry.config import Settings


def test_a_refused_secret_is_not_echoed_in_the_error() -> None:
    short_but_real_looking = "s3cr3t-value"  # under 16 characters: refused
    with pytest.raises(ValidationError) as refused:
        Settings(
            database_url="postgresql://localhost/x",
            http_port=8001,
            reelpolicy_secret_key=short_but_real_looking,
        )
    assert "REELPOLICY_SECRET_KEY" in str(refused.value)
    assert short_but_real_looking not in str(refused.value)
