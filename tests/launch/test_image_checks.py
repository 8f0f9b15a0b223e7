"""suites/image on real images: the pass and the fail paths of each check, with the post's CPU-torch rule.

The stand-in images are gx10-base plus tiny packages that carry only a version (and, for torch,
``torch.version.cuda``): enough for the checker, which reads what the image's Python reports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers.dockerkit import ROOT, RecipeFactory

IMAGE_SUITE = ROOT / "suites" / "image"
REFERENCE_EXPECT = """
[image.expect]
torch = "2.11.0+cu130"
torch_cuda = "13.0"
vllm = "0.22.1rc1.dev124+gace95c9cf*"
transformers = ">=5.0.0"
flashinfer = "0.6.12"
"""

STANDIN = """
import sys, pathlib
site = pathlib.Path("/usr/local/lib/python3.11/dist-packages")
site.mkdir(parents=True, exist_ok=True)
for spec in sys.argv[1:]:
    dist, version, *module = spec.split("=")
    (site / f"{dist.replace('-', '_')}-{version}.dist-info").mkdir()
    (site / f"{dist.replace('-', '_')}-{version}.dist-info" / "METADATA").write_text(
        f"Metadata-Version: 2.1\\nName: {dist}\\nVersion: {version}\\n")
    if dist == "torch":
        (site / "torch").mkdir()
        cuda = repr(module[0]) if module and module[0] != "None" else "None"
        (site / "torch" / "__init__.py").write_text(
            f"__version__ = {version!r}\\nclass version:\\n    cuda = {cuda}\\n")
"""


def _standin(client: Any, tmp_path: Path, tag: str, *specs: str) -> str:
    ctx = tmp_path / tag.replace(":", "-")
    ctx.mkdir()
    (ctx / "standin.py").write_text(STANDIN)
    (ctx / "Dockerfile").write_text(
        "FROM gx10-base:bookworm\nCOPY standin.py /tmp/standin.py\n"
        f"RUN python3 /tmp/standin.py {' '.join(specs)} && rm /tmp/standin.py\n"
    )
    client.images.build(path=str(ctx), tag=tag, rm=True, network_mode="none")
    return tag


@pytest.fixture(scope="module")
def standin_images(
    docker_engine: Any, twin_image: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """Two stand-ins: the post's pinned stack, and the regressed one (CPU torch, transformers 4)."""
    tmp = tmp_path_factory.mktemp("standin")
    return {
        "pinned": _standin(
            docker_engine,
            tmp,
            "gx10-standin:pinned",
            "torch=2.11.0+cu130=13.0",
            "vllm=0.22.1rc1.dev124+gace95c9cf.d20260603.cu132",
            "transformers=5.0.0",
            "flashinfer-python=0.6.12",
        ),
        "regressed": _standin(
            docker_engine,
            tmp,
            "gx10-standin:regressed",
            "torch=2.10.0+cpu=None",
            "vllm=0.22.1rc1.dev124+gace95c9cf.d20260603.cu132",
            "transformers=4.57.1",
        ),
    }


def _run(pytester: pytest.Pytester, recipe: Path) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        str(IMAGE_SUITE), f"--gx10-launch={recipe}", "-p", "no:cacheprovider", "-rA"
    )


def test_twin_image_meets_the_twin_recipe(twin_image: str, pytester: pytest.Pytester) -> None:
    """The bundled twin-docker recipe expects no inference stack, and its image has none."""
    result = _run(pytester, ROOT / "recipes" / "twin-docker.toml")
    result.assert_outcomes(passed=5)


def test_twin_image_fails_the_reference_expectations(
    docker_recipe: RecipeFactory, twin_image: str, pytester: pytest.Pytester
) -> None:
    """The twin's image against the reference pins: every check fails, saying what is missing."""
    result = _run(pytester, docker_recipe(extra=REFERENCE_EXPECT))
    result.assert_outcomes(failed=5)
    result.stdout.fnmatch_lines(
        [
            "*torch is not installed in image gx10-twin:latest; the recipe expects 2.11.0+cu130",
            "*vllm is not installed in image gx10-twin:latest; the recipe expects 0.22.1rc1.dev124+gace95c9cf*",
            "*transformers is not installed in image gx10-twin:latest; the recipe expects >=5.0.0",
        ],
        consecutive=False,
    )


def test_pinned_standin_meets_the_reference_expectations(
    docker_recipe: RecipeFactory, standin_images: dict[str, str], pytester: pytest.Pytester
) -> None:
    """An image whose Python reports the post's versions passes every check."""
    result = _run(pytester, docker_recipe(image=standin_images["pinned"], extra=REFERENCE_EXPECT))
    result.assert_outcomes(passed=5)


def test_regressed_standin_is_refused_with_the_posts_rule(
    docker_recipe: RecipeFactory, standin_images: dict[str, str], pytester: pytest.Pytester
) -> None:
    """torch 2.10.0+cpu where 2.11.0+cu130 is pinned: do not distribute; old transformers, no flashinfer."""
    result = _run(pytester, docker_recipe(image=standin_images["regressed"], extra=REFERENCE_EXPECT))
    result.assert_outcomes(passed=1, failed=4)
    image = standin_images["regressed"]
    result.stdout.fnmatch_lines(
        [
            f"*torch 2.10.0+cpu in image {image} is a CPU build; the recipe expects 2.11.0+cu130: the image "
            "silently regressed to CPU torch, do not distribute it",
            f"*torch 2.10.0+cpu in image {image} is not a CUDA build (torch.version.cuda is None); the recipe "
            "expects CUDA 13.0",
            f"*transformers 4.57.1 in image {image} is older than the recipe's floor >=5.0.0",
            f"*flashinfer-python is not installed in image {image}; the recipe expects 0.6.12",
        ],
        consecutive=False,
    )
    result.stdout.fnmatch_lines(["PASSED *test_image.py::test_image_holds[[]vllm[]]"])


def test_process_recipe_has_no_image(pytester: pytest.Pytester) -> None:
    """A process recipe skips the suite, saying it needs a docker recipe."""
    result = _run(pytester, ROOT / "recipes" / "smollm2-cpu.toml")
    result.assert_outcomes(skipped=5)
    result.stdout.fnmatch_lines(["*recipe smollm2-cpu is of kind 'process': it has no image*"])
