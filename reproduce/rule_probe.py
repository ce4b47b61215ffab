"""Can the embedded model learn the judge's per-rule compliance check? A controlled probe.

The mini judge audit (reproduce/judge_audit.py) found that a warmed-up judge's verdicts follow its
own "Meets it" / "Fails it" claims, but the claims barely track the verifiers. This probe isolates
that step: one short row per (verifiable instruction, response) of the mini suite, "does this
response meet this requirement?", answered by the model's P(Meets) against P(Fails). It scores
the model before and after SFT on the train split's rows and reports, on held-out rows:

- pairwise: where a pair's two responses differ on an instruction, the share where the passing
  response gets the higher P(Meets) (0.5 is chance; this is what a pairwise verdict needs);
- AUC of P(Meets) over all held-out rows, and the per-instruction-family pairwise rate.

    python -m rubric_arm.reproduce.rule_probe --out runs/rule-probe [--epochs 3]
    python -m rubric_arm.reproduce.rule_probe --out runs/rule-probe --render   # report only

It writes `<out>/probe.json` and the Markdown report `reports/rule-probe.md` (`--report`).
"""

from __future__ import annotations

import argparse
import json
import random
import time
import warnings
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from rubric_arm.data.mini import load_mini
from rubric_arm.harness.report import wilson_interval
from rubric_arm.trainer.rule_rows import ANSWERS, RuleRow, candidate_rule_rows, rule_chat, rule_rows


def render(tokenizer: Any, row: RuleRow) -> str:
    return tokenizer.apply_chat_template(rule_chat(row), tokenize=False, add_generation_prompt=True)


