"""The Flask and Django helpers in upnext.contrib, called as a task would call them (no worker)."""

from __future__ import annotations

import re
import sys
import textwrap

import pytest
from flask import Flask, current_app

from upnext.contrib.flask import with_app_context


def _app_name() -> str:
    return current_app.name


def test_with_app_context_runs_the_function_inside_a_given_app():
    app = Flask("given")
    assert with_app_context(app)(_app_name)() == "given"


def test_with_app_context_calls_a_factory_once_on_the_first_run_and_keeps_its_app():
    made: list[Flask] = []

    def create_app() -> Flask:
        made.append(Flask(f"made{len(made)}"))
        return made[-1]

    task = with_app_context(create_app)(_app_name)
    assert made == []  # nothing is built at import time
    assert task() == "made0" and task() == "made0"
    assert len(made) == 1


@pytest.fixture
def app_module(tmp_path, monkeypatch):
    (tmp_path / "factory_app.py").write_text(textwrap.dedent("""
        from flask import Flask

        built = []
        app = Flask("by_name")

        def create_app():
            built.append(Flask("by_factory"))
            return built[-1]
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "factory_app"
    sys.modules.pop("factory_app", None)


def test_with_app_context_imports_module_colon_app_on_the_first_run(app_module):
    task = with_app_context(f"{app_module}:app")(_app_name)
    assert app_module not in sys.modules  # the string is resolved lazily
    assert task() == "by_name"


def test_with_app_context_calls_module_colon_factory_call_once(app_module):
    task = with_app_context(f"{app_module}:create_app()")(_app_name)
    assert task() == "by_factory" and task() == "by_factory"
    import factory_app

    assert len(factory_app.built) == 1


@pytest.mark.parametrize("source", ["no_colon", "a.b:", ":app", "a.b:c(1)", "a.b:c d"])
def test_with_app_context_refuses_a_malformed_import_string_naming_it(source):
    with pytest.raises(ValueError, match=re.escape(repr(source))):
        with_app_context(source)


def test_with_app_context_names_the_string_whose_module_or_attribute_is_missing(app_module):
    with pytest.raises(ImportError, match="factory_app:nope"):
        with_app_context(f"{app_module}:nope")(_app_name)()
    with pytest.raises(ImportError, match="no_such_module_xyz:app"):
        with_app_context("no_such_module_xyz:app")(_app_name)()


def test_with_app_context_refuses_a_factory_that_returns_no_app():
    def make_nothing() -> None:
        return None

    with pytest.raises(TypeError, match="make_nothing"):
        with_app_context(make_nothing)(_app_name)()


def test_with_app_context_refuses_what_is_neither_an_app_a_factory_nor_a_string():
    with pytest.raises(TypeError, match="42"):
        with_app_context(42)
