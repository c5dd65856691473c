"""The one training skeleton (stages/training.py) on a tiny job: resume, torn logs, corrupt states,
restarts, best-checkpoint selection, and the files every run folder gets."""
from __future__ import annotations

import json

import torch

from stages.runtime import step_generator
from stages.training import STOPPED_EARLY, RunSpec, read_log, run_training

CPU = torch.device("cpu")


class LineJob:
    """Fits y = 3x with SGD; validation scores follow ``scores`` (by validation count); may ask to restart."""

    def __init__(self, scores=None, restart_at=None):
        self.scores, self.restart_at, self.validations, self.restarts = scores or {}, restart_at, 0, 0
        self.reset(0)

    def reset(self, restarts):
        self.restarts = restarts
        torch.manual_seed(restarts)
        self.model = torch.nn.Linear(1, 1)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.1)

    def step(self, step):
        x = torch.randn(8, 1, generator=step_generator(1, step, CPU))
        loss = ((self.model(x) - 3 * x) ** 2).mean()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return {"loss": float(loss.detach())}

    def validate(self, step):
        self.validations += 1
        if self.restart_at == step and self.restarts == 0:
            return {"restart": "asked by the test"}
        return {"score": self.scores.get(step, -float(step))}

    def state_dict(self):
        return {"model": self.model.state_dict(), "opt": self.opt.state_dict()}

    def load_state_dict(self, state):
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])

    def weights(self):
        return self.model.state_dict()

    def checkpoint(self, weights, summary):
        return {"state_dict": weights, **summary}


def _spec(tmp_path, **kw):
    options = dict(name="line", folder=tmp_path / "run", checkpoint=tmp_path / "checkpoint.pt",
                   curve=tmp_path / "train_log.json", digest="d1", total=10, config={"lr": 0.1},
                   log_interval=1, checkpoint_interval=2)
    return RunSpec(**{**options, **kw})


def _ckpt(tmp_path):
    return torch.load(tmp_path / "checkpoint.pt", weights_only=True)


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _records(path):
    return [{k: v for k, v in r.items() if k != "it_per_s"} for r in read_log(path)]


def test_a_run_writes_checkpoint_curve_config_and_log(tmp_path):
    assert run_training(LineJob(), _spec(tmp_path)) == 0
    ckpt = _ckpt(tmp_path)
    assert ckpt["steps"] == 10 and ckpt["selected"] == "last" and ckpt["digest"] == "d1"
    assert abs(float(ckpt["state_dict"]["weight"]) - 3.0) < 0.5          # the job really trained (from ~U(-1, 1))
    assert json.loads((tmp_path / "run/config.json").read_text()) == {"lr": 0.1}
    curve = json.loads((tmp_path / "train_log.json").read_text())
    assert [r["step"] for r in curve] == list(range(1, 11)) and curve[0]["loss"] > curve[-1]["loss"]


def test_stopped_and_resumed_run_equals_an_uninterrupted_one(tmp_path):
    run_training(LineJob(), _spec(tmp_path / "a"))
    assert run_training(LineJob(), _spec(tmp_path / "b", stop_after=3)) == STOPPED_EARLY
    assert not (tmp_path / "b/checkpoint.pt").exists()
    assert run_training(LineJob(), _spec(tmp_path / "b")) == 0
    assert _same(_ckpt(tmp_path / "a")["state_dict"], _ckpt(tmp_path / "b")["state_dict"])
    assert _records(tmp_path / "a/run/train_log.jsonl") == _records(tmp_path / "b/run/train_log.jsonl")


def test_a_torn_last_log_line_is_dropped_on_resume(tmp_path):
    run_training(LineJob(), _spec(tmp_path / "a"))
    run_training(LineJob(), _spec(tmp_path / "b", stop_after=4))
    log = tmp_path / "b/run/train_log.jsonl"
    log.write_text(log.read_text() + '{"step": 5, "loss": 0.')       # a write cut by a full disk
    assert run_training(LineJob(), _spec(tmp_path / "b")) == 0
    assert _records(log) == _records(tmp_path / "a/run/train_log.jsonl")


def test_an_unreadable_state_is_moved_aside_and_training_restarts(tmp_path, capsys):
    run_training(LineJob(), _spec(tmp_path / "a"))
    run_training(LineJob(), _spec(tmp_path / "b", stop_after=4))
    state = tmp_path / "b/run/train_state.pt"
    state.write_bytes(b"\x80\x04 not a checkpoint")
    assert run_training(LineJob(), _spec(tmp_path / "b")) == 0
    assert "moved to" in capsys.readouterr().out and (tmp_path / "b/run/train_state.pt.corrupt").exists()
    assert _same(_ckpt(tmp_path / "a")["state_dict"], _ckpt(tmp_path / "b")["state_dict"])


def test_a_changed_digest_starts_from_step_zero(tmp_path, capsys):
    run_training(LineJob(), _spec(tmp_path, stop_after=4))
    run_training(LineJob(), _spec(tmp_path, digest="d2"))
    assert "configuration changed" in capsys.readouterr().out
    assert [r["step"] for r in read_log(tmp_path / "run/train_log.jsonl")] == list(range(1, 11))


def test_best_validation_weights_are_kept(tmp_path):
    job = LineJob(scores={4: 5.0})                                     # step 4 scores best
    run_training(job, _spec(tmp_path, val_interval=2, select="best"))
    ckpt = _ckpt(tmp_path)
    assert ckpt["val_score"] == 5.0 and ckpt["selected"] == "best"
    reference = LineJob()
    run_training(reference, _spec(tmp_path / "ref", total=4))
    assert _same(ckpt["state_dict"], _ckpt(tmp_path / "ref")["state_dict"])


def test_a_restart_reinitialises_and_is_logged(tmp_path):
    job = LineJob(restart_at=4)
    assert run_training(job, _spec(tmp_path, val_interval=2, select="best")) == 0
    records = read_log(tmp_path / "run/train_log.jsonl")
    assert any(r.get("event") == "restart" and r["restarts"] == 1 for r in records)
    assert _ckpt(tmp_path)["restarts"] == 1 and _ckpt(tmp_path)["steps"] == 10
    assert [r["step"] for r in records if r.get("restarts") == 1 and "loss" in r] == list(range(1, 11))
