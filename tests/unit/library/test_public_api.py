"""The public API: what `dissect_core.__all__` names, and that the library needs nothing of the web extra."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import dissect_core

#: The modules of the `[web]` extra: the library must import none of them.
WEB_MODULES = (
    "fastapi",
    "starlette",
    "sqlalchemy",
    "psycopg",
    "argon2",
    "itsdangerous",
    "alembic",
    "jinja2",
    "uvicorn",
    "multipart",
    "python_multipart",
)


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter; return the finished process."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)


def test_all_names_the_documented_api() -> None:
    expected = {"dissect", "DissectConfig", "DissectionResult", "list_layers", "LayerInfo", "load_saved", "Client"}
    assert expected | {"__version__"} <= set(dissect_core.__all__)
    assert set(dissect_core.__all__) == {"__version__", *dissect_core._PUBLIC}


def test_every_public_name_imports_with_the_web_extra_blocked() -> None:
    done = run_python(
        f"""
        import importlib.abc, sys

        BLOCKED = {WEB_MODULES!r}

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"{{name}} is in the web extra")
                return None

        sys.meta_path.insert(0, Block())
        import dissect_core
        for name in dissect_core.__all__:
            getattr(dissect_core, name)
        import dissect_core.saved, dissect_core.client, dissect_core.frames, dissect_core.pipeline
        leaked = sorted(name for name in sys.modules if name.split(".")[0] in BLOCKED)
        assert not leaked, leaked
        print("ok")
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_importing_the_package_loads_no_torch() -> None:
    done = run_python(
        """
        import sys
        import dissect_core
        assert dissect_core.__version__
        print("torch" in sys.modules)
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_an_unknown_attribute_is_an_attribute_error() -> None:
    try:
        dissect_core.no_such_name  # noqa: B018
    except AttributeError as error:
        assert "no_such_name" in str(error)
    else:
        raise AssertionError("expected AttributeError")
