"""The simulator's clock, event heap, models, calibration file and lower bound."""

from __future__ import annotations

import dataclasses
import math
import random

import pytest

from dacirco.sim.bound import lower_bound, srpt_flows
from dacirco.sim.calibrate import Calibration, Line, coefficient_of_variation, fit_line, key
from dacirco.sim.cluster import DataCenter
from dacirco.sim.engine import Engine
from dacirco.sim.models import P1080, BootModel, Models, Movie, TranscodeModel
from dacirco.sim.workload import CatalogShape, make_jobs, offered_load, requests_for, service_s


def test_engine_pops_simultaneous_events_together_in_insertion_order():
    e = Engine()
    e.at(2.0, 1, "b")
    e.at(1.0, 1, "a")
    e.at(2.0, 2, "c")
    assert e.pop_batch() == [(1, "a")] and e.now == 1.0
    assert e.pop_batch() == [(1, "b"), (2, "c")] and e.now == 2.0
    assert len(e) == 0
    with pytest.raises(ValueError):
        e.at(1.0, 1)


def movie(height: int = 1080, width: int = 1920, fps: float = 30, duration: float = 100.0):
    return Movie("m", duration, width, height, fps, 10**7)


def test_transcode_model_reproduces_the_spec_figures():
    tm = TranscodeModel("vm")
    hd, uhd = movie(), movie(2160, 3840)

    def ratio(m: Movie, cores: int) -> float:
        return (tm.seconds(m, "hevc", "ultrafast", cores) - 0.2) / m.duration

    assert ratio(hd, 2) == pytest.approx(1.0, rel=0.01)
    assert ratio(uhd, 2) == pytest.approx(3.9, rel=0.02)
    assert ratio(hd, 4) == pytest.approx(0.63, rel=0.02)
    assert ratio(uhd, 4) == pytest.approx(1.8, rel=0.02)
    assert tm.seconds(hd, "h264", "ultrafast", 2) < tm.seconds(hd, "h264", "fast", 2)
    with pytest.raises(ValueError):
        tm.seconds(hd, "vp9", "fast", 2)


def test_transcode_model_uses_the_calibration_line_and_scales_threads():
    cal = Calibration(transcode={key("h264", "ultrafast", 1): Line(0.1, 0.01)})
    tm = TranscodeModel("local", cal)
    m = movie(720, 1280, 25, 2.0)
    work = 2.0 * 1280 * 720 * 25 / 1e6
    assert tm.seconds(m, "h264", "ultrafast", 1) == pytest.approx(0.1 + 0.01 * work)
    assert tm.seconds(m, "h264", "ultrafast", 2) < tm.seconds(m, "h264", "ultrafast", 1)
    assert tm.seconds(m, "h264", "fast", 1) > tm.seconds(m, "h264", "ultrafast", 1)


def test_a_calibrated_bitrate_exponent_scales_the_work_not_the_overhead(tmp_path):
    line = Line(0.1, 0.01)
    cal = Calibration(
        transcode={key("h264", "fast", 1): line}, bitrate_exponent={"h264/fast": (0.5, 0.25)}
    )
    m = movie(720, 1280, 25, 2.0)
    work = 0.01 * 2.0 * 1280 * 720 * 25 / 1e6
    tm = TranscodeModel("local", cal)
    assert tm.seconds(m, "h264", "fast", 1, 750) == pytest.approx(0.1 + work * 0.5)  # 1/4 ** .5
    assert tm.seconds(m, "h264", "fast", 1, 3000) == pytest.approx(0.1 + work)
    assert tm.seconds(m, "h264", "fast", 1, 48000) == pytest.approx(0.1 + work * 2.0)  # 16 ** .25
    assert tm.seconds(m, "h264", "fast", 1) == pytest.approx(0.1 + work)  # no bitrate given
    # Not measured for this preset, or no calibration of it: the bitrate does not matter.
    assert tm.seconds(m, "h264", "ultrafast", 1, 750) == tm.seconds(m, "h264", "ultrafast", 1)
    plain = TranscodeModel("local", Calibration(transcode=cal.transcode))
    assert not plain.reads_bitrate and tm.reads_bitrate
    assert plain.seconds(m, "h264", "fast", 1, 750) == pytest.approx(0.1 + work)
    back = Calibration.load(cal.save(tmp_path / "c.json"))
    assert back.bitrate_exponent == {"h264/fast": (0.5, 0.25)} and back.bitrate_kbps == 3000


