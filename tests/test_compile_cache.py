"""The command's persistent compilation cache (``jaxunc.compile_cache``): where it
lives, the opt-outs, JAX's own variable respected, an unwritable folder reported once
and run uncached, and the caller's settings restored.  In-process and small: the
test session's own cache (tests/conftest.py) is never replaced for longer than a
``with`` block."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

from jaxunc import cli
from jaxunc.compile_cache import (
    DISABLE_VARIABLE,
    JAX_VARIABLE,
    MIN_COMPILE_SECONDS,
    cache_plan,
    compile_cache,
)


def test_where_the_cache_lives(tmp_path):
    home = Path.home() / ".cache" / "jaxunc"
    assert cache_plan(False, {}).folder == home
    assert cache_plan(False, {"XDG_CACHE_HOME": str(tmp_path)}).folder == (
        tmp_path / "jaxunc"
    )
    # the XDG specification ignores a relative XDG_CACHE_HOME
    assert cache_plan(False, {"XDG_CACHE_HOME": "relative"}).folder == home
    environ = {JAX_VARIABLE: str(tmp_path / "jax"), "XDG_CACHE_HOME": str(tmp_path)}
    assert cache_plan(False, environ) == cache_plan(False, environ).__class__(
        tmp_path / "jax", JAX_VARIABLE
    )
    for value in ("1", "yes", "true"):
        assert cache_plan(False, {DISABLE_VARIABLE: value, **environ}).folder is None
    for value in ("", "0", "false", "no", "off"):
        assert cache_plan(False, {DISABLE_VARIABLE: value}).folder == home
    assert cache_plan(True, environ).folder is None


def _compile_something(scale: float) -> None:
    """A program this test session has not compiled (its constant is new)."""
    jax.jit(lambda x: x * scale + 1.0)(jnp.arange(3.0)).block_until_ready()


def _entries(folder: Path) -> list[Path]:
    return [p for p in folder.glob("*") if p.is_file() and p.name.endswith("-cache")]


def test_the_default_folder_is_used_and_the_callers_settings_restored(tmp_path):
    before = (
        jax.config.jax_compilation_cache_dir,
        jax.config.jax_persistent_cache_min_compile_time_secs,
    )
    # every program written (threshold 0), so the tiny program shows up on disk
    environ = {
        "XDG_CACHE_HOME": str(tmp_path),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    }
    with compile_cache(environ=environ, warn=pytest.fail) as folder:
        assert folder == tmp_path / "jaxunc"
        assert jax.config.jax_compilation_cache_dir == str(folder)
        _compile_something(1.75)
        assert _entries(folder), "no executable written to the cache"
    after = (
        jax.config.jax_compilation_cache_dir,
        jax.config.jax_persistent_cache_min_compile_time_secs,
    )
    assert after == before
    with compile_cache(environ={"XDG_CACHE_HOME": str(tmp_path)}, warn=pytest.fail):
        assert (
            jax.config.jax_persistent_cache_min_compile_time_secs == MIN_COMPILE_SECONDS
        )


@pytest.mark.parametrize(
    ("disabled", "variable"), [(True, None), (False, "1")], ids=["flag", "variable"]
)
def test_opting_out_runs_uncached(disabled, variable, tmp_path):
    environ = {"XDG_CACHE_HOME": str(tmp_path)}
    if variable is not None:
        environ[DISABLE_VARIABLE] = variable
    before = jax.config.jax_compilation_cache_dir
    with compile_cache(disabled, environ=environ, warn=pytest.fail) as folder:
        assert folder is None
        assert jax.config.jax_compilation_cache_dir is None
        _compile_something(2.25)
    assert jax.config.jax_compilation_cache_dir == before
    assert list(tmp_path.iterdir()) == []  # no folder made, nothing written


def test_jax_variable_is_respected(tmp_path):
    """JAX configured itself from JAX_COMPILATION_CACHE_DIR (as in this test
    session): jaxunc changes nothing and writes nothing to the XDG folder."""
    before = jax.config.jax_compilation_cache_dir
    environ = {JAX_VARIABLE: before or "x", "XDG_CACHE_HOME": str(tmp_path)}
    with compile_cache(environ=environ, warn=pytest.fail) as folder:
        assert str(folder) == environ[JAX_VARIABLE]
        assert jax.config.jax_compilation_cache_dir == before
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_folder_warns_once_and_runs_uncached(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    messages = []
    environ = {"XDG_CACHE_HOME": str(blocker)}
    with compile_cache(environ=environ, warn=messages.append) as folder:
        assert folder is None and jax.config.jax_compilation_cache_dir is None
        _compile_something(3.5)
    (message,) = messages
    assert str(blocker / "jaxunc") in message and "without the persistent" in message


def test_the_command_applies_the_cache_and_the_opt_out(monkeypatch, tmp_path, capsys):
    """``main`` runs the command inside ``compile_cache`` with --no-compile-cache
    given before or after the command; an unwritable folder is one warning line."""
    seen = []

    def fake_run(args):
        seen.append(jax.config.jax_compilation_cache_dir)

    monkeypatch.setattr(cli, "_run", fake_run)
    monkeypatch.delenv(JAX_VARIABLE, raising=False)
    monkeypatch.delenv(DISABLE_VARIABLE, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cli.main(["toy"]) == 0
    assert cli.main(["toy", "--no-compile-cache"]) == 0
    assert cli.main(["--no-compile-cache", "toy"]) == 0
    assert seen == [str(tmp_path / "jaxunc"), None, None]
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    assert cli.main(["toy"]) == 0
    error = capsys.readouterr().err
    assert error.count("jaxunc: warning: cannot write the compilation cache") == 1
    assert seen[-1] is None
