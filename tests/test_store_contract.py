"""The shipped store contract, run on every shipped store."""

from __future__ import annotations

import pytest

from adapters import MemoryStore, open_store
from adapters.testing import StoreContract
from workflow import StoreError


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def store(self) -> MemoryStore:
        return MemoryStore()


def test_open_store_knows_memory_urls() -> None:
    assert isinstance(open_store("memory://"), MemoryStore)


def test_open_store_names_an_unknown_scheme() -> None:
    with pytest.raises(StoreError, match="'redis'"):
        open_store("redis://localhost")
