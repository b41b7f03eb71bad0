"""The repository's public face: licences, citation, workflows and README links follow the one
place each fact is configured (pyproject.toml, _config.yml). `make meta` validates the workflow
files (actionlint) and CITATION.cff (cffconvert); these tests keep them in step."""

import re
from pathlib import Path

import yaml

from mricourse.course.notebooks import colab_url

ROOT = Path(__file__).resolve().parents[1]


def _repository() -> tuple[str, str]:
    repo = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    return repo["url"].rstrip("/"), repo.get("branch", "main")


def test_citation_follows_pyproject_and_config():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    version = re.search(r'^__version__ = "([^"]+)"', (ROOT / "mricourse" / "_version.py").read_text(), re.MULTILINE).group(1)
    url, _ = _repository()
    assert cff["cff-version"] == "1.2.0"
    assert str(cff["version"]) == version, "CITATION.cff's version is not the package's (mricourse/_version.py)"
    assert cff["repository-code"] == url, "CITATION.cff's repository-code is not _config.yml's repository.url"
    owner, name = re.fullmatch(r"https://github\.com/([^/]+)/([^/]+)", url).groups()
    assert cff["url"] == f"https://{owner.lower()}.github.io/{name}/", "CITATION.cff's url is not the book's GitHub Pages address"
    assert cff["license"] == "MIT"


def test_licences_are_stated():
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert "Attribution 4.0 International" in (ROOT / "LICENSE-CONTENT").read_text()
    for page in ("README.md", "book/intro.md"):
        text = (ROOT / page).read_text()
        assert "MIT" in text and "CC BY 4.0" in text, f"{page} does not say which licence covers what"
        assert "McConnell Brain Imaging Centre" in text, f"{page} does not carry the MNI template's notice"


def test_readme_badges_and_links_follow_config():
    readme = (ROOT / "README.md").read_text()
    url, branch = _repository()
    for workflow in ("tests.yml", "book.yml"):
        assert (ROOT / ".github" / "workflows" / workflow).exists()
        assert f"{url}/actions/workflows/{workflow}/badge.svg" in readme, f"no badge for {workflow}"
    assert colab_url(url, branch, "notebooks/01_mri_physics.ipynb") in readme, "the Colab badge does not open chapter 1"


def test_workflows_run_the_make_targets():
    tests = yaml.safe_load((ROOT / ".github/workflows/tests.yml").read_text())
    book = yaml.safe_load((ROOT / ".github/workflows/book.yml").read_text())

    def runs(workflow):
        return [step.get("run", "") for job in workflow["jobs"].values() for step in job.get("steps", [])]

    assert "make test" in runs(tests), "the tests workflow must run the README's test command"
    assert "make book" in runs(book)
    assert book["jobs"]["build"]["env"]["MRICOURSE_PROFILE"] == "cpu"
