"""The shared EpochLoop: resume gives the same result as an uninterrupted run; NaN stops it; a frozen
loop takes a run's checkpoint as it stands, writes nothing, and refuses what it cannot resume."""
import csv

import pytest
import torch

from dlgm.training import EpochLoop, TrainingDiverged


class Interrupted(Exception):
    pass


def _train(tmp_path, epochs=6, stop_after=None, config=None, lr=0.1, frozen=False):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(64, 3, generator=torch.Generator().manual_seed(2))
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]])

    def epoch_fn(epoch):
        if stop_after is not None and epoch == stop_after:
            raise Interrupted
        idx = torch.randperm(64, generator=gen)[:16]  # uses the loop-managed generator
        noise = torch.randn(16, 1)  # uses the global RNG, restored on resume
        loss = ((model(x[idx]) - y[idx] - 0.01 * noise) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss.detach()}

    loop = EpochLoop("toy", epochs, {"model": model, "opt": opt}, checkpoint=tmp_path / "ckpt.pt",
                     curve=tmp_path / "curve.csv", identity=config or {"lr": lr}, generators={"batches": gen},
                     frozen=frozen)
    rows = loop.run(epoch_fn)
    return model, rows


def test_resume_equals_uninterrupted(tmp_path):
    full, full_rows = _train(tmp_path / "a")
    with pytest.raises(Interrupted):
        _train(tmp_path / "b", stop_after=4)
    resumed, rows = _train(tmp_path / "b")
    assert torch.equal(full.weight, resumed.weight) and torch.equal(full.bias, resumed.bias)
    assert [r["loss"] for r in rows] == [r["loss"] for r in full_rows]
    curve = list(csv.DictReader((tmp_path / "b" / "curve.csv").open()))
    assert [int(r["epoch"]) for r in curve] == [1, 2, 3, 4, 5, 6]


def _files(folder):
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}


def test_frozen_loop_takes_the_checkpoint_as_it_stands_and_writes_nothing(tmp_path):
    with pytest.raises(Interrupted):
        _train(tmp_path / "run", stop_after=4)
    writing = tmp_path / "run" / ".ckpt.pt.live.tmp"  # the run's own next checkpoint, half written
    writing.write_bytes(b"partial")
    before = _files(tmp_path / "run")
    looked, rows = _train(tmp_path / "run", frozen=True)
    assert _files(tmp_path / "run") == before
    four, four_rows = _train(tmp_path / "four", epochs=4)
    assert torch.equal(looked.weight, four.weight) and torch.equal(looked.bias, four.bias)
    assert [r["loss"] for r in rows] == [r["loss"] for r in four_rows] and len(rows) == 4
    full, _ = _train(tmp_path / "full")
    resumed, _ = _train(tmp_path / "run")  # the run itself goes on as if nobody had looked
    assert torch.equal(full.weight, resumed.weight)


def test_frozen_loop_refuses_a_checkpoint_it_cannot_resume(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint .*ckpt.pt"):
        _train(tmp_path, frozen=True)
    with pytest.raises(Interrupted):
        _train(tmp_path, stop_after=2)
    with pytest.raises(ValueError, match="another config, input or code"):
        _train(tmp_path, frozen=True, config={"lr": 0.2})
    (tmp_path / "ckpt.pt").write_bytes(b"truncated")
    with pytest.raises(ValueError, match="cannot be read"):
        _train(tmp_path, frozen=True)
    assert (tmp_path / "ckpt.pt").read_bytes() == b"truncated"  # left where it is, not set aside
    with pytest.raises(ValueError, match="needs the checkpoint"):
        EpochLoop("toy", 2, {}, frozen=True)


def test_checkpoint_of_another_config_is_ignored(tmp_path, caplog):
    caplog.set_level("INFO", logger="dlgm")
    with pytest.raises(Interrupted):
        _train(tmp_path, stop_after=3, config={"lr": 0.1, "tag": "old"})
    _, rows = _train(tmp_path, config={"lr": 0.1, "tag": "new"})
    assert len(rows) == 6
    assert "ignoring checkpoint" in caplog.text and "resumed from" not in caplog.text


def test_checkpoint_of_other_code_or_input_is_ignored(tmp_path, monkeypatch, caplog):
    from dlgm.training import resume_identity

    caplog.set_level("INFO", logger="dlgm")
    data = tmp_path / "input.bin"
    data.write_bytes(b"one")
    with pytest.raises(Interrupted):
        _train(tmp_path, stop_after=3, config=resume_identity({"lr": 0.1}, [data], code="dlgm.training"))
    same = resume_identity({"lr": 0.1}, [data], code="dlgm.training")
    monkeypatch.setattr("dlgm.training.code_digest", lambda *entries: "edited code")
    edited = resume_identity({"lr": 0.1}, [data], code="dlgm.training")
    monkeypatch.undo()
    data.write_bytes(b"two")
    other_input = resume_identity({"lr": 0.1}, [data], code="dlgm.training")
    assert len({str(same), str(edited), str(other_input)}) == 3
    _, rows = _train(tmp_path, config=edited)
    assert len(rows) == 6
    # a rule rerun for a code change trains afresh instead of handing back the old code's model
    assert "ignoring checkpoint" in caplog.text and "resumed from" not in caplog.text


def test_a_kill_resumes_under_the_same_identity(tmp_path, caplog):
    from dlgm.training import resume_identity

    caplog.set_level("INFO", logger="dlgm")
    data = tmp_path / "input.bin"
    data.write_bytes(b"one")
    with pytest.raises(Interrupted):
        _train(tmp_path, stop_after=3, config=resume_identity({"lr": 0.1}, [data], code="dlgm.training"))
    caplog.clear()
    _, rows = _train(tmp_path, config=resume_identity({"lr": 0.1}, [data], code="dlgm.training"))
    assert "resumed from" in caplog.text
    # the resumed run's log (Snakemake deleted the first one) still has a line for every epoch
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("toy epoch ")]
    assert [line.split()[2] for line in lines] == [f"{e}/6" for e in range(1, 7)]
    assert all(line.endswith("before the resume)") for line in lines[:3])
    assert not any("before the resume" in line for line in lines[3:])
    assert f"loss={rows[0]['loss']:.5g}" in lines[0]


def test_nan_stops_with_stage_and_epoch(tmp_path):
    model = torch.nn.Linear(2, 1)

    def epoch_fn(epoch):
        return {"loss": torch.tensor(float("nan") if epoch == 2 else 1.0)}

    with pytest.raises(TrainingDiverged, match=r"toy: loss is nan at epoch 3"):
        EpochLoop("toy", 5, {"model": model}).run(epoch_fn)


def test_non_finite_parameter_is_named(tmp_path):
    model = torch.nn.Linear(2, 1)

    def epoch_fn(epoch):
        with torch.no_grad():
            model.weight[0, 0] = float("inf")
        return {"loss": 0.0}

    with pytest.raises(TrainingDiverged, match=r"parameter model\.weight is not finite at epoch 1"):
        EpochLoop("toy", 2, {"model": model}).run(epoch_fn)
