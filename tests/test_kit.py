"""The kit's committed sweeps are found from any working directory, in a checkout and in an
installed wheel; the repository's address is one value; every chapter takes DEVICE and BF16."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import torch
import yaml

import isp_lib
from isp_lib import analysis, kit
from isp_lib import records as rec
from isp_lib import runs as runs_mod
from isp_lib.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
SWEEP = "minilm_lr_search"  # a small committed sweep with its records


def test_results_are_found_from_another_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    found = kit.results_dir()
    assert found.is_absolute() and found == ROOT / "results"
    assert (found / f"{SWEEP}.yaml").is_file() and (found / f"{SWEEP}.jsonl").is_file()


def test_an_installed_package_uses_the_results_it_ships(tmp_path, monkeypatch):
    package = tmp_path / "site-packages" / "isp_lib"
    (package / "results").mkdir(parents=True)
    monkeypatch.setattr(isp_lib, "__file__", str(package / "__init__.py"))
    assert kit.results_dir() == package / "results"
    (package / "results").rmdir()
    with pytest.raises(UserError, match="reinstall the kit"):
        kit.results_dir()


def test_load_reads_the_committed_records_from_elsewhere(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    recs = analysis.load([SWEEP], "cpu")
    out = capsys.readouterr().out
    assert recs and SWEEP in out.splitlines()[0]
    assert not any(tmp_path.iterdir()), "reading committed records writes nothing"


def test_status_line_names_the_located_configs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = analysis.status_line({"a": 1}, 0, 1, smoke=False)
    assert f"`isp sweep {ROOT / 'results' / 'a.yaml'}`" in line
    monkeypatch.chdir(ROOT)
    assert "`isp sweep results/a.yaml`" in analysis.status_line({"a": 1}, 0, 1, smoke=False)


def test_bf16_cells_are_other_cells_than_the_committed_records():
    path = kit.results_dir() / f"{SWEEP}.yaml"
    assert rec.load_or_run(path, bf16=True, missing="skip") == []
    assert len(rec.missing_cells(path, [], bf16=True)) == len(rec.load_sweep(path).cells) > 0


def test_bf16_is_automatic_only_at_the_paper_profile_on_native_bf16(monkeypatch):
    assert not kit.resolve_bf16(None, "paper", "cpu")
    with pytest.raises(UserError, match="without CUDA"):
        kit.resolve_bf16(True, "cpu", "cpu")
    with pytest.raises(UserError, match="without CUDA"):
        analysis.load([SWEEP], "cpu", device="cpu", bf16=True)
    monkeypatch.setattr(runs_mod, "resolve_device", lambda name: torch.device("cuda"))
    for capability, expected in (((7, 5), False), ((8, 0), True)):  # T4, A100
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d, c=capability: c)
        assert kit.resolve_bf16(None, "paper", "auto") is expected
        assert not kit.resolve_bf16(None, "cpu", "auto")
        assert kit.resolve_bf16(True, "cpu", "auto")


def test_the_wheel_ships_the_committed_sweeps_and_every_subpackage():
    tomllib = pytest.importorskip("tomllib")
    from setuptools import find_packages

    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {*find_packages(str(ROOT), include=["isp_lib*"]), "isp_lib.results"}
    listed = set(tool["packages"])
    assert listed == found, (f"pyproject.toml [tool.setuptools] packages: add {found - listed}, "
                             f"remove {listed - found}")
    assert tool["package-dir"] == {"isp_lib.results": "results"}
    patterns = tool["package-data"]["isp_lib.results"]
    shipped = {p.name for pattern in patterns for p in (ROOT / "results").glob(pattern)}
    wanted = {p.name for p in (ROOT / "results").iterdir()
              if p.is_file() and p.suffix in (".yaml", ".jsonl", ".md")}
    assert shipped == wanted


def kit_urls(chapter: Path) -> list[str]:
    """Every ``KIT_URL = "..."`` of a chapter, in its .py and its .ipynb."""
    ipynb = json.loads(chapter.with_suffix(".ipynb").read_text())
    sources = [chapter.read_text()] + ["".join(c["source"]) for c in ipynb["cells"]
                                       if c["cell_type"] == "code"]
    return [n.value.value for s in sources for n in ast.walk(ast.parse(s))
            if isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "KIT_URL"
                                                 for t in n.targets)]


def test_repository_url_is_config_yml_s_wherever_it_appears():
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    for chapter in CHAPTERS:  # Colab installs the kit before it can import it: one literal each
        assert kit_urls(chapter) == [url, url], f"{chapter.name}: KIT_URL is not {url}"
    others = [p for folder in ("isp_lib", "scripts", "tests", "book")
              for p in (ROOT / folder).rglob("*") if p.is_file() and p.suffix in
              (".py", ".md", ".yml", ".yaml", ".toml", ".txt")]
    others += [p for p in ROOT.glob("*") if p.suffix in (".md", ".toml", ".txt")]
    assert [p for p in others if url in p.read_text()] == []


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.name)
def test_chapters_take_device_and_bf16_parameters(chapter):
    source = chapter.read_text()
    params = source.split('# %% tags=["parameters"]', 1)[1].split("# %%", 1)[0]
    assert 'DEVICE = "auto"' in params and "BF16 = None" in params
    assert "bf16=BF16" in source or "resolve_bf16(BF16, PROFILE, DEVICE)" in source