def _batches(
    tokenizer: Any, rows: Sequence[RuleRow], batch: int
) -> Iterator[tuple[list[int], dict[str, Any]]]:
    """Rows rendered and tokenized in left-padded batches of similar length, with their indices."""
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    texts = [render(tokenizer, r) for r in rows]
    lengths = [len(tokenizer.encode(t, add_special_tokens=False)) for t in texts]
    by_length = sorted(range(len(rows)), key=lambda i: lengths[i])
    for start in range(0, len(rows), batch):
        idx = by_length[start : start + batch]
        enc = tokenizer(
            [texts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False
        )
        yield idx, enc


@torch.inference_mode()
def p_meets(model: Any, tokenizer: Any, rows: Sequence[RuleRow], batch: int = 8) -> list[float]:
    """P(Meets) / (P(Meets) + P(Fails)) at the first answer token, one forward pass per row."""
    meets, fails = (tokenizer.encode(a, add_special_tokens=False)[0] for a in ANSWERS)
    out = [0.0] * len(rows)
    model.eval()
    for idx, enc in _batches(tokenizer, rows, batch):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            hidden = model.model(**enc).last_hidden_state[:, -1, :]
            logits = model.lm_head(hidden).float()
        pair = torch.stack([logits[:, meets], logits[:, fails]], dim=1).softmax(dim=1)
        for i, p in zip(idx, pair[:, 0].tolist(), strict=True):
            out[i] = p
    return out


@torch.inference_mode()
def layer_features(
    model: Any, tokenizer: Any, rows: Sequence[RuleRow], batch: int = 8
) -> list[list[list[float]]]:
    """The hidden state at the answer position after every layer: [layer][row][dim]."""
    layers: list[list[list[float]]] = []
    model.eval()
    for idx, enc in _batches(tokenizer, rows, batch):
        states = model.model(**enc, output_hidden_states=True).hidden_states
        if not layers:
            layers = [[[] for _ in rows] for _ in states]
        for k, h in enumerate(states):
            for i, v in zip(idx, h[:, -1, :].float().tolist(), strict=True):
                layers[k][i] = v
    return layers


def linear_probe(
    train_rows: Sequence[RuleRow],
    train_feats: list[list[list[float]]],
    heldout: Sequence[RuleRow],
    heldout_feats: list[list[list[float]]],
) -> list[dict[str, Any]]:
    """A logistic regression per layer on frozen hidden states (C by 5-fold CV on the train
    rows): is the verifier's outcome linearly readable from the model at all?"""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = [r.meets for r in train_rows]
    out = []
    for k, (xtr, xte) in enumerate(zip(train_feats, heldout_feats, strict=True)):
        clf = make_pipeline(
            StandardScaler(), LogisticRegressionCV(Cs=[1e-3, 1e-2, 1e-1, 1.0], cv=5, max_iter=2000)
        )
        with warnings.catch_warnings():  # sklearn 1.9 announces a change of fitted attributes
            warnings.simplefilter("ignore", FutureWarning)
            clf.fit(xtr, y)
        scores = clf.predict_proba(xte)[:, list(clf.classes_).index(True)].tolist()
        out.append({"layer": k, **summarise(heldout, scores)})
        print(f"layer {k}: pairwise {out[-1]['pairwise']:.3f} auc {out[-1]['auc']:.3f}", flush=True)
    return out


def auc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    if not pos or not neg:
        return float("nan")
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def summarise(rows: Sequence[RuleRow], scores: Sequence[float]) -> dict[str, Any]:
    """Pairwise discrimination (with a Wilson CI), per family, AUC and thresholded accuracy."""
    by_key: dict[tuple[str, int], dict[str, tuple[bool, float]]] = defaultdict(dict)
    family: dict[tuple[str, int], str] = {}
    for r, s in zip(rows, scores, strict=True):
        by_key[(r.pair_id, r.rule)][r.side] = (r.meets, s)
        family[(r.pair_id, r.rule)] = r.family
    hits, n = 0.0, 0
    fam: dict[str, list[float]] = defaultdict(list)
    for key, sides in by_key.items():
        if len(sides) != 2 or sides["A"][0] == sides["B"][0]:
            continue
        passing, failing = (sides["A"], sides["B"]) if sides["A"][0] else (sides["B"], sides["A"])
        hit = 1.0 if passing[1] > failing[1] else 0.5 if passing[1] == failing[1] else 0.0
        hits += hit
        n += 1
        fam[family[key]].append(hit)
    labels = [r.meets for r in rows]
    lo, hi = wilson_interval(round(hits), n)
    return {
        "pairwise": hits / n if n else float("nan"),
        "pairwise_ci": [lo, hi],
        "pairwise_n": n,
        "auc": auc(scores, labels),
        "accuracy_at_half": sum((s > 0.5) == y for s, y in zip(scores, labels, strict=True))
        / len(rows),
        "meets_share": sum(labels) / len(labels),
        "rows": len(rows),
        "families": {f: [sum(v) / len(v), len(v)] for f, v in sorted(fam.items())},
    }


def train(
    model: Any, tokenizer: Any, rows: Sequence[RuleRow], out: Path, epochs: float, lr: float
) -> float:
    """SFT on the answers with TRL (loss on the answer token only); returns seconds."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from rubric_arm.trainer.phases import score_labelled_positions_on_cpu

    score_labelled_positions_on_cpu()
    data = Dataset.from_list(
        [{"prompt": render(tokenizer, r), "completion": ANSWERS[0 if r.meets else 1]} for r in rows]
    )
    args = SFTConfig(
        output_dir=str(out / "work"),
        use_cpu=True,
        bf16=True,
        num_train_epochs=epochs,
        learning_rate=lr,
        per_device_train_batch_size=8,
        gradient_accumulation_steps=1,
        lr_scheduler_type="cosine",
        warmup_steps=0.05,
        max_length=640,
        completion_only_loss=True,
        save_strategy="no",
        report_to=[],
        logging_steps=10,
        seed=0,
    )
    start = time.perf_counter()
    SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer).train()
    return time.perf_counter() - start


def _rate(part: dict[str, Any]) -> str:
    low, high = part["pairwise_ci"]
    return (
        f"{100 * part['pairwise']:.1f} [{100 * low:.1f}, {100 * high:.1f}] (n={part['pairwise_n']})"
    )


def render_report(report: dict[str, Any]) -> str:
    """The probe as Markdown: before and after, overall and per instruction family."""
    before, after = report["before"], report["after"]
    args = report["args"]
    source = (
        "every cached candidate of the train-split prompts, responses that also occur in a "
        "held-out pair left out"
        if args.get("candidates") == "True"
        else "both responses of each train pair"
    )
    if args.get("edits", "0") != "0":
        source += (
            f", plus minimal edits of those responses for the 19 IFEval instructions (at most "
            f"{args['edits']} rows per instruction, half meeting it; trainer/rule_edits.py)"
        )
    lines = [
        "# Can SmolLM2-135M learn the per-rule compliance check?",
        "",
        "The judge audit of the mini runs found verdicts that follow the judge's own per-rule",
        '"Meets it" / "Fails it" claims, and claims that barely track the verifiers. This probe',
        "isolates that step: one short row per (verifiable instruction, response) of the mini",
        "suite (the requirement sentence of the warm-up rubrics, then the response), answered by",
        "P(Meets) against P(Fails) at the answer token. SFT (TRL, loss on the answer only) on the",
        f"train split's {report['train_rows']} rows ({source}): {args['epochs']} epochs, "
        f"lr {args['lr']}, "
        f"the top {args['trainable_layers']} layers, bf16 autocast on 2 CPU cores, "
        f"{report['train_seconds'] / 60:.0f} min.",
        "",
        "**pairwise** = where a held-out pair's two responses differ on an instruction, the share",
        "where the passing response gets the higher P(Meets) (0.5 is chance; it is what a pairwise",
        "verdict needs); 95% Wilson interval over those instruction-level comparisons (several can",
        "share a prompt, so the interval is if anything too narrow).",
        "",
        "| model | pairwise | AUC of P(Meets) | accuracy at P = 0.5 | held-out rows |",
        "|---|---|---:|---:|---:|",
    ]
    for name, part in (("untrained", before), ("after rule-check SFT", after)):
        lines.append(
            f"| {name} | {_rate(part)} | {part['auc']:.3f} | {part['accuracy_at_half']:.3f} | "
            f"{part['rows']} |"
        )
    lines += [
        "",
        "Per instruction family (pairwise, n comparisons):",
        "",
        "| family | untrained | after SFT | n |",
        "|---|---:|---:|---:|",
    ]
    for fam, (value, n) in after["families"].items():
        old = before["families"].get(fam, [float("nan"), 0])[0]
        lines.append(f"| {fam} | {100 * old:.0f} | {100 * value:.0f} | {n} |")
    lines += [
        "",
        "Share of held-out rows whose response meets its requirement: "
        f"{100 * after['meets_share']:.1f}%.",
        "",
    ]
    return "\n".join(lines)


def render_linear(report: dict[str, Any]) -> str:
    """The frozen-feature probe as Markdown: held-out discrimination per layer."""
    layers = report["layers"]
    best = max(layers, key=lambda r: r["pairwise"])
    lines = [
        "# Is the compliance check readable from SmolLM2-135M's frozen hidden states?",
        "",
        "The same rows as `reports/rule-probe.md` (one per verifiable instruction and response of",
        "the mini suite), but nothing is fine-tuned: the hidden state after each layer at the",
        "answer position is the input of a logistic regression (standardised, C from 5-fold CV",
        f"over 0.001-1) fitted on the train split's {report['train_rows']} rows and scored on the",
        f"{layers[0]['rows']} held-out rows. Written by `python -m rubric_arm.reproduce.rule_probe",
        "--linear`.",
        "",
        "| layer | pairwise | AUC |",
        "|---:|---|---:|",
    ]
    for r in layers:
        lines.append(f"| {r['layer']} | {_rate(r)} | {r['auc']:.3f} |")
    lines += [
        "",
        f"Best layer: {best['layer']}, {_rate(best)}; picked on the held-out rows out of",
        f"{len(layers)}, so it flatters: read the band of neighbouring layers instead. Layer 0",
        "(the embedding of the last prompt token, the same for every row) is the chance line.",
        "The fine-tuned answer head of `reports/rule-probe.md` (top 10 layers trained) reads",
        "out less than the frozen middle layers hold.",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/rule-probe"))
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--trainable-layers", type=int, default=10)
    parser.add_argument("--balance", action="store_true", help="undersample the majority answer")
    parser.add_argument(
        "--candidates",
        action="store_true",
        help="train on every cached candidate of the train-split prompts (candidate_rule_rows), "
        "not only the responses of train.jsonl's pairs",
    )
    parser.add_argument(
        "--edits",
        type=int,
        default=0,
        help="add minimal-edit rows (trainer/rule_edits.py): at most this many per IFEval "
        "instruction, as many meeting it as failing it",
    )
    parser.add_argument(
        "--score-only",
        action="store_true",
        help="score --model (a name or a trained model folder, e.g. a run's sft-judge) on the "
        "held-out rows without training; prints the summary and writes <out>/score.json",
    )
    parser.add_argument(
        "--linear",
        action="store_true",
        help="no training: fit a logistic regression per layer on the frozen hidden states at the "
        "answer position (train rows) and score the held-out rows; writes <out>/linear.json",
    )
    parser.add_argument("--report", type=Path, default=Path("reports/rule-probe.md"))
    parser.add_argument("--render", action="store_true", help="only write the report")
    args = parser.parse_args(argv)
    if args.render:
        if (args.out / "linear.json").is_file():
            linear = json.loads((args.out / "linear.json").read_text())
            Path("reports/rule-probe-linear.md").write_text(render_linear(linear))
        else:
            args.report.write_text(render_report(json.loads((args.out / "probe.json").read_text())))
        return

    from transformers import AutoModelForCausalLM

    from rubric_arm.models import load_tokenizer, prepare_model
    from rubric_arm.trainer.loop import freeze_lower_layers

    args.out.mkdir(parents=True, exist_ok=True)
    path = prepare_model(args.model)
    tokenizer = load_tokenizer(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, use_safetensors=True)
    heldout = rule_rows(load_mini("heldout"))
    if args.score_only:
        summary = summarise(heldout, p_meets(model, tokenizer, heldout))
        print(json.dumps(summary), flush=True)
        (args.out / "score.json").write_text(json.dumps({"model": str(path), **summary}, indent=2))
        return
    train_rows = candidate_rule_rows() if args.candidates else rule_rows(load_mini("train"))
    if args.edits:
        from rubric_arm.trainer.rule_edits import edit_rule_rows

        train_rows += edit_rule_rows(load_mini("train"), per_instruction=args.edits)
    if args.linear:
        layers = linear_probe(
            train_rows,
            layer_features(model, tokenizer, train_rows),
            heldout,
            layer_features(model, tokenizer, heldout),
        )
        linear = {"model": str(path), "train_rows": len(train_rows), "layers": layers}
        (args.out / "linear.json").write_text(json.dumps(linear))
        Path("reports/rule-probe-linear.md").write_text(render_linear(linear))
        return
    if args.balance:
        pos = [r for r in train_rows if r.meets]
        neg = [r for r in train_rows if not r.meets]
        k = min(len(pos), len(neg))
        rng = random.Random(0)
        train_rows = rng.sample(pos, k) + rng.sample(neg, k)
    random.Random(1).shuffle(train_rows)
    report: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    report["train_rows"] = len(train_rows)
    report["before"] = summarise(heldout, p_meets(model, tokenizer, heldout))
    print("before", json.dumps(report["before"]), flush=True)
    freeze_lower_layers(model, args.trainable_layers)
    report["train_seconds"] = train(model, tokenizer, train_rows, args.out, args.epochs, args.lr)
    report["after"] = summarise(heldout, p_meets(model, tokenizer, heldout))
    print("after", json.dumps(report["after"]), flush=True)
    (args.out / "probe.json").write_text(json.dumps(report, indent=2))
    (args.out / "rows.json").write_text(json.dumps([asdict(r) for r in heldout[:3]], indent=2))
    args.report.write_text(render_report(report))


if __name__ == "__main__":
    main()
