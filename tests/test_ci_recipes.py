"""The README's CI recipes (GitHub Actions, GitLab CI): valid YAML with the steps the README promises,
and their `kvmrun` command lines pass, and write their JUnit file, in a folder laid out as the recipes
assume."""
import os
import re
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from conftest import GUESTS, ROOT

SECTION = "### Running guest suites in CI"
REQUIREMENTS = "requirements-guests.txt"         # the file that pins kvmrun and keys the venv cache
UDEV_RULE = 'KERNEL=="kvm", GROUP="kvm", MODE="0666", OPTIONS+="static_node=kvm"'


def section_text(heading: str) -> str:
    """The README from `heading` to the next heading of its level or above (fenced lines are not headings)."""
    level = heading.index(" ")
    found, in_fence = [], False
    for line in (ROOT / "README.md").read_text().splitlines(keepends=True):
        if line.startswith("```"):
            in_fence = not in_fence
        elif not in_fence and re.match(rf"#{{1,{level}}} ", line):
            if found:
                break
            if line.rstrip("\n") == heading:
                found.append(line)
                continue
        if found:
            found.append(line)
    assert found, f"README.md has no section {heading!r}"
    return "".join(found)


def fenced_block(first_line: str, text: str) -> str:
    """The one fenced block in `text` whose first line starts with `first_line` (the file it shows)."""
    blocks = re.findall(r"^```\w*\n(.*?)^```", text, re.DOTALL | re.MULTILINE)
    matching = [block for block in blocks if block.startswith(first_line)]
    assert len(matching) == 1, f"README.md should have one block starting with {first_line!r} there"
    return matching[0]


def recipe(first_line: str) -> str:
    return fenced_block(first_line, section_text(SECTION))


def github_workflow() -> dict:
    return yaml.safe_load(recipe("# .github/workflows/guests.yml\n"))


def github_job() -> dict:
    (job,) = github_workflow()["jobs"].values()
    return job


def gitlab_job() -> dict:
    return yaml.safe_load(recipe("# .gitlab-ci.yml\n"))["guests"]


def command_lines(script: str | list[str]) -> list[str]:
    lines = script.splitlines() if isinstance(script, str) else script
    return [line.strip() for line in lines]


def kvmrun_lines(script: str | list[str]) -> list[str]:
    return [line for line in command_lines(script) if line.startswith("kvmrun ")]


def junit_file(command: str) -> str:
    found = re.search(r"--junit-xml[ =](\S+)", command)
    assert found, f"{command!r} writes no JUnit file"
    return found.group(1)



def test_kvmrun_is_installed_from_a_pinned_git_url():
    lines = recipe(f"# {REQUIREMENTS}\n").splitlines()[1:]
    assert len(lines) == 1 and re.fullmatch(r"kvmrun @ git\+https://\S+@.+", lines[0]), lines


def test_the_github_workflow_enables_kvm_caches_the_venv_and_keeps_the_junit_report():
    workflow = github_workflow()
    assert workflow.get("on", workflow.get(True))       # PyYAML reads a bare `on` key as YAML 1.1's true
    job = github_job()
    assert job["runs-on"] == "ubuntu-latest"
    steps = job["steps"]
    uses = [step.get("uses", "").split("@")[0] for step in steps]
    runs = [step.get("run", "") for step in steps]

    kvm = next(i for i, run in enumerate(runs) if UDEV_RULE in run)
    assert "sudo udevadm control --reload-rules" in command_lines(runs[kvm])
    assert "sudo udevadm trigger --name-match=kvm" in command_lines(runs[kvm])

    assert "actions/setup-python" in uses
    cache = steps[uses.index("actions/cache")]
    assert cache["with"]["path"] == ".venv"
    assert f"hashFiles('{REQUIREMENTS}')" in cache["with"]["key"]
    install = next(step for step in steps if f"pip install -r {REQUIREMENTS}" in step.get("run", ""))
    assert install.get("if") == f"steps.{cache['id']}.outputs.cache-hit != 'true'"

    suite = next(i for i, run in enumerate(runs) if kvmrun_lines(run))
    assert kvm < suite and uses.index("actions/cache") < suite
    (command,) = kvmrun_lines(runs[suite])
    assert command.startswith("kvmrun test ")
    upload = steps[uses.index("actions/upload-artifact")]
    assert upload.get("if") in ("always()", "${{ always() }}")
    assert upload["with"]["path"] == junit_file(command)


def test_the_gitlab_job_runs_on_a_kvm_runner_caches_the_venv_and_reports_junit_always():
    job = gitlab_job()
    assert job["tags"], "GitLab's hosted runners have no /dev/kvm: the job needs a runner's tag"
    assert job["cache"]["key"]["files"] == [REQUIREMENTS] and job["cache"]["paths"] == [".venv"]
    assert any(f"pip install -r {REQUIREMENTS}" in line for line in job["script"])
    (command,) = kvmrun_lines(job["script"])
    assert command.startswith("kvmrun test ")
    artifacts = job["artifacts"]
    assert artifacts["when"] == "always"
    assert artifacts["reports"]["junit"] == junit_file(command)

    runner = tomllib.loads(recipe("# /etc/gitlab-runner/config.toml"))
    (docker_runner,) = runner["runners"]
    assert docker_runner["executor"] == "docker" and "/dev/kvm" in docker_runner["docker"].get("devices", [])


def recipe_commands() -> list[tuple[str, str]]:
    commands = [("github", line) for step in github_job()["steps"] for line in kvmrun_lines(step.get("run", ""))]
    commands += [("gitlab", line) for line in kvmrun_lines(gitlab_job()["script"])]
    return commands


def lay_out_repository(folder: Path, *, failing: bool) -> None:
    """The layout the CI section assumes: the README's manifest example as kvmrun.toml, images under
    build/guests; `failing` adds a guest whose expectation does not hold."""
    (folder / "build").mkdir()
    (folder / "build" / "guests").symlink_to(GUESTS)
    manifest = fenced_block("# kvmrun.toml\n", (ROOT / "README.md").read_text())
    if failing:
        manifest += '\n[[guest]]\nname = "wrong expectation"\nimage = "build/guests/hello64.elf"\n' \
                    'expect_serial = "^Goodbye"\n'
    (folder / "kvmrun.toml").write_text(manifest)


def run_as_the_recipe_does(command: str, folder: Path) -> subprocess.CompletedProcess:
    """The command line through a shell, with this venv's bin first on PATH (the recipes activate theirs)."""
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / "kvmrun").exists(), f"no kvmrun script beside {sys.executable}"
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run(command, shell=True, cwd=folder, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.kvm
@pytest.mark.parametrize("ci,command", recipe_commands())
def test_the_recipe_command_passes_and_writes_its_junit_file(ci, command, tmp_path):
    lay_out_repository(tmp_path, failing=False)
    result = run_as_the_recipe_does(command, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    suite = ET.parse(tmp_path / junit_file(command)).getroot()
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "0", "0")


@pytest.mark.kvm
@pytest.mark.parametrize("ci,command", recipe_commands())
def test_a_failing_guest_fails_the_job_and_still_leaves_the_report_to_upload(ci, command, tmp_path):
    """What `if: always()` and `when: always` are there for: the report of a failed run."""
    lay_out_repository(tmp_path, failing=True)
    result = run_as_the_recipe_does(command, tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    suite = ET.parse(tmp_path / junit_file(command)).getroot()
    assert (suite.get("tests"), suite.get("failures")) == ("4", "1")
    (failure,) = suite.iter("failure")
    assert "Goodbye" in failure.get("message", "")
