"""The course's exercises stay solvable and stay exercises (docs/course/exercises/<name>/).

Each exercise has start.c (what the learner edits), solution.c (a reference solution) and check.sh FILE
(compiles FILE against the library and checks what it does). Every solution must pass its check, and
every unedited start file must fail it: an exercise whose start already passes asks for nothing.
"""

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXERCISES = ROOT / "docs" / "course" / "exercises"
NAMES = sorted(p.name for p in EXERCISES.iterdir() if (p / "check.sh").exists())


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    # one library build for every check, outside the clone
    return dict(os.environ, MG_COURSE_BUILD=str(tmp_path_factory.mktemp("course-build")))


def check(name, file, env):
    return subprocess.run(
        ["bash", str(EXERCISES / name / "check.sh"), str(EXERCISES / name / file)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_there_are_exercises_and_each_is_complete():
    assert len(NAMES) >= 6
    for name in NAMES:
        for part in ("start.c", "solution.c", "check.sh"):
            assert (EXERCISES / name / part).exists(), f"{name} has no {part}"


@pytest.mark.parametrize("name", NAMES)
def test_the_solution_passes_its_check(name, env):
    done = check(name, "solution.c", env)
    assert done.returncode == 0, f"{name}: the solution fails its check:\n{done.stdout}\n{done.stderr}"
    assert f"passed: {name}" in done.stdout


@pytest.mark.parametrize("name", NAMES)
def test_the_unedited_start_fails_its_check(name, env):
    done = check(name, "start.c", env)
    assert done.returncode == 1, f"{name}: start.c exits {done.returncode}:\n{done.stdout}\n{done.stderr}"
    assert "not yet:" in done.stderr, f"{name}: the check does not say what is missing:\n{done.stderr}"


def test_the_course_index_lists_every_exercise():
    index = (ROOT / "docs" / "course" / "README.md").read_text(encoding="utf-8")
    for name in NAMES:
        assert name in index, f"docs/course/README.md does not list the exercise {name}"
