"""Every request field of vLLM's chat and completions models is sent by the real conformance table or
listed as deliberately left out, with its reason (tests/helpers/conformance_fields.py).

The fields are read from the installed vLLM's protocol source (the real tier's virtualenv) with
``ast``, without importing vLLM, so a field a later vLLM adds fails here by name.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from helpers.conformance_fields import COVERED, NOT_COVERED, PROTOCOLS, vllm_site_packages
from helpers.realserver import not_ready, real_paths

CONFORMANCE = Path(__file__).resolve().parents[1] / "real" / "test_conformance.py"
PATHS = {"chat": "/v1/chat/completions", "completion": "/v1/completions"}


def request_fields(source: str, class_name: str) -> list[str]:
    """The pydantic fields a request model declares: its annotated class attributes, private ones
    (``_name``) left out."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            return [
                stmt.target.id
                for stmt in node.body
                if isinstance(stmt, ast.AnnAssign)
                and isinstance(stmt.target, ast.Name)
                and not stmt.target.id.startswith("_")
            ]
    raise AssertionError(f"no class {class_name} in the source")


@pytest.fixture(scope="module")
def vllm_dir() -> Path:
    venv = real_paths()["venv"]
    found = vllm_site_packages(venv)
    if found is None:
        not_ready(f"vLLM is not installed in {venv}")
    assert found is not None
    return found


@pytest.fixture(scope="module")
def conformance() -> ModuleType:
    spec = importlib.util.spec_from_file_location("conformance_table", CONFORMANCE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_request_fields_read_from_source() -> None:
    source = """
class Other(Base):
    skipped: int = 0

class Req(Base):
    model: str | None = None
    top_k: int | None = None
    _private: int = 0
    field_names: ClassVar[set[str] | None] = None
    def method(self) -> None:
        local: int = 0
"""
    assert request_fields(source, "Req") == ["model", "top_k", "field_names"]
    with pytest.raises(AssertionError, match="no class Missing"):
        request_fields(source, "Missing")


@pytest.mark.parametrize("endpoint", sorted(PROTOCOLS))
def test_every_vllm_request_field_is_covered_or_explained(endpoint: str, vllm_dir: Path) -> None:
    module, class_name = PROTOCOLS[endpoint]
    fields = set(request_fields((vllm_dir / module).read_text(), class_name))
    assert len(fields) > 40, sorted(fields)
    covered, left_out = COVERED[endpoint], NOT_COVERED[endpoint]
    new = sorted(fields - covered - left_out.keys())
    assert not new, (
        f"{class_name} has fields the conformance table neither sends nor lists as left out: {new}; "
        "add a case to tests/real/test_conformance.py or a reason to tests/helpers/conformance_fields.py"
    )
    gone = sorted((covered | left_out.keys()) - fields)
    assert not gone, f"listed for {endpoint} but not a field of {class_name} any more: {gone}"


@pytest.mark.parametrize("endpoint", sorted(PROTOCOLS))
def test_lists_are_disjoint_and_reasoned(endpoint: str) -> None:
    both = COVERED[endpoint] & NOT_COVERED[endpoint].keys()
    assert not both, f"both covered and left out: {sorted(both)}"
    for name, reason in NOT_COVERED[endpoint].items():
        assert len(reason) > 10, f"{name}: no reason given"


@pytest.mark.parametrize("endpoint", sorted(PROTOCOLS))
def test_covered_fields_are_the_fields_the_table_sends(endpoint: str, conformance: ModuleType) -> None:
    """COVERED says exactly which fields the table's requests send (suffix only in a refused one: vLLM
    refuses it for every model without fill-in-the-middle rendering, SmolLM2 included)."""
    sent: set[str] = set()
    for case in conformance.CASES:
        body: Any = case.body
        if case.path == PATHS[endpoint] and isinstance(body, dict):
            sent |= set(body)
    assert sent == set(COVERED[endpoint]), (
        f"sent but not listed: {sorted(sent - COVERED[endpoint])}, "
        f"listed but never sent: {sorted(COVERED[endpoint] - sent)}"
    )
