"""The synthetic catalog: deterministic H.264 + AAC movies made from ffmpeg's lavfi sources,
with motion and noise so that transcoding them costs a realistic effort."""

from __future__ import annotations

import collections
import os
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dacirco.ffmpeg_bin import ffmpeg_exe

DEFAULT_COUNT = 10
# Seconds per movie; bbb_i grows with i (the popular movies are the long ones).
DURATIONS = (4.0, 5.0, 7.0, 10.0, 13.0, 18.0, 24.0, 33.0, 44.0, 60.0)
MIN_DURATION = 1.0
HEIGHTS = (720, 1080)  # even i -> 720p, odd i -> 1080p
FRAME_RATES = (25, 30)  # (i // 2) even -> 25 fps, odd -> 30 fps: every size at both rates
BASE_SIZE = "320x180"  # size of the drawn backgrounds before scaling
VISUALS = ("testsrc2", "life", "zoneplate", "cellauto", "sierpinski")
KBPS_PER_LINE = 9000 / 1080  # 9 Mbit/s at 1080p, 6 Mbit/s at 720p, 3 Mbit/s at 360p
KEYFRAME_SECONDS = 2
AUDIO_RATE = 48000
AUDIO_KBPS = 128
PRESET = "ultrafast"
# x264's output depends on its thread count, so it is fixed; and the rate control is one-pass
# ABR without VBV (-maxrate/-bufsize): with VBV, frame threads make every run differ.
X264_THREADS = 4
# Limited-range BT.709 yuv420p, as a real HD movie (RGB sources would give full range).
TO_YUV = "scale=out_color_matrix=bt709:out_range=tv:flags=bitexact,format=yuv420p"
BT709 = "setparams=range=tv:color_primaries=bt709:color_trc=bt709:colorspace=bt709"
ProgressCallback = Callable[[int, int], None]  # (frames done, frames in all)


class GenerationError(RuntimeError):
    """ffmpeg failed; the message carries the last lines it wrote to stderr."""


@dataclass(frozen=True)
class MovieSpec:
    name: str
    index: int
    width: int
    height: int
    fps: int
    frames: int
    visual: str
    seed: int
    video_kbps: int

    @property
    def duration(self) -> float:
        return self.frames / self.fps


def _size(height: int, max_height: int | None) -> tuple[int, int]:
    if max_height is not None:
        height = min(height, max_height)
    height = max(2, height - height % 2)
    width = round(height * 16 / 9)
    return width + width % 2, height


