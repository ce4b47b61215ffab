"""Policy runs on TRL: offline DPO / IterDPO on Rubric-ARM-labelled pairs, and online GRPO with the
reward against a greedy reference. A run folder keeps each iteration's sampled and labelled data,
its exported model and `state.json`; rerunning the same command skips finished steps."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset

from rubric_arm.data.runfiles import RunLock
from rubric_arm.errors import InputError
from rubric_arm.policy_reward import RubricARMReward, as_chat
from rubric_arm.trainer.diagnostics import PhaseDiagnostics
from rubric_arm.trainer.phases import Phase, common_args, finish_phase, last_checkpoint, run_grpo
from rubric_arm.trainer.policy.config import PolicyConfig
from rubric_arm.trainer.policy.data import load_policy_data
from rubric_arm.trainer.policy.judging import build_judge, label_pairs, make_reward
from rubric_arm.types import SamplingParams


class PolicyRun:
    """One policy study's run folder: base model, DPO iterations, GRPO, their state."""

    def __init__(self, cfg: PolicyConfig, *, progress: bool = True) -> None:
        self.cfg = cfg
        self.progress = progress
        self.run_dir = cfg.run_dir
        self.state_path = self.run_dir / "state.json"
        self._judge: Any = None
        # one process per run folder; the lock goes with this object (or the process)
        self._lock = RunLock(self.run_dir / "run").acquire()
        self._check_config()

    # ---- bookkeeping -----------------------------------------------------------------------
    def _check_config(self) -> None:
        """The training settings of a run folder are fixed once it has started (eval may vary)."""
        current = {k: v for k, v in self.cfg.to_dict().items() if k not in ("eval",)}
        saved = self.run_dir / "config.json"
        if saved.is_file() and self.state():
            before = json.loads(saved.read_text())
            if before != json.loads(json.dumps(current)):
                changed = sorted(
                    k for k in set(before) | set(current) if before.get(k) != current.get(k)
                )
                raise InputError(
                    f"{self.run_dir} holds a policy run with different settings "
                    f"({', '.join(changed)}); use another name or delete the folder"
                )
        else:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            saved.write_text(json.dumps(current, indent=2, sort_keys=True))
            (self.run_dir / "config.yaml").write_text(self.cfg.to_yaml())

    def close(self) -> None:
        """Give the run folder back (another PolicyRun may then open it)."""
        self._lock.release()

    def state(self) -> dict[str, Any]:
        return json.loads(self.state_path.read_text()) if self.state_path.is_file() else {}

    def _mark(self, key: str, value: Any) -> None:
        state = self.state()
        state[key] = value
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.state_path)

    def _say(self, message: str) -> None:
        if self.progress:
            print(f"[rubric-arm policy] {message}", flush=True)

    @property
    def judge(self) -> Any:
        if self._judge is None:
            self._judge = build_judge(self.cfg.reward)
        return self._judge

    # ---- models ----------------------------------------------------------------------------
    def base_model(self) -> Path:
        """The starting policy (a random-init model of the synthetic task when `model: synthetic`)."""
        from rubric_arm.models import resolve_model

        mc = self.cfg.policy
        if mc.model != "synthetic":
            return resolve_model(mc.model)
        from rubric_arm.trainer import synthetic

        dest = self.run_dir / "models" / "base"
        if not (dest / "config.json").is_file():
            synthetic.build_model(dest, mc, seed=self.cfg.seed)
        return dest

    def _load(self, path: Path) -> tuple[Any, Any]:
        from transformers import AutoModelForCausalLM

        from rubric_arm.models import load_tokenizer

        hw = self.cfg.hardware
        dtype = torch.bfloat16 if hw.bf16 and not hw.use_cpu else torch.float32
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, use_safetensors=True)
        return model, load_tokenizer(path)

    def _engine(self, path: Path, batch_size: int) -> Any:
        from rubric_arm.engines.transformers_engine import TransformersEngine

        device = "cuda" if torch.cuda.is_available() and not self.cfg.hardware.use_cpu else "cpu"
        return TransformersEngine(
            path, batch_size=batch_size, progress=self.progress, device=device
        )

    # ---- DPO / IterDPO ---------------------------------------------------------------------
    def sample_and_label(self, model: Path, iteration: int) -> tuple[list[dict], dict[str, Any]]:
        """Two samples per prompt from `model`, labelled by the judge in both orders; written to
        dpo/iter<k>/pairs.jsonl (reused when the iteration is resumed)."""
        folder = self.run_dir / "dpo" / f"iter{iteration}"
        pairs_file, stats_file = folder / "pairs.jsonl", folder / "label_stats.json"
        if pairs_file.is_file() and stats_file.is_file():
            rows = [json.loads(line) for line in pairs_file.read_text().splitlines() if line]
            return rows, json.loads(stats_file.read_text())
        cfg = self.cfg
        prompts = load_policy_data(cfg).train
        s = cfg.sampling
        params = SamplingParams(
            temperature=s.temperature,
            top_p=s.top_p,
            max_new_tokens=s.max_new_tokens,
            n=2,
            seed=cfg.seed + 7919 * iteration,
        )
        self._say(f"iteration {iteration}: sampling 2 responses for {len(prompts)} prompts")
        outs = self._engine(model, s.batch_size).generate(
            [as_chat(p) for p in prompts], params, desc=f"iter{iteration}: samples"
        )
        first = [o[0].text for o in outs]
        second = [o[1].text for o in outs]
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / "samples.jsonl").open("w") as f:
            for p, a, b in zip(prompts, first, second, strict=True):
                f.write(json.dumps({"prompt": p, "y1": a, "y2": b}) + "\n")
        self._say(f"iteration {iteration}: labelling with {cfg.reward.judge} in both orders")
        rows, stats = label_pairs(
            self.judge,
            prompts,
            first,
            second,
            cfg.reward.seed + iteration,
            margin=cfg.dpo.label_margin,
        )
        info = stats.to_dict()
        tmp = pairs_file.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
        tmp.replace(pairs_file)
        stats_file.write_text(json.dumps(info, indent=2))
        return rows, info

    def _dpo_train(self, model_path: Path, rows: list[dict], iteration: int) -> Path:
        from trl import DPOConfig, DPOTrainer

        cfg, d = self.cfg, self.cfg.dpo
        phase = Phase(f"dpo-iter{iteration}", "policy", self.run_dir, cfg.seed + iteration)
        model, tok = self._load(model_path)
        data = Dataset.from_list(
            [
                {
                    "prompt": as_chat(r["prompt"]),
                    "chosen": [{"role": "assistant", "content": r["chosen"]}],
                    "rejected": [{"role": "assistant", "content": r["rejected"]}],
                }
                for r in rows
            ]
        )
        losses: dict[str, Any] = {"loss_type": ["sigmoid"]}
        if d.sft_weight > 0:
            losses = {"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, d.sft_weight]}
        args = DPOConfig(
            **common_args(cfg.hardware, phase),
            beta=d.beta,
            learning_rate=d.learning_rate,
            num_train_epochs=d.num_train_epochs,
            max_steps=d.max_steps,
            per_device_train_batch_size=d.per_device_train_batch_size,
            gradient_accumulation_steps=d.gradient_accumulation_steps,
            max_length=d.max_length,
            **losses,
        )
        diag = PhaseDiagnostics(phase.name, "policy", phase.log_path, phase.tb_dir, None)
        trainer = DPOTrainer(
            model=model, args=args, train_dataset=data, processing_class=tok, callbacks=[diag]
        )
        trainer.train(resume_from_checkpoint=last_checkpoint(phase.work_dir))
        return finish_phase(trainer, phase, tok, diag)

    def dpo(self) -> list[Path]:
        """`dpo.iterations` rounds of sample -> label -> DPO; returns each round's model."""
        current = self.base_model()
        models = []
        for it in range(1, self.cfg.dpo.iterations + 1):
            key = f"dpo-iter{it}"
            done = self.state().get(key)
            if done:
                current = Path(done["model"])
                models.append(current)
                continue
            start = time.perf_counter()
            rows, stats = self.sample_and_label(current, it)
            self._say(label_summary(it, stats))
            if rows:
                current = self._dpo_train(current, rows, it)
            else:
                self._say(f"iteration {it}: no pair kept, the policy is left unchanged")
            record = {"model": str(current), "label_stats": stats, "trained": bool(rows)}
            record["seconds"] = round(time.perf_counter() - start, 1)
            self._mark(key, record)
            models.append(current)
        return models

    # ---- online GRPO -----------------------------------------------------------------------
    def grpo(self) -> Path:
        """Online GRPO of the policy with the judge's reward against its own greedy reference."""
        done = self.state().get("grpo")
        if done:
            return Path(done["model"])
        cfg, g = self.cfg, self.cfg.grpo
        start = time.perf_counter()
        base = self.base_model()
        model, tok = self._load(base)
        policy_engine = self._engine(base, cfg.sampling.batch_size)
        policy_engine.use_weights(model, fingerprint="live-policy")
        reward = self.grpo_reward(policy_engine)
        chats = [as_chat(p) for p in load_policy_data(cfg).train]
        fitting = [c for c in chats if policy_engine.chat_tokens(c) <= g.max_prompt_tokens]
        data = Dataset.from_list([{"prompt": c} for c in fitting])
        phase = Phase("grpo", "policy", self.run_dir, cfg.seed)
        out = run_grpo(model, tok, data, reward, g, cfg.hardware, phase, (None, None), None)
        stats = reward.stats.to_dict()
        self._mark(
            "grpo",
            {
                "model": str(out),
                "reward_stats": stats,
                "score": g.score,
                "prompts_too_long": len(chats) - len(fitting),
                "seconds": round(time.perf_counter() - start, 1),
            },
        )
        fallbacks = f", prob fallbacks {stats['prob_fallbacks']}" if g.score == "prob" else ""
        self._say(
            f"grpo ({g.score} reward): reward calls {stats['calls']}, rubrics generated "
            f"{stats['rubrics_generated']}, unparsed verdicts {stats['unparsed_verdicts']}"
            f"{fallbacks}"
        )
        return out

    def grpo_reward(self, policy_engine: Any) -> RubricARMReward:
        """The GRPO reward of this run: the configured judge (or the `grpo.reward_url` service)
        against `policy_engine`'s greedy reference, in the form `grpo.score`."""
        cfg, g = self.cfg, self.cfg.grpo
        if g.reward_url:
            from rubric_arm.trainer.policy.remote import RemoteReward

            return RemoteReward(
                g.reward_url, policy_engine, cfg.sampling.max_new_tokens, score=g.score
            )
        return make_reward(
            self.judge, policy_engine, cfg.sampling.max_new_tokens, cfg.reward.seed, score=g.score
        )


def label_summary(iteration: int, stats: dict[str, Any]) -> str:
    """One line on what the labelling of a DPO iteration kept and dropped, by its rule (label
    stats written before the margin rule existed read as the agreement rule)."""
    head = (
        f"iteration {iteration}: kept {stats['kept']} of {stats['judged']} judged pairs "
        f"({stats['kept_fraction']:.0%}; {stats.get('rule', 'both orders agree')}); "
        f"identical {stats['identical']}, "
    )
    if stats.get("margin") is None:
        return head + f"disagreed {stats['disagreed']}, unparsed {stats['unparsed']}"
    return (
        head + f"below the margin {stats.get('below_margin', 0)}, "
        f"without a verdict probability {stats.get('no_probability', 0)}"
    )
