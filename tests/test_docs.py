"""The README's generated sections match the code; its test command is what CI runs."""

from conftest import ROOT

from converter.readme import render


def test_readme_generated_sections_are_current():
    text = (ROOT / "README.md").read_text()
    assert render(text) == text, "run: python -m converter.readme"


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / "README.md").read_text()
    assert "make test" in (ROOT / ".ci" / "run").read_text()