def movie_spec(
    index: int, *, duration_scale: float = 1.0, max_height: int | None = None
) -> MovieSpec:
    """The spec of ``bbb_<index>.mp4``; sizes and durations repeat every ten movies."""
    if duration_scale <= 0:
        raise ValueError(f"duration_scale must be positive, not {duration_scale}")
    if max_height is not None and max_height < 16:
        raise ValueError(f"max_height must be at least 16, not {max_height}")
    width, height = _size(HEIGHTS[index % 2], max_height)
    fps = FRAME_RATES[(index // 2) % 2]
    duration = max(MIN_DURATION, DURATIONS[index % len(DURATIONS)] * duration_scale)
    return MovieSpec(
        name=f"bbb_{index}.mp4",
        index=index,
        width=width,
        height=height,
        fps=fps,
        frames=max(1, round(duration * fps)),
        visual=VISUALS[index % len(VISUALS)],
        seed=1000 + index,
        video_kbps=max(300, round(KBPS_PER_LINE * height)),
    )


def default_specs(
    count: int = DEFAULT_COUNT, *, duration_scale: float = 1.0, max_height: int | None = None
) -> list[MovieSpec]:
    if count < 0:
        raise ValueError(f"count must not be negative, not {count}")
    return [
        movie_spec(i, duration_scale=duration_scale, max_height=max_height) for i in range(count)
    ]


def _background(spec: MovieSpec) -> str:
    """A moving background, drawn at a fixed small size and scaled to the movie's size.

    Colours are converted to yuv420p while the picture is small: converting at full size
    costs more than encoding the movie.
    """
    w, h, r, seed = spec.width, spec.height, spec.fps, spec.seed
    small = f"s={BASE_SIZE}:r={r}"
    blocky = f"{TO_YUV},scale={w}:{h}:flags=neighbor+bitexact"
    smooth = f"{TO_YUV},scale={w}:{h}:flags=bicubic+bitexact"
    tint = "format=rgb24,lutrgb=r='val*0.8+30':g='val*0.5+40':b='val*0.3+90'"
    if spec.visual == "testsrc2":
        return f"testsrc2=s={w}x{h}:r={r},format=yuv420p,hue=H=0.4*t"  # drawn in yuv
    if spec.visual == "life":
        return (
            f"life={small}:seed={seed}:ratio=0.25:mold=12:"
            f"life_color=#ffd040:death_color=#102060:mold_color=#30a060,{blocky}"
        )
    if spec.visual == "zoneplate":
        return f"zoneplate={small}:kx2=24:ky2=32:kt=4:ku=32:kv=96,{smooth},hue=H=0.3*t"
    if spec.visual == "cellauto":
        cells = f"cellauto={small}:seed={seed}:rule=110:random_fill_ratio=0.5"
        return f"{cells},{tint},{blocky},hue=H=0.6*t"
    if spec.visual == "sierpinski":
        fractal = f"sierpinski={small}:seed={seed}:jump=10:type=triangle"
        return f"{fractal},{tint},{smooth},hue=H=-0.5*t"
    raise ValueError(f"unknown visual {spec.visual!r}")


def filter_graph(spec: MovieSpec) -> str:
    """Background, a bouncing test card on top, then temporal noise; tone + pink noise audio."""
    w, h, r, seed = spec.width, spec.height, spec.fps, spec.seed
    ow, oh = max(2, w // 4 // 2 * 2), max(2, h // 4 // 2 * 2)
    px, py = 5 + spec.index % 4, 7 + spec.index % 3  # seconds per sweep, varied per movie
    duration = f"{spec.duration:.6f}"
    tone = 220 * (1 + spec.index % 5)
    return ";".join(
        [
            f"{_background(spec)}[bg]",
            f"testsrc2=s={ow}x{oh}:r={r},{TO_YUV}[card]",
            f"[bg][card]overlay=x='(W-w)*(0.5+0.5*sin(2*PI*t/{px}))':"
            f"y='(H-h)*(0.5+0.5*cos(2*PI*t/{py}))':eval=frame,"
            f"noise=alls=10:allf=t+u:all_seed={seed},{BT709},setsar=1[v]",
            f"sine=frequency={tone}:sample_rate={AUDIO_RATE}:duration={duration}[tone]",
            f"anoisesrc=color=pink:amplitude=0.08:seed={seed}:sample_rate={AUDIO_RATE}:"
            f"duration={duration}[hiss]",
            "[tone][hiss]amix=inputs=2:normalize=0,aformat=channel_layouts=stereo[a]",
        ]
    )


def ffmpeg_command(spec: MovieSpec, dest: Path) -> list[str]:
    gop = KEYFRAME_SECONDS * spec.fps
    kbps = spec.video_kbps
    return [
        ffmpeg_exe(),
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-y",
        "-filter_complex",
        filter_graph(spec),
        "-map",
        "[v]",
        "-map",
        "[a]",
        "-frames:v",
        str(spec.frames),
        "-c:v",
        "libx264",
        "-preset",
        PRESET,
        "-pix_fmt",
        "yuv420p",
        "-b:v",
        f"{kbps}k",
        "-g",
        str(gop),
        "-keyint_min",
        str(gop),
        "-sc_threshold",
        "0",
        "-x264-params",
        f"threads={X264_THREADS}",
        "-c:a",
        "aac",
        "-b:a",
        f"{AUDIO_KBPS}k",
        "-ar",
        str(AUDIO_RATE),
        "-map_metadata",
        "-1",
        "-fflags",
        "+bitexact",
        "-flags:v",
        "+bitexact",
        "-flags:a",
        "+bitexact",
        "-movflags",
        "+faststart",
        "-progress",
        "pipe:1",
        "-nostats",
        "-f",
        "mp4",
        str(dest),
    ]


def generate_movie(
    spec: MovieSpec, dest: Path, progress_cb: ProgressCallback | None = None
) -> None:
    """Write the movie to ``dest`` (atomically: a partial file never takes its name)."""
    dest = Path(dest)
    part = dest.with_name(f".{dest.name}.part")
    proc = subprocess.Popen(
        ffmpeg_command(spec, part),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    tail: collections.deque[str] = collections.deque(maxlen=15)
    reader = threading.Thread(target=lambda: tail.extend(proc.stderr or ()), daemon=True)
    reader.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            key, _, value = line.strip().partition("=")
            if key == "frame" and value.isdigit() and progress_cb is not None:
                progress_cb(min(int(value), spec.frames), spec.frames)
        code = proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        part.unlink(missing_ok=True)
        raise
    finally:
        reader.join(timeout=5)
    if code != 0:
        part.unlink(missing_ok=True)
        detail = "\n".join(line.rstrip() for line in tail if line.strip()) or "no message"
        raise GenerationError(f"ffmpeg failed on {spec.name} (exit code {code}):\n{detail}")
    os.replace(part, dest)
    if progress_cb is not None:
        progress_cb(spec.frames, spec.frames)
