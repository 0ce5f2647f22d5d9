"""The store contract, as a pytest test class any store can run.

Subclass ``StoreContract`` in your test suite and give it a ``store`` fixture::

    import pytest
    from adapters.testing import StoreContract

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store(self):
            s = MyStore(...)
            yield s
            s.close()

Every shipped adapter runs this same class (tests/test_store_contract.py). The tests
live in ``adapters._contract``, which pytest is asked here to rewrite as it rewrites
your own test modules, so that a failing check shows the values it compared (a module
pytest imports from an installed package is otherwise left as it is: a bare
``AssertionError``). Import ``StoreContract`` from here, not from there.
"""

from __future__ import annotations

import pytest

pytest.register_assert_rewrite("adapters._contract")

from adapters._contract import StoreContract  # noqa: E402  (rewritten: registered first)

__all__ = ["StoreContract"]
