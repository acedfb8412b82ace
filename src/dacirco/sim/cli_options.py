"""The options ``dacirco simulate`` and ``dacirco compare`` share, as command-line options:
each fills the field of ``SimOptions`` (``sim/options.py``) of its name and defaults to that
field's default; a command that declares ``options: SimOptions`` gets them all (``sim_options``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dacirco.cli_options import PolicyKnob, option, option_for, shared_options
from dacirco.sim.options import SimOptions

Nodes = Annotated[int | None, typer.Option(help="nodes (default: the reference, 3)")]
Cores = Annotated[int, typer.Option(help="cores per node")]
Memory = Annotated[float, typer.Option(help="GB of memory per node")]
Flavor = Annotated[str, typer.Option(help="worker flavor: tiny, small, medium")]
MaxWorkers = Annotated[
    int | None,
    typer.Option(help="most workers at once (default: one per core, so capacity binds first)"),
]
MaxIdle = Annotated[float, typer.Option(help="grace-period: seconds an idle worker is kept")]
CallInterval = Annotated[float, typer.Option(help="seconds between two policy ticks")]
RuntimeOpt = Annotated[str, typer.Option("--runtime", "-r", help="vm, pod or local (boot times)")]
CalibrationOpt = Annotated[Path | None, typer.Option(help="calibration file (dacirco calibrate)")]
Jobs = Annotated[int, typer.Option("--jobs", "-n", min=1, help="requests per run")]
Load = Annotated[float | None, typer.Option(help="stretch arrivals to this offered load rho")]
Param = Annotated[
    list[str] | None, typer.Option("--param", help="generator parameter, KEY=VALUE (repeatable)")
]
DurationScale = Annotated[float, typer.Option(help="catalog: --duration-scale it was seeded with")]
MaxHeight = Annotated[int | None, typer.Option(help="catalog: --max-height it was seeded with")]
CatalogOpt = Annotated[
    str,
    typer.Option(
        "--catalog",
        help="default (movies of 4-60 s) or short (clips of 5-15 s, as long as a VM boot)",
    ),
]
Exact = Annotated[bool, typer.Option(help="call the policy on every tick (no shortcut)")]
SplitOpt = Annotated[
    bool,
    typer.Option(
        "--split/--no-split",
        help="let policies split jobs in chunks encoded on several workers, then merged",
    ),
]

PrioritiesOpt = Annotated[
    str | None,
    typer.Option(
        "--priorities",
        help="the requests' priorities, PRIORITY:SHARE,... (-50..50; e.g. 50:0.1,0:0.9: 10 %"
        " at 50, 90 % at 0), drawn per request from the seed; default: every request at 0",
    ),
]
Repeats = Annotated[
    float,
    typer.Option(
        help="share of requests (0..1) that repeat an earlier request (its movie, bitrate and "
        "speed), drawn from the seed",
    ),
]
ReuseOpt = Annotated[
    bool,
    typer.Option(
        "--reuse/--no-reuse",
        help="identical requests share one output, as in the service (reused ones are "
        "counted apart)",
    ),
]
LadderShare = Annotated[
    float,
    typer.Option(
        help="share of requests (0..1) that ask for --ladder-preset instead of one MP4, drawn "
        "from the seed",
    ),
]
LadderPreset = Annotated[
    str,
    typer.Option(
        help="the shipped preset ladder requests ask for: hls-ladder, dash-ladder, mp4-720p or "
        "audio (fitted to each movie's height, as the service does)",
    ),
]
LadderQuality = Annotated[
    bool,
    typer.Option(
        "--ladder-quality/--no-ladder-quality",
        help="ladder requests measure their quality (VMAF, PSNR, SSIM)",
    ),
]
LadderThumbnails = Annotated[
    float | None,
    typer.Option(help="ladder requests make thumbnails, one every N seconds (1..60)"),
]
PriorityAging = Annotated[
    float, typer.Option(help="seconds of waiting worth one priority level (the core's aging)")
]


def _params(items: list[str] | None) -> dict[str, float]:
    out = {}
    for item in items or []:
        k, sep, v = item.partition("=")
        try:
            out[k.strip()] = float(v)
        except ValueError:
            sep = ""
        if not sep:
            raise typer.BadParameter(f"{item!r}: expected KEY=NUMBER", param_hint="--param")
    return out


# The options simulate and compare share: each fills the field of SimOptions of its name and
# defaults to that field's default; --param (KEY=NUMBER, repeatable) fills ``params``.
SIM_OPTIONS = {
    "jobs": Jobs,
    "load": Load,
    "nodes": Nodes,
    "cores": Cores,
    "memory": Memory,
    "flavor": Flavor,
    "max_workers": MaxWorkers,
    "max_idle_time": MaxIdle,
    "call_interval": CallInterval,
    "runtime": RuntimeOpt,
    "calibration": CalibrationOpt,
    "duration_scale": DurationScale,
    "max_height": MaxHeight,
    "catalog": CatalogOpt,
    "exact": Exact,
    "split": SplitOpt,
    "priorities": PrioritiesOpt,
    "priority_aging": PriorityAging,
    "repeats": Repeats,
    "reuse": ReuseOpt,
    "ladder_share": LadderShare,
    "ladder_preset": LadderPreset,
    "ladder_quality": LadderQuality,
    "ladder_thumbnails": LadderThumbnails,
    "policy_knob": PolicyKnob,
}


def _sim_options(param: list[str] | None, **values: object) -> SimOptions:
    values["policy_knob"] = tuple(values.get("policy_knob") or ())  # type: ignore[arg-type]
    return SimOptions(params=_params(param), **values)  # type: ignore[arg-type]


_PARAMETERS = [option_for(SimOptions, name, annotated) for name, annotated in SIM_OPTIONS.items()]
_PARAMETERS.insert(2, option("param", Param, None))  # after --load
# A command that declares ``options: SimOptions`` gets all of them, as one SimOptions.
sim_options = shared_options(_PARAMETERS, _sim_options, "options")
