"""The plugin's per-run state, kept in ``config.stash[GX10_STATE]``."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from pytest_gx10.launch import LaunchError, Target, TwinProcess
from pytest_gx10.report import ResultsStore
from pytest_gx10.settings import Settings

__all__ = ["GX10_STATE", "RECORD_PROPERTY", "Gx10State"]

RECORD_PROPERTY = "gx10"  # the user_properties name under which tests record figures


@dataclass
class Gx10State:
    """Everything the plugin knows about this run's target."""

    settings: Settings
    controller_target: Target | None = None  # set on xdist workers: the controller's target
    twin: TwinProcess | None = None
    results: ResultsStore = field(default_factory=ResultsStore)
    is_worker: bool = False
    _target: Target | None = field(default=None, repr=False)

    def target(self) -> Target:
        """The run's one target; starts the embedded twin on first use when it is the target."""
        if self._target is not None:
            return self._target
        if self.controller_target is not None:
            self._target = self.controller_target
        elif self.settings.use_twin:
            profile = self.settings.profile
            self.twin = TwinProcess(str(profile.path), api_key=self.settings.api_key)
            try:
                url = self.twin.start()
            except LaunchError:
                self.twin = None
                raise
            self._target = Target(
                url=url, kind="twin", description=self.twin.banner, log_path=self.twin.log_path
            )
        else:
            assert self.settings.endpoint is not None
            self._target = Target(
                url=self.settings.endpoint, kind="attach", description=f"attached to {self.settings.endpoint}"
            )
        return self._target

    def close(self) -> None:
        """Stop whatever this process started."""
        if self.twin is not None:
            self.twin.stop()
            self.twin = None


GX10_STATE = pytest.StashKey[Gx10State]()
