"""The moons demo, `python -m micrograd_c demo`: runs headless, writes the plot (or not, with --no-plot),
and gets the same data with or without scikit-learn."""

import os
import subprocess
import sys

import pytest
from _helpers import require
from micrograd_c import demo

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run_demo(*args, cwd):
    env = dict(os.environ, MPLBACKEND="Agg")
    env.pop("DISPLAY", None)
    result = subprocess.run(
        [sys.executable, "-m", "micrograd_c", "demo", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"demo failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_demo_writes_the_plot_headless(tmp_path):
    require("matplotlib")
    out = tmp_path / "plots" / "moons.png"
    stdout = run_demo("--steps", "5", "--out", str(out), cwd=tmp_path)
    assert "final loss" in stdout and "accuracy" in stdout
    assert f"wrote {out}" in stdout
    data = out.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["moons.png"]


def test_demo_no_plot_writes_nothing(tmp_path):
    stdout = run_demo("--steps", "2", "--quiet", "--no-plot", "--data", "builtin", cwd=tmp_path)
    assert "built-in make_moons" in stdout and "final loss" in stdout
    assert list(tmp_path.iterdir()) == []


def test_demo_without_matplotlib_still_succeeds(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.chdir(tmp_path)
    assert demo.main(["--steps", "2", "--quiet"]) == 0
    stdout = capsys.readouterr().out
    assert "matplotlib is not installed" in stdout and "pip install 'micrograd-c[demo]'" in stdout
    assert list(tmp_path.iterdir()) == []


def test_builtin_moons_equal_sklearns(monkeypatch):
    require("sklearn")
    X_sklearn, y_sklearn = demo.load_moons(source="sklearn")
    assert demo.moons_source("auto") == "sklearn"
    # scikit-learn missing: "auto" falls back to the built-in generator, with the same numbers
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    assert demo.moons_source("auto") == "builtin"
    X, y = demo.load_moons()
    assert X == X_sklearn and y == y_sklearn
    assert len(X) == 100 and set(y) == {-1, 1}
    with pytest.raises(ImportError, match="scikit-learn is not installed"):
        demo.load_moons(source="sklearn")


def test_model_scores_match_the_model():
    require("numpy")
    model, X, _, _ = demo.train(steps=2, source="builtin")
    scores = demo.model_scores(model, X)
    for row, score in zip(X, scores):
        assert abs(model(row).data - score) <= 1e-12 * max(1.0, abs(score))
