"""Third-party stores found by URL scheme through the ``complaintflow.stores`` entry-point
group, as docs/adapters.md tells a third party to register one: each test installs a
small distribution of its own (a ``.dist-info`` folder and a module on ``sys.path``,
what ``pip install`` leaves), so ``importlib.metadata`` finds it as it would a real one."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from adapters import MemoryStore, open_store
from workflow import ComplaintflowError, StoreError, StoreUnavailable
from workflow.cli import main

#: The third party's module: a dict-backed store (the memory store under another name)
#: and factories that go wrong in the ways a factory can.
STORE_MODULE = """
from adapters import MemoryStore
from workflow import StoreUnavailable


class DictStore(MemoryStore):
    def __init__(self, url, options):
        super().__init__()
        self.url = url
        self.options = options


def open(url, **options):
    return DictStore(url, options)


def open_without_options(url):
    return DictStore(url, {})


def open_not_a_store(url, **options):
    return {"url": url}


def open_failing(url, **options):
    return url.split("://", 1)[1].split("@")[99]


def open_unavailable(url, **options):
    raise StoreUnavailable("the dict server is down")


NOT_CALLABLE = 42
"""


def install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stores: dict[str, str], *, name: str = ""
) -> str:
    """Install a distribution registering ``stores`` (scheme -> ``:factory`` in the
    distribution's own module, or a whole ``module:attr``); return its module's name."""
    module = f"cf_thirdparty_{uuid.uuid4().hex[:8]}"
    dist = name or module.replace("_", "-")
    site = tmp_path / f"site-{module}"
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = [
        f"{scheme} = {module}{target}" if target.startswith(":") else f"{scheme} = {target}"
        for scheme, target in stores.items()
    ]
    (info / "entry_points.txt").write_text("[complaintflow.stores]\n" + "\n".join(lines) + "\n")
    (site / f"{module}.py").write_text(STORE_MODULE)
    monkeypatch.syspath_prepend(str(site))
    return module


def test_a_store_registered_under_a_scheme_is_opened_by_url_with_its_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(tmp_path, monkeypatch, {"dictstore": ":open"})
    store = open_store("dictstore://shelf/one", colour="blue")
    assert isinstance(store, MemoryStore)
    assert (store.url, store.options) == ("dictstore://shelf/one", {"colour": "blue"})  # type: ignore[attr-defined]
    # ``scheme+driver://`` finds the store registered as ``scheme``; schemes ignore case.
    assert open_store("dictstore+v2://shelf").url == "dictstore+v2://shelf"  # type: ignore[attr-defined]
    assert open_store("DictStore://shelf").url == "DictStore://shelf"  # type: ignore[attr-defined]


def test_the_command_line_opens_a_third_party_store_with_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(tmp_path, monkeypatch, {"dictstore": ":open"})
    runner = CliRunner()
    verified = runner.invoke(main, ["audit", "verify", "--store", "dictstore://shelf"])
    assert verified.exit_code == 0, verified.output
    assert "dictstore://shelf: verified, no problems" in verified.output
    ticked = runner.invoke(main, ["sla", "tick", "--store", "dictstore://shelf"])
    assert ticked.exit_code == 0, ticked.output
    demo = runner.invoke(main, ["demo", "--store", "dictstore://shelf"])
    assert demo.exit_code == 0, demo.output


def test_an_unknown_scheme_names_the_known_ones_and_the_entry_point_group_without_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(tmp_path, monkeypatch, {"dictstore": ":open"})
    with pytest.raises(StoreError) as error:
        open_store("redis://admin:s3cret@cache:6379/0")
    message = str(error.value)
    assert "no store for URL scheme 'redis' in 'redis://admin:***@cache:6379/0'" in message
    assert "known: dictstore, memory, postgresql, sqlite" in message
    assert "entry-point group complaintflow.stores" in message
    assert "s3cret" not in message


@pytest.mark.parametrize("url", ["cases.db", "", "/var/lib/cases.db"])
def test_a_url_without_a_scheme_is_refused_with_examples(url: str) -> None:
    with pytest.raises(StoreError, match=r"is not a store URL \(it has no scheme.*sqlite:///"):
        open_store(url)


def test_an_entry_point_that_cannot_be_imported_names_itself_and_its_distribution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(tmp_path, monkeypatch, {"broken": "cf_no_such_module_anywhere:open"}, name="brokenpkg")
    with pytest.raises(StoreError) as error:
        open_store("broken://x")
    assert str(error.value) == (
        "store 'broken' (entry point cf_no_such_module_anywhere:open of brokenpkg 1.0) "
        "cannot be loaded: ModuleNotFoundError: No module named 'cf_no_such_module_anywhere'"
    )
    assert isinstance(error.value.__cause__, ModuleNotFoundError)
    result = CliRunner().invoke(main, ["audit", "verify", "--store", "broken://x"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "cannot be loaded: ModuleNotFoundError" in result.output


def test_an_entry_point_that_is_not_callable_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = install(tmp_path, monkeypatch, {"odd": ":NOT_CALLABLE"})
    with pytest.raises(
        StoreError, match=rf"store 'odd' \(entry point {module}:NOT_CALLABLE of .*\) is an int"
    ):
        open_store("odd://x")


def test_a_factory_that_returns_something_else_than_a_store_is_refused_naming_what_it_lacks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = install(tmp_path, monkeypatch, {"notastore": ":open_not_a_store"})
    with pytest.raises(StoreError) as error:
        open_store("notastore://x")
    assert str(error.value).startswith(
        f"store 'notastore' (entry point {module}:open_not_a_store of "
    )
    assert "returned a dict, not a complaintflow Store: it has no append, case_ids, " in str(
        error.value
    )


def test_a_factory_that_fails_is_a_store_error_naming_the_store_and_the_masked_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = install(tmp_path, monkeypatch, {"failing": ":open_failing"})
    with pytest.raises(StoreError) as error:
        open_store("failing://user:pw@host")
    assert str(error.value).startswith(
        "opening failing://user:***@host with store 'failing' "
        f"(entry point {module}:open_failing of "
    )
    assert str(error.value).endswith("failed: IndexError: list index out of range")
    assert isinstance(error.value.__cause__, IndexError)


def test_a_complaintflow_error_from_a_factory_reaches_the_caller_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(tmp_path, monkeypatch, {"down": ":open_unavailable"})
    with pytest.raises(StoreUnavailable, match=r"^the dict server is down$"):
        open_store("down://x")


def test_an_option_the_factory_does_not_take_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = install(tmp_path, monkeypatch, {"plain": ":open_without_options"})
    assert open_store("plain://x").url == "plain://x"  # type: ignore[attr-defined]
    with pytest.raises(
        StoreError,
        match=rf"store 'plain' \(entry point {module}:open_without_options of .*\) "
        "takes no option create",
    ):
        open_store("plain://x", create=True)


def test_a_scheme_registered_by_two_distributions_is_refused_naming_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = install(tmp_path, monkeypatch, {"twice": ":open"}, name="first-store")
    second = install(tmp_path, monkeypatch, {"twice": ":open"}, name="second-store")
    with pytest.raises(StoreError) as error:
        open_store("twice://x")
    message = str(error.value)
    assert message.startswith("store scheme 'twice' is registered by more than one package: ")
    assert f"entry point {first}:open of first-store 1.0" in message
    assert f"entry point {second}:open of second-store 1.0" in message


def test_every_open_store_error_is_a_complaintflow_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the command line turns into one line: nothing else escapes ``open_store``."""
    install(tmp_path, monkeypatch, {"failing": ":open_failing", "broken": "cf_nope_x:open"})
    for url in ("failing://x", "broken://x", "nope://x", "x"):
        with pytest.raises(ComplaintflowError):
            open_store(url)


@pytest.mark.parametrize("url", ["memory://", "dictstore://shelf", "cases.db"])
def test_db_init_on_a_url_that_is_not_sql_says_it_only_sets_up_sql_stores(url: str) -> None:
    result = CliRunner().invoke(main, ["db", "init", url])
    assert result.exit_code == 1
    assert f"Error: {url} is not a SQL store URL" in result.output
    assert "Traceback" not in result.output
    assert "sqlalchemy" not in result.output
