"""The decoding / verdict switch through every front end: CLI, judges, runner, Inspect, lm-eval.

Most tests swap the engines for `ProbEngine`, a scripted engine that accepts grammars (and
records what it got) and reports a verdict probability that contradicts its written verdict, so
the vote and prob rules pick different winners and show which one decided. The CLI test of the
two decodings runs the real tiny model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from scripted_engine import RUBRIC, judge_output, words

from rubric_arm.cli import main
from rubric_arm.engines.base import Engine
from rubric_arm.errors import InputError
from rubric_arm.harness.judges import (
    RubricARMJudge,
    VotingJudge,
    judge_switches,
    make_judge,
)
from rubric_arm.pipeline import RubricARM
from rubric_arm.types import Chat, Completion, PreferencePair, SamplingParams

P_GOOD = 0.8
"""P(label) the fake judge puts on whichever shown response holds GOOD."""


class ProbEngine(Engine):
    """A scripted engine that takes grammars and reads P(label) at the verdict.

    The generator returns the scripted rubric. The judge always writes "Winner: Response B",
    while P(shown A) is P_GOOD when the GOOD response is shown first and 1 - P_GOOD otherwise:
    the written vote and the probability disagree whenever GOOD is shown as A. Constrained
    calls report 3 forced tokens; `constraint_calls` keeps what each call was given.
    """

    name = "prob-scripted"
    supports_constraints = True
    context_length = 4096

    def __init__(self, role: str, *, fingerprint: str = "prob-scripted-1") -> None:
        self.role = role
        self.rubric = RUBRIC
        self.fingerprint = fingerprint
        self.calls: list[tuple[list[Chat], SamplingParams]] = []
        self.constraint_calls: list[Sequence[Any] | None] = []

    def generate(
        self,
        chats: Sequence[Chat],
        params: SamplingParams,
        *,
        desc: str | None = None,
        constraints: Sequence[Any] | None = None,
        probe: Any = None,
    ) -> list[list[Completion]]:
        self.calls.append((list(chats), params))
        self.constraint_calls.append(constraints)
        forced = 3 if constraints is not None else 0
        out = []
        for chat in chats:
            text = "\n".join(m["content"] for m in chat)
            if self.role == "generator":
                reply, probs = self.rubric, None
            else:
                good, bad = text.find("GOOD"), text.find("BAD")
                p = P_GOOD if 0 <= good < bad else 1.0 - P_GOOD
                reply = judge_output("B")
                probs = None if probe is None else {"A": p, "B": 1.0 - p}
            n_tokens = len(words(reply))
            out.append(
                [
                    Completion(
                        reply,
                        self.chat_tokens(chat),
                        n_tokens,
                        forced_tokens=forced,
                        label_probs=probs,
                    )
                    for _ in range(params.n)
                ]
            )
        return out

    def count_tokens(self, text: str) -> int:
        return len(words(text))

    def truncate(self, text: str, max_tokens: int) -> str:
        return " ".join(words(text)[:max_tokens])

    def chat_tokens(self, chat: Chat) -> int:
        return sum(len(words(m["content"])) + 4 for m in chat)


@pytest.fixture
def fake_engines(monkeypatch: pytest.MonkeyPatch) -> list[ProbEngine]:
    """Every engine the pipeline loads becomes a ProbEngine (generator, judge, generator, ...)."""
    made: list[ProbEngine] = []

    def load(name: str, engine: str = "transformers", **_: Any) -> ProbEngine:
        role = "generator" if len(made) % 2 == 0 else "judge"
        made.append(ProbEngine(role, fingerprint=f"fake-{name}-{role}"))
        return made[-1]

    monkeypatch.setattr("rubric_arm.pipeline.load_engine", load)
    return made


PAIRS = [
    PreferencePair(f"p{i}", f"question {i}", f"GOOD answer {i}", f"BAD answer {i}", "A", "s")
    for i in range(4)
]


def write_pairs(path: Path) -> Path:
    path.write_text("".join(json.dumps(p.to_dict()) + "\n" for p in PAIRS), encoding="utf-8")
    return path


def fake_arm(**kwargs: Any) -> RubricARM:
    return RubricARM(
        ProbEngine("generator"),
        ProbEngine("judge", fingerprint="prob-judge"),
        rubric_sampling=SamplingParams(max_new_tokens=64),
        judge_sampling=SamplingParams(max_new_tokens=64),
        cache=False,
        **kwargs,
    )


def one_pair_cli(*extra: str) -> list[str]:
    return [
        "judge",
        "--preset",
        "tiny",
        "--no-cache",
        "--prompt",
        "Say hi.",
        "--response-a",
        "GOOD hi!",
        "--response-b",
        "BAD bye.",
        "--json",
        *extra,
    ]


# ---- CLI ------------------------------------------------------------------------------------


def test_cli_decoding_flag_reaches_the_tiny_model(tiny_model_path: Path, capsys) -> None:
    """Default (tiny: constrained) forces grammar text; --decoding free forces none."""
    short = ("--rubric-max-tokens", "32", "--judge-max-tokens", "64")
    assert main(one_pair_cli(*short)) == 0
    default = json.loads(capsys.readouterr().out)
    assert main(one_pair_cli(*short, "--decoding", "free")) == 0
    free = json.loads(capsys.readouterr().out)
    assert default["decoding"] == "constrained" and free["decoding"] == "free"
    assert default["verdict_rule"] == free["verdict_rule"] == "vote"
    for rec in (default, free):
        assert "p_a" in rec and all("p_a" in j for j in rec["judgments"])
    assert sum(j["forced_tokens"] for j in default["judgments"]) > 0
    assert sum(j["forced_tokens"] for j in free["judgments"]) == 0
    assert main(["rubric", "--preset", "tiny", "--no-cache", "--prompt", "Hi.", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["decoding"] == "constrained"


def test_cli_verdict_prob_decides_by_p_a(fake_engines: list[ProbEngine], capsys) -> None:
    assert main(one_pair_cli()) == 0
    voted = json.loads(capsys.readouterr().out)
    assert main(one_pair_cli("--verdict", "prob")) == 0
    prob = json.loads(capsys.readouterr().out)
    # GOOD is shown as A: the text says B, P(A) says A.
    assert voted["winner"] == "B" and voted["verdict_rule"] == "vote"
    assert prob["winner"] == "A" and prob["verdict_rule"] == "prob"
    assert prob["p_a"] == pytest.approx(P_GOOD) and prob["judgments"][0]["p_a"] == P_GOOD
    assert prob["decoding"] == "constrained"
    assert prob["judgments"][0]["forced_tokens"] == 3


def test_cli_file_manifest_records_the_switches(
    fake_engines: list[ProbEngine], tmp_path: Path, capsys
) -> None:
    src = write_pairs(tmp_path / "in.jsonl")
    out = tmp_path / "out.jsonl"
    base = ["judge", "--preset", "tiny", "--no-cache", "--quiet", "--input", str(src)]
    base += ["--output", str(out), "--order", "as_given", "--chunk-size", "1"]
    assert main([*base, "--verdict", "prob"]) == 0
    manifest = json.loads((tmp_path / "out.jsonl.run.json").read_text())
    assert manifest["decoding"] == "constrained" and manifest["verdict"] == "prob"
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["winner"] for r in recs} == {"A"} and {r["decoding"] for r in recs} == {"constrained"}
    assert "verdict rule: prob; pairs with P(A) read: 4" in capsys.readouterr().err
    # A resume under the other decoding would mix records: refused before anything is judged.
    out.write_text(out.read_text().splitlines(keepends=True)[0])
    assert main([*base, "--verdict", "prob", "--decoding", "free"]) == 2
    assert "decoding differ" in capsys.readouterr().err
    assert len(out.read_text().splitlines()) == 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["-J", "decoding=bogus"], "decoding must be one of: constrained, free (got 'bogus')"),
        (["-J", "verdict=maybe"], "verdict must be one of: vote, prob (got 'maybe')"),
        (["--decoding", "free", "-J", "decoding=constrained"], "disagree"),
        (["-J", "preset=nope"], "unknown preset"),
    ],
)
def test_eval_switch_errors_are_one_line(
    extra: list[str], message: str, tmp_path: Path, capsys
) -> None:
    data = write_pairs(tmp_path / "pairs.jsonl")
    args = ["eval", "--judge", "rubric-arm", "-J", "preset=tiny", "--benchmark", "pairs"]
    args += ["--data", str(data), "--out", str(tmp_path / "run"), "--quiet", *extra]
    assert main(args) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], lines
    assert not (tmp_path / "run" / "config.json").exists()


def test_eval_switch_on_a_judge_without_one_is_refused(tmp_path: Path, capsys) -> None:
    data = write_pairs(tmp_path / "pairs.jsonl")
    args = ["eval", "--judge", "random", "--benchmark", "pairs", "--data", str(data)]
    assert main([*args, "--out", str(tmp_path / "r"), "--quiet", "--decoding", "free"]) == 2
    assert "the random judge has no decoding setting" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*args, "--out", str(tmp_path / "r"), "--decoding", "bogus"])
    assert "invalid choice: 'bogus'" in capsys.readouterr().err


def test_eval_run_folder_records_the_switches_and_refuses_another_decoding(
    fake_engines: list[ProbEngine], tmp_path: Path, capsys
) -> None:
    data = write_pairs(tmp_path / "pairs.jsonl")
    run = tmp_path / "run"
    base = ["eval", "--judge", "rubric-arm", "-J", "preset=tiny", "-J", "cache=false"]
    base += ["--benchmark", "pairs", "--data", str(data), "--out", str(run), "--quiet"]
    base += ["--order", "as_given"]
    assert main(base) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["decoding"] == "constrained" and config["verdict"] == "vote"
    assert "decoding" not in config["judge_args"]
    judge_config = json.loads((run / "metadata.json").read_text())["judge_config"]
    assert judge_config["decoding"] == "constrained" and judge_config["verdict"] == "vote"
    assert judge_config["max_rubric_items"] == 3
    scores = json.loads((run / "scores.json").read_text())
    assert scores["decoding"] == "constrained" and scores["metrics"][-1]["value"] == 0.0
    judge_engine = fake_engines[1]
    assert all(c is not None for c in judge_engine.constraint_calls)
    capsys.readouterr()

    assert main([*base, "--decoding", "free"]) == 2
    assert "differs in: decoding" in capsys.readouterr().err
    assert main([*base, "-J", "verdict=prob"]) == 2
    assert "differs in: verdict" in capsys.readouterr().err
    # The preset's value given explicitly is the same run.
    assert main([*base, "-J", "decoding=constrained"]) == 0
    assert len(fake_engines) == 2, "a finished run builds no judge"

    assert main([*base, "--decoding", "free", "--verdict", "prob", "--force"]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["decoding"] == "free" and config["verdict"] == "prob"
    recs = [json.loads(line) for line in (run / "records.jsonl").read_text().splitlines()]
    assert {(r["decoding"], r["verdict_rule"], r["winner"]) for r in recs} == {
        ("free", "prob", "A")
    }
    assert all(r["p_a"] == pytest.approx(P_GOOD) for r in recs)
    assert fake_engines[3].constraint_calls == [None]
    assert json.loads((run / "scores.json").read_text())["metrics"][-1]["value"] == 1.0


# ---- judges registry ------------------------------------------------------------------------


def test_judge_switches_follow_the_preset() -> None:
    assert judge_switches("rubric-arm", {}) == {"decoding": "constrained", "verdict": "vote"}
    assert judge_switches("direct", {"model": "smollm2-135m-instruct"})["decoding"] == (
        "constrained"
    )
    assert judge_switches("prompted-rubric", {"preset": "paper"})["decoding"] == "free"
    assert judge_switches("direct", {"decoding": "free", "verdict": "prob"}) == {
        "decoding": "free",
        "verdict": "prob",
    }
    assert judge_switches("direct-logprob", {"verdict": "prob"}) == {
        "decoding": None,
        "verdict": "prob",
    }
    assert judge_switches("scalar", {"model": "x"}) == {"decoding": None, "verdict": None}
    with pytest.raises(InputError, match="direct-logprob judge has no decoding"):
        judge_switches("direct-logprob", {"decoding": "free"})
    with pytest.raises(InputError, match=r"one of: constrained, free \(got 'grammar'\)"):
        make_judge("direct", {"decoding": "grammar"})


@pytest.mark.parametrize("name", ["rubric-arm", "prompted-rubric", "direct"])
def test_registry_judges_take_both_switches(fake_engines: list[ProbEngine], name: str) -> None:
    args = {"preset": "tiny", "cache": False}
    default = make_judge(name, args)
    assert isinstance(default, RubricARMJudge)
    assert (default.config()["decoding"], default.config()["verdict"]) == ("constrained", "vote")
    judge = make_judge(name, {**args, "decoding": "free", "verdict": "prob"})
    assert isinstance(judge, RubricARMJudge)
    assert (judge.config()["decoding"], judge.config()["verdict"]) == ("free", "prob")
    assert judge.config()["max_rubric_items"] is None
    (rec,) = judge.judge_pairs(PAIRS[:1], order="as_given", seed=0)
    assert (rec.decoding, rec.verdict_rule, rec.winner) == ("free", "prob", "A")
    assert rec.p_a == pytest.approx(P_GOOD) and rec.judgments[0].p_a == P_GOOD
    assert (rec.rubric is None) == (name == "direct")
    assert fake_engines[-1].constraint_calls == [None]


def test_voting_judge_decides_by_mean_p_a_under_prob() -> None:
    """Both orders: the written verdicts split (B, then A mapped back), P(A) agrees on A."""
    by_rule = {}
    for rule in ("vote", "prob"):
        inner = RubricARMJudge("rubric-arm", fake_arm(decoding="constrained", verdict=rule), {})
        voting = VotingJudge(inner, 2)
        assert voting.config()["verdict"] == rule and voting.config()["decoding"] == "constrained"
        (rec,) = voting.judge_pairs(PAIRS[:1], order="both", seed=0)
        assert len(rec.judgments) == 4 and rec.p_a == pytest.approx(P_GOOD)
        assert rec.verdict_rule == rule and rec.decoding == "constrained"
        by_rule[rule] = rec
    assert by_rule["vote"].vote_winners == [None, None] and by_rule["vote"].winner is None
    assert by_rule["prob"].winner == "A" and by_rule["prob"].correct is True


def test_logprob_judge_prob_rule(tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """AB prefers A strongly, BA (shown first again) weakly: vote splits, mean P(A) picks A."""
    import math

    by_rule = {}
    for rule in ("vote", "prob"):
        judge = make_judge("direct-logprob", {"model": "tiny-random", "verdict": rule})
        assert judge.config()["verdict"] == rule
        monkeypatch.setattr(judge, "_margins", lambda texts: [(2.0, 10), (1.0, 10)])
        (by_rule[rule],) = judge.judge_pairs(PAIRS[:1], order="both", seed=0)
    p_ab, p_ba = 1 / (1 + math.exp(-2.0)), 1 - 1 / (1 + math.exp(-1.0))
    rec = by_rule["prob"]
    assert [j.p_a for j in rec.judgments] == pytest.approx([p_ab, p_ba], abs=1e-6)
    assert rec.p_a == pytest.approx((p_ab + p_ba) / 2, abs=1e-6)
    assert by_rule["vote"].winner is None and rec.winner == "A"


# ---- Inspect and lm-eval --------------------------------------------------------------------


def test_inspect_model_args_reach_the_pipeline(
    fake_engines: list[ProbEngine], tmp_path: Path
) -> None:
    pytest.importorskip("inspect_ai")
    from inspect_ai import eval as inspect_eval
    from inspect_ai.model import get_model

    from tasks.mini import mini

    with pytest.raises(InputError, match=r"decoding must be one of: constrained, free"):
        get_model("rubric-arm/tiny", decoding="bogus", memoize=False)
    model = get_model("rubric-arm/tiny", decoding="free", verdict="prob", memoize=False)
    arm = model.api.arm()
    assert (arm.decoding, arm.verdict) == ("free", "prob")
    (log,) = inspect_eval(
        mini(seed=1, order="both"),
        model=model,
        limit=3,
        log_dir=str(tmp_path / "logs"),
        display="none",
    )
    assert log.status == "success", log.error
    assert fake_engines[1].constraint_calls and all(
        c is None for c in fake_engines[1].constraint_calls
    )
    for sample in log.samples:
        meta = sample.output.metadata
        assert meta["decoding"] == "free" and meta["verdict_rule"] == "prob"
        # No GOOD/BAD in the mini pairs: P(shown A) = 1 - P_GOOD, so shown B wins.
        assert meta["p_a"] == pytest.approx(1 - P_GOOD) and meta["winner"] == "B"
        score = sample.scores["pairwise_scorer"].metadata
        original = 1 - P_GOOD if score["order"] == "AB" else P_GOOD
        assert score["p_a"] == pytest.approx(original) and score["verdict_rule"] == "prob"


def test_inspect_both_orders_merge_by_the_verdict_rule() -> None:
    pytest.importorskip("inspect_ai")
    from inspect_ai.scorer import SampleScore, Score

    from rubric_arm.harness.inspect_tasks import records_from_scores

    def sample(order: str, winner: str, p_a: float, rule: str) -> SampleScore:
        meta = {
            "pair_id": "q1",
            "item_samples": 2,
            "order": order,
            "winner": winner,
            "label": "A",
            "subset": "chat",
            "index": 0,
            "p_a": p_a,
            "verdict_rule": rule,
        }
        return SampleScore(score=Score(value=1.0, metadata=meta), sample_id=f"q1|{order}")

    for rule, winner in (("vote", None), ("prob", "A")):
        (rec,) = records_from_scores([sample("AB", "A", 0.7, rule), sample("BA", "B", 0.45, rule)])
        assert rec.winner == winner and rec.p_a == pytest.approx(0.575), rule


def test_lm_eval_model_args_reach_the_pipeline(fake_engines: list[ProbEngine]) -> None:
    pytest.importorskip("lm_eval")
    from rubric_arm.harness.lm_eval_model import RubricARMLM

    lm = RubricARMLM.create_from_arg_string("preset=tiny,decoding=free,verdict=prob")
    assert (lm.arm.decoding, lm.arm.verdict) == ("free", "prob")
    assert RubricARMLM(preset="tiny").arm.decoding == "constrained"
    with pytest.raises(InputError, match=r"verdict must be one of: vote, prob \(got 'mean'\)"):
        RubricARMLM(preset="tiny", verdict="mean")

    class Request:
        def __init__(self, pair: PreferencePair) -> None:
            self.doc = {"pair_json": json.dumps(pair.to_dict())}

    (text,) = lm.generate_until([Request(PAIRS[0])])
    # The written verdict says B; the line lm-eval scores is the pipeline's prob winner.
    assert text.endswith("Winner: Response A")
    assert fake_engines[1].constraint_calls == [None]
