"""Tensor files (models, checkpoints, processed data) never run code when opened."""
from __future__ import annotations

import os

import pytest
import torch

from dlgm.atomic import torch_load, torch_save
from dlgm.training import EpochLoop


class RunsCode:
    def __reduce__(self):
        return (os.system, ("echo this must never run",))


def test_a_file_holding_a_pickled_object_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"state": {"w": torch.ones(2)}, "extra": RunsCode()}, path)
    with pytest.raises(ValueError, match=r"model\.pt: holds more than tensors and plain values.*posix\.system"):
        torch_load(path)


def test_saving_refuses_objects_that_could_not_be_loaded_back(tmp_path):
    with pytest.raises(TypeError, match=r"model\.pt\['extra'\]: cannot save a RunsCode"):
        torch_save({"w": torch.ones(2), "extra": RunsCode()}, tmp_path / "model.pt")
    assert not list(tmp_path.iterdir()), "a refused save left a file behind"


def test_plain_content_round_trips(tmp_path):
    blob = {"sizes": [784, 500], "name": "dbm2", "w": torch.randn(3, 2), "nested": ({"a": 1.5}, None, True)}
    torch_save(blob, tmp_path / "m.pt")
    back = torch_load(tmp_path / "m.pt")
    assert back["sizes"] == [784, 500] and back["nested"] == ({"a": 1.5}, None, True)
    assert torch.equal(back["w"], blob["w"])


def test_a_checkpoint_with_optimizer_scheduler_and_every_rng_loads_weights_only(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, 2)
    gen = torch.Generator().manual_seed(3)

    def epoch_fn(epoch):
        loss = model(torch.randn(4, 3, generator=gen)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        return {"loss": loss.detach()}

    EpochLoop("s", 2, {"m": model, "opt": opt, "sched": sched}, checkpoint=tmp_path / "c.pt",
              generators={"g": gen}).run(epoch_fn)
    saved = torch.load(tmp_path / "c.pt", weights_only=True)
    assert saved["epoch"] == 2 and set(saved["rng"]) >= {"python", "numpy", "torch"}
