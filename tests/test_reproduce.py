"""Reproduction targets: the table2 plan, its report from finished run folders (single rows read
vote 0, voting rows the majority), the paper profile's fail-fast, and the evalset reports."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from scripted_engine import ScriptedEngine, judge_output

from rubric_arm.data.jsonl import read_results
from rubric_arm.errors import InputError
from rubric_arm.harness.judges import RubricARMJudge
from rubric_arm.harness.runner import EvalConfig, run_eval
from rubric_arm.models import model_fingerprint
from rubric_arm.pipeline import RubricARM
from rubric_arm.reproduce import table2 as t2
from rubric_arm.reproduce.evalset import EvalSetConfig, run_dir
from rubric_arm.trainer.config import load_config
from rubric_arm.types import SamplingParams

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 16


def voting_arm(salt: str) -> RubricARM:
    """A sampled judge whose votes differ: A, B or nothing, from a hash of prompt and vote."""

    def verdict(text: str, vote: int) -> str:
        k = int(hashlib.sha256(f"{salt}{vote}{text}".encode()).hexdigest(), 16) % 3
        return "no idea" if k == 2 else judge_output("AB"[k])

    return RubricARM(
        ScriptedEngine("generator"),
        ScriptedEngine("judge", judge_fn=verdict, fingerprint=f"scripted-{salt}"),
        rubric_sampling=SamplingParams(max_new_tokens=64),
        judge_sampling=SamplingParams(temperature=1.0, max_new_tokens=64),
        cache=False,
    )


def mini_cfg(tmp_path: Path, **extra) -> t2.Table2Config:
    overrides = {
        "out": str(tmp_path / "t2"),
        "report": str(tmp_path / "reports" / "t2.md"),
        "train_recipe": str(ROOT / "configs" / "mini.yaml"),
        "votes": 3,
        "alternating_run": "",
        "variants": ["alternating", "generator_first", "no_format_reward", "joint"],
        "train_overrides": {"cycles": 1},
        "reuse_evals": [str(tmp_path / "no-evals-here")],
        **extra,
    }
    return load_config(
        ROOT / "configs" / "reproduce" / "table2-mini.yaml", overrides, cls=t2.Table2Config
    )


def test_plan_shares_the_sft_and_names_every_export(tmp_path: Path) -> None:
    cfg = mini_cfg(tmp_path)
    steps, entries = t2.plan(cfg, Path(cfg.out))
    names = [s.name for s in steps]
    assert names[:4] == [
        "train alternating",
        "train generator_first",
        "train no_format_reward",
        "train joint",
    ]
    assert [e.key for e in entries] == [
        "prompted",
        "sft",
        "alternating",
        "generator_first",
        "no_format_reward",
        "joint",
    ]
    sft_judge = str(Path(cfg.out) / "train" / "alternating" / "models" / "sft-judge")
    gen_first = next(s for s in steps if s.name == "train generator_first")
    assert "--sft.enabled" in gen_first.argv and sft_judge in gen_first.argv
    assert gen_first.argv[gen_first.argv.index("--order") + 1] == "generator_first"
    joint = next(e for e in entries if e.key == "joint")
    assert joint.judge.endswith("cycle1-joint-judge")
    assert next(e for e in entries if e.key == "alternating").judge.endswith("cycle1-judge")
    evals = [s for s in steps if s.name.startswith("eval")]
    assert len(evals) == 6 and all("--votes" in s.argv and "3" in s.argv for s in evals)
    assert not any(s.done() for s in steps)


def test_an_existing_run_serves_as_the_alternating_variant(tmp_path: Path) -> None:
    """alternating_run: the recipe's own run (make train-mini's) is resumed in place and the
    ablations start from its SFT exports; overrides would make it another recipe."""
    main = tmp_path / "train" / "mini"
    cfg = mini_cfg(tmp_path, alternating_run=str(main), train_overrides={})
    steps, entries = t2.plan(cfg, Path(cfg.out))
    alt = next(s for s in steps if s.name == "train alternating")
    assert alt.argv[alt.argv.index("--output_dir") + 1] == str(main.parent)
    assert alt.argv[alt.argv.index("--name") + 1] == "mini"
    gen_first = next(s for s in steps if s.name == "train generator_first")
    assert str(main / "models" / "sft-judge") in gen_first.argv
    by_key = {e.key: e for e in entries}
    assert by_key["alternating"].judge == str(main / "models" / "cycle3-judge")
    assert by_key["alternating"].run == str(main)
    assert by_key["joint"].run == str(Path(cfg.out) / "train" / "joint")
    with pytest.raises(InputError, match="alternating_run"):
        mini_cfg(tmp_path, alternating_run=str(main))


def test_finished_evaluations_with_the_same_settings_are_reused(tmp_path: Path) -> None:
    """reuse_evals: make train-mini's untrained evaluation stands in for the prompted row; one
    with another seed, or of weights since retrained in the same folder, does not."""
    model = tmp_path / "base-model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"weights v1")
    evals = tmp_path / "evals"
    cfg = mini_cfg(tmp_path, votes=1, limit=LIMIT, reuse_evals=[str(evals)])
    cfg.prompted = {"generator": str(model), "judge": str(model)}
    cfg.judge_args["decoding"] = "free"  # the scripted judge has no grammars
    for name, seed in (("other-seed", 1), ("untrained", 0)):
        config = EvalConfig(
            judge="rubric-arm",
            benchmark="mini",
            judge_args={**cfg.judge_args, "generator": str(model), "judge": str(model)},
            seed=seed,
            limit=LIMIT,
        )
        arm = voting_arm(name)
        arm.generator_engine.fingerprint = arm.judge_engine.fingerprint = model_fingerprint(model)
        judge = RubricARMJudge("rubric-arm", arm, {}, votes=1)
        run_eval(config, evals / name, judge=judge, progress=False)
    steps, entries = t2.plan(cfg, Path(cfg.out))
    by_key = {e.key: e for e in entries}
    assert t2.eval_dir(Path(cfg.out), by_key["prompted"], "mini", None) == evals / "untrained"
    assert t2.eval_dir(Path(cfg.out), by_key["sft"], "mini", None).is_relative_to(cfg.out)
    done = {s.name: s.done() for s in steps if s.name.startswith("eval")}
    assert done == {f"eval {e.key} on mini": e.key == "prompted" for e in entries}
    t2.write_report(cfg, Path(cfg.out), entries, t2.how_lines(cfg))
    data = json.loads(Path(cfg.report).with_suffix(".json").read_text())
    prompted = next(r for r in data["rows"] if r["entry"] == "prompted")
    assert not prompted["missing"] and prompted["cells"]["Chat"]["n"] > 0
    cfg.seed = 1
    _, entries = t2.plan(cfg, Path(cfg.out))
    assert next(e for e in entries if e.key == "prompted").reused == {
        "mini": str(evals / "other-seed")
    }
    (model / "model.safetensors").write_bytes(b"weights v2")
    _, entries = t2.plan(cfg, Path(cfg.out))
    assert next(e for e in entries if e.key == "prompted").reused == {}


def test_report_reads_single_and_voting_rows_from_the_runs(tmp_path: Path) -> None:
    cfg = mini_cfg(tmp_path)
    root = Path(cfg.out)
    _, entries = t2.plan(cfg, root)
    for e in entries:
        out = t2.eval_dir(root, e.key, "mini", None)
        config = EvalConfig(judge="rubric-arm", benchmark="mini", votes=3, seed=0)
        judge = RubricARMJudge("rubric-arm", voting_arm(e.key), {}, votes=3)
        run_eval(config, out, judge=judge, progress=False)
    (root / "timings.json").write_text(
        json.dumps({"eval sft on mini": {"seconds": 12.0, "runs": 1}})
    )
    grads = {"alternating": [1.0, 3.0], "joint": [1.0, 5.0, 9.0]}
    for key, norms in grads.items():
        run = Path(next(e.run for e in entries if e.key == key))
        run.mkdir(parents=True)
        rows = [
            {
                "phase": "cycle1-generator",
                "role": "generator",
                "grad/norm": x,
                "grad/projection": -x,
            }
            for x in norms
        ] + [{"phase": "sft-judge", "role": "judge", "grad/norm": 7.0, "grad/projection": 1.0}]
        (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    report = t2.write_report(cfg, root, entries, t2.how_lines(cfg))
    data = json.loads(report.with_suffix(".json").read_text())
    rows = {r["label"]: r for r in data["rows"]}
    assert len(rows) == 12
    arm, arm5 = rows["Rubric-ARM"], rows["Rubric-ARM, voting@3"]
    assert arm["paper"]["Chat"] == 89.4 and arm5["paper_row"] == "Rubric-ARM voting@5"
    assert rows["joint (not in the paper)"]["paper"] is None

    out = t2.eval_dir(root, "alternating", "mini", None)
    records = read_results(out / "records.jsonl")
    chat = [r for r in records if r["subset"] == "easy-chat"]
    assert chat, "the first items must include easy-chat pairs"

    def credit(winner, label):
        return 0.5 if winner is None else float(winner == label)

    def vote0(r):
        return next(j["winner"] for j in r["judgments"] if j["vote"] == 0)

    single = 100 * sum(credit(vote0(r), r["label"]) for r in chat) / len(chat)
    voting = 100 * sum(credit(r["winner"], r["label"]) for r in chat) / len(chat)
    assert arm["cells"]["Chat"]["value"] == pytest.approx(single)
    assert arm5["cells"]["Chat"]["value"] == pytest.approx(voting)
    assert arm["cells"]["Chat"]["n"] == len(chat)
    scores = json.loads((out / "scores.json").read_text())
    runner_chat = next(m for m in scores["metrics"] if m["name"] == "easy-chat")
    assert arm5["cells"]["Chat"]["value"] == pytest.approx(100 * runner_chat["value"])
    assert single != voting or any(vote0(r) != r["winner"] for r in chat)

    text = report.read_text()
    assert "| Chat (ours) | Chat (paper) |" in text
    assert "Columns this profile cannot fill: ChatH" in text
    assert "| **total** | **12** |" in text
    assert report.with_suffix(".png").stat().st_size > 1000
    grad = {g["entry"]: g for g in data["gradients"]}
    assert set(grad) == {"alternating", "joint"}
    assert grad["joint"]["norm_variance"] == pytest.approx(16.0)
    assert grad["alternating"]["projection_variance"] == pytest.approx(2.0)
    assert "| joint (not in the paper) | cycle1 | generator | 3 | 16 |" in text
    assert report.with_name("t2-gradients.png").stat().st_size > 1000

    def credits(key):
        recs = read_results(t2.eval_dir(root, key, "mini", None) / "records.jsonl")
        return {r["id"]: credit(r["winner"], r["label"]) for r in recs}

    paired = {d["entry"]: d for d in data["paired"]}
    assert set(paired) == {"prompted", "sft", "generator_first", "no_format_reward", "joint"}
    base, joint = credits("alternating"), credits("joint")
    expect = sum(joint[i] - base[i] for i in base) / len(base)
    assert paired["joint"]["difference"] == pytest.approx(expect)
    assert paired["joint"]["n"] == len(base) and "## Against alternating (paired)" in text
    avg = arm["avg"]
    cells = [arm["cells"][c]["value"] for c in ("Chat", "PPE-IF", "IFBench")]
    assert avg["value"] == pytest.approx(sum(cells) / 3)
    assert avg["low"] < avg["value"] < avg["high"]


def test_paper_profile_prints_the_plan_and_fails_fast(tmp_path: Path, capsys) -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the paper profile would start")
    cfg = load_config(
        ROOT / "configs" / "reproduce" / "table2-paper.yaml",
        {"out": str(tmp_path / "p"), "report": str(tmp_path / "p.md")},
        cls=t2.Table2Config,
    )
    lines: list[str] = []
    assert t2.reproduce_table2(cfg, log=lines.append) == 2
    text = "\n".join(lines)
    assert "train alternating" in text and "accelerate launch" in text
    assert "build IFBench pairs" in text and "eval released on rewardbench2" in text
    assert "no CUDA GPU visible" in text
    assert not (tmp_path / "p").exists()


def test_recipe_errors_name_the_setting(tmp_path: Path) -> None:
    with pytest.raises(t2.InputError, match="unknown variant"):
        mini_cfg(tmp_path, variants=["alternating", "sideways"])
    with pytest.raises(t2.InputError, match="unknown column"):
        mini_cfg(tmp_path, columns={"Nope": {"benchmark": "mini", "metric": "overall"}})


def _evalset_runs(tmp_path: Path, order: str) -> EvalSetConfig:
    cfg = EvalSetConfig(
        out=str(tmp_path / "es"),
        report=str(tmp_path / "es.md"),
        benchmark="mini",
        limit=LIMIT,
        order=order,
        judges=[
            {"label": "one", "judge": "rubric-arm"},
            {"label": "two", "judge": "rubric-arm"},
        ],
    ).validate()
    for j in cfg.judges:
        config = EvalConfig(judge="rubric-arm", benchmark="mini", limit=LIMIT, order=order)
        judge = RubricARMJudge("rubric-arm", voting_arm(j["label"]), {})
        run_eval(config, run_dir(cfg, j), judge=judge, progress=False)
    return cfg


def test_position_bias_report(tmp_path: Path) -> None:
    from rubric_arm.reproduce.position_bias import write_position_report

    cfg = _evalset_runs(tmp_path, "both")
    report = write_position_report(cfg)
    rows = json.loads(report.with_suffix(".json").read_text())["rows"]
    assert [r["judge"] for r in rows] == ["one", "two"]
    for r in rows:
        assert r["mixed"]["n"] == LIMIT and r["judgments"] == 2 * LIMIT
        assert r["variation"]["low"] <= r["variation"]["value"] <= r["variation"]["high"]
    assert "| one | 16 |" in report.read_text()


def test_position_bias_needs_both_orders(tmp_path: Path) -> None:
    from rubric_arm.reproduce.position_bias import write_position_report

    cfg = _evalset_runs(tmp_path, "random")
    with pytest.raises(t2.InputError, match="--order both"):
        write_position_report(cfg)


def test_efficiency_report(tmp_path: Path) -> None:
    from rubric_arm.reproduce.efficiency import write_efficiency_report

    cfg = _evalset_runs(tmp_path, "random")
    report = write_efficiency_report(cfg)
    rows = json.loads(report.with_suffix(".json").read_text())["rows"]
    # a rubric is reused where an earlier pair of the run has the same prompt
    from rubric_arm.data.mini import load_mini

    prompts = [str(p.prompt) for p in load_mini("heldout")[:LIMIT]]
    reused = sum(p in prompts[:k] for k, p in enumerate(prompts)) / LIMIT
    for r in rows:
        assert r["prompts"] == LIMIT and r["judgments"] == LIMIT
        assert r["seconds_per_100_prompts"] == pytest.approx(100 * r["wall_seconds"] / LIMIT)
        assert r["rubric_cache_hit_rate"] == pytest.approx(reused)
        assert r["judge_tokens_per_judgment"] > 0
    text = report.read_text()
    assert "Hardware:" in text and "JudgeLRM-7B | 25.7" in text
