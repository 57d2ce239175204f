"""Every benchmark of bench/ runs at tiny sizes inside the test's Home Assistant, so that none can rot.

Only that each figure is produced and is a finite number is checked, never how fast: timing belongs to
`scripts/bench`, on a quiet machine, not to the test suite.
"""

from __future__ import annotations

import math
from typing import Any

from homeassistant.core import HomeAssistant
import pytest

from bench.__main__ import BENCHMARKS, function, render, table

pytestmark = pytest.mark.bench


@pytest.mark.parametrize("benchmark", BENCHMARKS, ids=lambda benchmark: benchmark.name)
async def test_benchmark_produces_its_figures(hass: HomeAssistant, socket_enabled: None, benchmark: Any) -> None:
    result = await function(benchmark.name)(**benchmark.smoke, hass=hass)

    assert result
    for name, value in result.items():
        assert isinstance(value, int | float), name
        assert math.isfinite(value), name
    rows = table({benchmark.name: result}, {benchmark.name: 1})
    assert rows
    assert benchmark.title.split()[0].lower() in render(rows).lower()
