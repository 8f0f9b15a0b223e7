"""The image a docker recipe deploys holds the inference stack the recipe pins.

Runs a short-lived container of the recipe's image (no network, removed at once) and compares what
its Python finds with the recipe's ``[image.expect]``: torch and its CUDA version, vLLM,
transformers and flashinfer. The reference post's rule: torch must print ``2.11.0+cu130 13.0``; a
``2.10.0+cpu`` means the rebuild silently regressed, and the image must not be distributed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from pytest_gx10.launch import LaunchError, Recipe
from pytest_gx10.launch.image import PACKAGES, ImageFacts, check_expectation, probe_image
from pytest_gx10.report.provenance import image_facts as image_versions
from pytest_gx10.settings import Settings

NO_RECIPE = "the image suite checks a docker recipe's image: pass --gx10-launch=recipes/NAME.toml"


@pytest.fixture(scope="module")
def image_recipe(gx10_settings: Settings) -> Recipe:
    """The docker recipe under test (skips without one)."""
    recipe = gx10_settings.launch
    if recipe is None:
        pytest.skip(NO_RECIPE)
    if recipe.kind != "docker":
        pytest.skip(f"recipe {recipe.name} is of kind {recipe.kind!r}: it has no image ({NO_RECIPE})")
    return recipe


@pytest.fixture(scope="module")
def image_facts(image_recipe: Recipe) -> ImageFacts:
    """Versions found in the recipe's image, read once per module."""
    try:
        return probe_image(image_recipe)
    except LaunchError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.mark.parametrize("package", list(PACKAGES))
def test_image_holds(
    package: str,
    image_recipe: Recipe,
    image_facts: ImageFacts,
    gx10_note_deployment: Callable[[str, Mapping[str, Any]], None],
) -> None:
    """The package's version in the image meets the recipe's expectation.

    What the image holds joins the results' deployment block (source ``image``), checked or not.
    """
    gx10_note_deployment("image", image_versions(image_facts.image, image_facts.versions))
    expected = image_recipe.image.expect.get(package) if image_recipe.image else None
    if expected is None:
        pytest.skip(f"recipe {image_recipe.name} sets no [image.expect] {package} ({image_recipe.path})")
    problem = check_expectation(package, expected, image_facts)
    assert problem is None, problem