def test_boot_models_follow_the_spec():
    rng = random.Random(1)
    vm = BootModel("vm")
    draws = [vm.sample(rng, False) for _ in range(4000)]
    assert min(draws) >= 14.7 and max(draws) <= 27.7
    assert sorted(draws)[2000] == pytest.approx(16.6, abs=0.3)
    assert vm.sample(rng, True) == 53.0
    pods = sorted(BootModel("pod").sample(rng, False) for _ in range(2000))
    assert pods[1000] == pytest.approx(1.5, abs=0.05)
    assert BootModel("local", Calibration(boot_s=0.7)).median == 0.7
    with pytest.raises(ValueError):
        BootModel("ray")


def test_fit_line_and_calibration_file(tmp_path):
    line = fit_line([(1.0, 0.3), (2.0, 0.5), (4.0, 0.9)])
    assert line.overhead_s == pytest.approx(0.1) and line.s_per_mpx == pytest.approx(0.2)
    assert fit_line([(2.0, 1.0)]) == Line(0.0, 0.5)
    assert fit_line([(1.0, 0.0), (2.0, 2.0)]).overhead_s == 0.0  # negative intercept clamped
    assert coefficient_of_variation([[1.0, 1.0], [2.0]]) == 0.0
    cal = Calibration(machine="m", boot_s=0.8, transcode={key("h264", "fast", 2): line})
    back = Calibration.load(cal.save(tmp_path / "c.json"))
    assert back.transcode == cal.transcode and back.boot_s == 0.8
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError):
        Calibration.load(tmp_path / "bad.json")


def test_workload_is_deterministic_per_seed_and_knows_the_catalog():
    models = Models.build("vm")
    a = make_jobs(requests_for("poisson", 50, 3), models, 3)
    b = make_jobs(requests_for("poisson", 50, 3), models, 3)
    c = make_jobs(requests_for("poisson", 50, 4), models, 4)
    assert a == b and a != c
    bbb9 = CatalogShape().movie("bbb_9.mp4")
    assert (bbb9.duration, bbb9.height) == (60.0, 1080)
    assert CatalogShape(0.1, 720).movie("bbb_9.mp4").height == 720
    with pytest.raises(ValueError):
        CatalogShape().movie("other.mp4")
    assert 0 < offered_load(a, models, "small", 18) < 5


def test_srpt_flows_on_a_known_case():
    # Speed 1: job 0 (4 units) at 0, job 1 (1 unit) at 1 preempts it and ends at 2; job 0 at 5.
    assert srpt_flows([0.0, 1.0], [4.0, 1.0], 1.0) == [5.0, 1.0]
    assert srpt_flows([0.0, 10.0], [2.0, 2.0], 2.0) == [1.0, 1.0]


def test_lower_bound_is_below_each_jobs_service_on_the_policy_flavor():
    models = Models.build("vm")
    jobs = make_jobs(requests_for("classic", 100, 1), models, 1)
    dc = DataCenter.reference()
    b = lower_bound(jobs, models, dc)
    assert b.flavors == ("tiny", "small", "medium")
    assert b.delay_avg >= b.delay_avg_ready and b.delay_avg >= b.delay_avg_srpt
    small = [service_s(j, models, 2) for j in jobs]
    assert b.delay_avg_ready <= sum(small) / len(small)
    assert b.reserved_core_seconds <= sum(2 * s for s in small)
    assert math.isfinite(b.delay_p95)
    assert P1080 == 1920 * 1080 * 30


@pytest.mark.parametrize("cv", [0.05, 0.3, 0.0])
def test_noises_are_the_draws_of_noise_one_after_another(cv):
    """``Models.noises`` writes ``lognormvariate`` out: the same numbers, the generator left
    in the same state."""
    models = dataclasses.replace(Models.build("vm"), noise_cv=cv)
    rng, ref = random.Random("n"), random.Random("n")
    assert models.noises(rng, 2000) == [models.noise(ref) for _ in range(2000)]
    assert rng.random() == ref.random()
