"""The Rubric-ARM training run: Stage I SFT for both models, then `cycles` of Stage II GRPO.

Alternating schedule, per cycle on its own slice: (a) one rubric per example sampled from the
frozen generator and cached; (b) judge GRPO on those rubrics (R_acc + R_fmt, order shuffled with
a seed; with `eval.aggregation: explicit` single Meets / Fails checks, R_acc of each); (c)
generator GRPO rewarded by one greedy rollout of the just-updated, frozen judge
(`order: generator_first` swaps b and c). Joint schedule: both models step in turn on every
batch, with fresh uncached rubrics from the current generator and rewards from the current judge.

Every phase exports a plain HF folder and is recorded in `state.json`; a rerun of the same command
skips finished phases and resumes an unfinished one from its last Trainer checkpoint. Models are
reloaded from the last export at every phase (never per step), so an interrupted and an
uninterrupted run take exactly the same path. Adam state is saved per model between phases.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset

from rubric_arm.cache import RubricCache
from rubric_arm.checklist import (
    CHECK_ANSWERS,
    CHECK_CONSTRAINT,
    check_chat,
    check_target,
    checked_criteria,
)
from rubric_arm.data.runfiles import RunLock
from rubric_arm.engines.hf_tokens import HFTokenizerEngine
from rubric_arm.engines.transformers_engine import prefer_gqa_attention
from rubric_arm.errors import InputError
from rubric_arm.pipeline import RubricARM, random_order, stable_hash
from rubric_arm.records import JudgeRecord
from rubric_arm.templates import load_template
from rubric_arm.trainer.config import GRPOPhaseConfig, TrainConfig
from rubric_arm.trainer.data import TrainData, cycle_slices, load_train_data
from rubric_arm.trainer.diagnostics import GradientProbe
from rubric_arm.trainer.phases import Phase, run_grpo, run_sft, sft_dataset
from rubric_arm.trainer.rewards import CheckReward, GeneratorReward, JudgeReward
from rubric_arm.trainer.rollouts import EngineRollouts
from rubric_arm.trainer.warmup_mini import rule_outcomes, verifier_outcome
from rubric_arm.types import Constraint, PreferencePair, SamplingParams, as_shown, prompt_text

ROLES = ("generator", "judge")


class StopRequested(Exception):
    """Raised after the phase named by --stop-after is recorded (the rest runs on the next call)."""


class TokenizerView(HFTokenizerEngine):
    """Rendering and token counting with a model's tokenizer, for building prompts of a model
    that is being trained (it never generates)."""

    def __init__(self, tokenizer: Any, context_length: int, fingerprint: str = "") -> None:
        self.tokenizer = tokenizer
        self.context_length = context_length
        self.fingerprint = fingerprint
        self.name = "tokenizer"

    def generate(self, chats: Any, params: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a TokenizerView only renders prompts")


def phase_names(cfg: TrainConfig) -> list[tuple[str, str]]:
    """(phase name, role) in run order; a joint cycle is one phase that trains both models."""
    names: list[tuple[str, str]] = []
    if cfg.sft.enabled:
        names += [(f"sft-{r}", r) for r in ROLES if getattr(cfg.sft, r).enabled]
    for c in range(1, cfg.cycles + 1):
        if cfg.schedule == "joint":
            names.append((f"cycle{c}-joint", "both"))
            continue
        first, second = ("judge", "generator") if cfg.order == "judge_first" else ROLES
        names += [(f"cycle{c}-{first}", first), (f"cycle{c}-{second}", second)]
    return names


class RubricARMTrainer:
    """Runs (or resumes) one training run described by a TrainConfig."""

    def __init__(
        self, cfg: TrainConfig, *, progress: bool = True, stop_after: str | None = None
    ) -> None:
        from accelerate import PartialState

        self.cfg = cfg
        self.stop_after = stop_after
        self.progress = progress
        self.state_ = PartialState()
        self.run_dir = cfg.run_dir
        self.state_path = self.run_dir / "state.json"
        self.templates = {
            "generator": load_template(cfg.generator.template),
            "judge": load_template(cfg.judge.template),
        }
        self.cache = RubricCache(self.run_dir / "rubric_cache.sqlite", enabled=cfg.rubric_cache)

    # ---- bookkeeping -----------------------------------------------------------------------
    def _check_config(self) -> None:
        saved = self.run_dir / "config.json"
        current = self.cfg.to_dict()
        if saved.is_file():
            before = json.loads(saved.read_text())
            # neither the held-out evaluation settings nor where the run folder lives (a moved
            # or copied folder resumes) change what is trained
            changed = sorted(
                k
                for k in set(before) | set(current)
                if k not in ("eval", "output_dir") and before.get(k) != current.get(k)
            )
            if changed and not self.done()["phases"]:
                changed = []  # nothing was trained under the old settings: the folder is free
            if not changed and before != current and self.state_.is_main_process:
                saved.write_text(json.dumps(current, indent=2, sort_keys=True))
                (self.run_dir / "config.yaml").write_text(self.cfg.to_yaml())
            if changed:
                raise InputError(
                    f"{self.run_dir} holds a run with different settings ({', '.join(changed)}); "
                    "use another name or output_dir, or delete the folder to start over"
                )
        elif self.state_.is_main_process:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            saved.write_text(json.dumps(current, indent=2, sort_keys=True))
            (self.run_dir / "config.yaml").write_text(self.cfg.to_yaml())
        self.state_.wait_for_everyone()

    def done(self) -> dict[str, Any]:
        if self.state_path.is_file():
            return json.loads(self.state_path.read_text())
        return {"phases": {}, "base": {}}

    def _mark(self, key: str, value: Any, section: str = "phases") -> None:
        if self.state_.is_main_process:
            state = self.done()
            state.setdefault(section, {})[key] = value
            tmp = self.state_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(state, indent=2))
            tmp.replace(self.state_path)
        self.state_.wait_for_everyone()

    # ---- models ----------------------------------------------------------------------------
    def base_models(self) -> dict[str, Path]:
        """The starting weights of both models (built once for the synthetic task)."""
        from rubric_arm.models import resolve_model

        out = {}
        for role in ROLES:
            mc = getattr(self.cfg, role)
            if mc.model == "synthetic":
                from rubric_arm.trainer import synthetic

                dest = self.run_dir / "models" / f"base-{role}"
                if self.state_.is_main_process and not (dest / "config.json").is_file():
                    synthetic.build_model(
                        dest, mc, seed=self.cfg.seed + (0 if role == "generator" else 1)
                    )
                self.state_.wait_for_everyone()
                out[role] = dest
            else:
                out[role] = resolve_model(mc.model)
        return out

    def current_models(self) -> dict[str, Path]:
        """Each model's newest weights: its last finished phase's export, else its base."""
        paths = dict(self.base_models())
        state = self.done()["phases"]
        for name, role in phase_names(self.cfg):
            if name in state:
                for r in ROLES if role == "both" else (role,):
                    paths[r] = self._export(
                        state[name][r] if role == "both" else state[name]["export"]
                    )
        return paths

    def _export(self, recorded: str) -> Path:
        """A finished phase's model folder: the one under this run folder when it is there (the
        folder was moved or copied since the path was recorded), else the recorded path."""
        here = self.run_dir / "models" / Path(recorded).name
        return here if here.is_dir() else Path(recorded)

    def _load(self, path: Path, role: str | None = None) -> tuple[Any, Any]:
        """A model to train as `role` (its `trainable_layers` applied) and its tokenizer."""
        from transformers import AutoModelForCausalLM

        from rubric_arm.models import load_tokenizer

        tok = load_tokenizer(path)
        dtype = torch.bfloat16 if self.cfg.hardware.bf16 and not self.cfg.hardware.use_cpu else None
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=dtype or torch.float32, use_safetensors=True
        )
        prefer_gqa_attention(model)
        if role is not None:
            freeze_lower_layers(
                model,
                getattr(self.cfg, role).trainable_layers,
                checkpointing=self.cfg.hardware.gradient_checkpointing,
            )
        return model, tok

    def _optimizer(self, role: str, model: Any) -> tuple[Any, Any]:
        """The model's Adam, with its state from the previous phase of the same model."""
        lr = getattr(self.cfg.grpo, role).learning_rate
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
        saved = self.run_dir / "optim" / f"{role}.pt"
        if saved.is_file():
            opt.load_state_dict(torch.load(saved, weights_only=True))
            for group in opt.param_groups:
                group["lr"] = lr
                group["initial_lr"] = lr
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
        return opt, sched

    def _save_optimizer(self, role: str, opt: Any) -> None:
        if self.state_.is_main_process:
            path = self.run_dir / "optim" / f"{role}.pt"
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(opt.state_dict(), path.with_suffix(".tmp"))
            path.with_suffix(".tmp").replace(path)
        self.state_.wait_for_everyone()

    def _engine(self, path: Path, live: Any = None) -> Any:
        """An engine on the model folder `path`, or serving the in-memory model `live` (its
        weights are then not loaded again)."""
        from rubric_arm.engines.transformers_engine import TransformersEngine

        engine = TransformersEngine(
            path,
            batch_size=self.cfg.hardware.judge_batch_size,
            progress=False,
            device="cuda" if torch.cuda.is_available() and not self.cfg.hardware.use_cpu else "cpu",
            model=live,
        )
        if live is not None:
            engine.fingerprint = f"live:{path.name}"
        return engine

    # ---- prompts ---------------------------------------------------------------------------
    def judge_rows(
        self,
        pairs: list[PreferencePair],
        rubrics: list[Any],
        view: HFTokenizerEngine,
        seed: int,
        grammars: dict[str, Constraint | None] | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """Judge-phase prompts (rubric filled, order shuffled with `seed`) and how many pairs did
        not fit the context; `grammars` gets each prompt's judgment grammar (its rubric's)."""
        arm = self._arm(view, view)
        budget = self.cfg.grpo.judge.max_completion_length
        rows, skipped = [], 0
        for pair, rr in zip(pairs, rubrics, strict=True):
            o = random_order(pair.id, seed)
            rec = JudgeRecord(id=pair.id, subset=pair.subset, label=pair.label, status="ok")
            chat = arm.judge_chat(pair, rr.rubric, o, rec) if rr.status == "ok" else None
            if chat is None or pair.label is None:
                skipped += 1
                continue
            shown = as_shown(pair.label, o)
            prompt = view.render(chat)
            if grammars is not None:
                fmt = self.templates["judge"].output_format(rr.rubric)
                grammars[prompt] = fmt and fmt.constraint(budget, view.count_tokens)
            rows.append(
                {
                    "prompt": prompt,
                    "label": shown,
                    "n_criteria": len(rr.rubric.criteria),
                }
            )
        return rows, skipped

    def check_rows(
        self, pairs: list[PreferencePair], rubrics: list[Any], view: HFTokenizerEngine
    ) -> tuple[list[dict[str, Any]], int]:
        """Check-phase prompts of an explicitly aggregating judge: one per (checked criterion,
        response) of each labelled pair, with the answer that favours the labelled winner
        (`checklist.check_target`) or, under `check_targets: verifier`, the checker's result for
        the constraint the criterion names; and how many pairs gave none (no label, no
        criterion). Each row says where its target came from (`target_source`: "label", "verifier"
        where the checker agrees with the label's answer, "verifier_override" where it does not)."""
        g = self.cfg.grpo.judge
        budget = max(64, g.max_prompt_tokens - 128)
        verify = self.cfg.check_targets == "verifier"
        rows, skipped = [], 0
        for pair, rr in zip(pairs, rubrics, strict=True):
            criteria = checked_criteria(rr.rubric) if rr.status == "ok" else []
            if not criteria or pair.label is None:
                skipped += 1
                continue
            outcomes = rule_outcomes(pair) if verify else []
            for side, response in (("A", pair.response_a), ("B", pair.response_b)):
                text = view.truncate(response, budget)
                for c in criteria:
                    target, source = check_target(side, pair.label), "label"
                    ok = verifier_outcome(c.text, outcomes, side)
                    if ok is not None:
                        checked = CHECK_ANSWERS[0] if ok else CHECK_ANSWERS[1]
                        source = "verifier" if checked == target else "verifier_override"
                        target = checked
                    rows.append(
                        {
                            "prompt": view.render(check_chat(c.text, text)),
                            "target": target,
                            "target_source": source,
                        }
                    )
        return rows, skipped

    def _judge_task(
        self,
        pairs: list[PreferencePair],
        rubrics: list[Any],
        view: HFTokenizerEngine,
        seed: int,
        grammars: dict[str, Constraint | None] | None = None,
    ) -> tuple[list[dict[str, Any]], int, Any]:
        """A judge phase's rows, pairs left out and reward: single checks under explicit
        aggregation (`check_rows`, CheckReward), else written judgments (`judge_rows`)."""
        if self.cfg.eval.aggregation == "explicit":
            rows, skipped = self.check_rows(pairs, rubrics, view)
            return rows, skipped, CheckReward()
        rows, skipped = self.judge_rows(pairs, rubrics, view, seed=seed, grammars=grammars)
        return rows, skipped, JudgeReward(self.cfg.format_reward)

    @property
    def _graded_generator(self) -> bool:
        return self.cfg.generator_reward == "probability"

    def _eval_arm(self, engine: Any, *, cache: RubricCache | bool = False) -> RubricARM:
        """`engine` in both roles under the decoding, rubric item limit and aggregation of
        evaluation (`eval.decoding`, `eval.max_rubric_items`, `eval.aggregation`): the frozen
        judge behind the generator's reward judges as it will be used, and the judge phase's
        sampled rubrics are shaped like those it is tested with (there only the generator runs;
        `judge_rows` and `check_rows` render prompts)."""
        return self._arm(
            engine,
            engine,
            cache=cache,
            decoding=self.cfg.eval.decoding,
            max_rubric_items=self.cfg.eval.max_rubric_items,
            aggregation=self.cfg.eval.aggregation,
        )

    def _arm(
        self,
        generator: Any,
        judge: Any,
        *,
        cache: RubricCache | bool = False,
        decoding: str = "free",
        max_rubric_items: int = 8,
        aggregation: str = "implicit",
    ) -> RubricARM:
        cfg = self.cfg
        return RubricARM(
            generator,
            judge,
            generator_template=self.templates["generator"],
            judge_template=self.templates["judge"],
            rubric_sampling=SamplingParams(
                temperature=cfg.rubric_temperature,
                top_p=cfg.grpo.generator.top_p,
                max_new_tokens=cfg.rubric_max_tokens,
            ),
            judge_sampling=SamplingParams(
                temperature=0.0, max_new_tokens=cfg.grpo.judge.max_completion_length
            ),
            cache=cache,
            decoding=decoding,  # type: ignore[arg-type]
            max_rubric_items=max_rubric_items,
            aggregation=aggregation,
        )

    def generator_rows(
        self, pairs: list[PreferencePair], view: HFTokenizerEngine, max_tokens: int
    ) -> tuple[list[dict], int]:
        """Generator-phase prompts, and how many were longer than `max_tokens` (left out)."""
        rows, skipped = [], 0
        for p in pairs:
            chat = self.templates["generator"].render(prompt=prompt_text(p.prompt))
            if view.chat_tokens(chat) > max_tokens:
                skipped += 1
                continue
            rows.append({"prompt": view.render(chat), "pair_json": json.dumps(p.to_dict())})
        return rows, skipped

    # ---- phases ----------------------------------------------------------------------------
    def _phase(self, name: str, role: str, index: int) -> Phase:
        return Phase(name, role, self.run_dir, seed=self.cfg.seed + 1000 * index)

    def _sft(self, phase: Phase, path: Path, data: TrainData) -> Path:
        model, tok = self._load(path, phase.role)
        rows = data.sft_rubrics if phase.role == "generator" else data.sft_judgments
        view = TokenizerView(tok, _context(model))
        ds = sft_dataset(rows, self.templates[phase.role], phase.role, view.render)
        return run_sft(model, tok, ds, getattr(self.cfg.sft, phase.role), self.cfg.hardware, phase)

    def _grpo_judge(self, phase: Phase, paths: dict[str, Path], pairs: list, cycle: int) -> Path:
        cfg = self.cfg
        model, tok = self._load(paths["judge"], "judge")
        view = TokenizerView(tok, _prompt_context(model, cfg.grpo.judge))
        gen_engine = self._engine(paths["generator"])
        constrained = cfg.grpo.judge.rollout_decoding == "constrained"
        grammars: dict[str, Constraint | None] | None = {} if constrained else None
        # an explicitly aggregating judge is rolled out on what it is used for: single checks
        checks = cfg.eval.aggregation == "explicit"
        arm = self._eval_arm(gen_engine, cache=self.cache)
        arm.rubric_sampling = _seeded(arm.rubric_sampling, stable_hash(cfg.seed, "rubrics", cycle))
        if cfg.rubric_cache:
            # The main process samples and caches; the others then read the same rubrics.
            prompts = [p.prompt for p in pairs]
            if self.state_.is_main_process:
                rubrics = arm.rubrics(prompts, desc=f"{phase.name}: rubrics")
            self.state_.wait_for_everyone()
            if not self.state_.is_main_process:
                rubrics = arm.rubrics(prompts, desc=f"{phase.name}: rubrics")
            rows, skipped, reward = self._judge_task(pairs, rubrics, view, phase.seed, grammars)
            self._log_event(
                phase,
                rubrics_cached=sum(r.cached for r in rubrics),
                too_long=skipped,
                **_target_counts(rows),
            )
            ds = Dataset.from_list(rows)
        else:
            ds = _fresh_rubric_dataset(self, pairs, gen_engine, view, phase, grammars)
        opt, sched = self._optimizer("judge", model)
        if checks:
            constraint_for = (lambda _prompt: CHECK_CONSTRAINT) if constrained else None
        else:
            constraint_for = grammars.get if grammars is not None else None
        rollouts = self._rollouts(cfg.grpo.judge, paths["judge"], model, phase, constraint_for)
        if not cfg.rubric_cache:
            reward = JudgeReward(cfg.format_reward)  # explicit aggregation needs the cache
        out = run_grpo(
            model, tok, ds, reward, cfg.grpo.judge, cfg.hardware, phase, (opt, sched),
            GradientProbe(model, seed=cfg.seed), rollout_func=rollouts,
        )  # fmt: skip
        self._rollout_event(phase, rollouts)
        self._save_optimizer("judge", opt)
        return out

    def _grpo_generator(self, phase: Phase, paths: dict[str, Path], pairs: list) -> Path:
        cfg = self.cfg
        model, tok = self._load(paths["generator"], "generator")
        view = TokenizerView(tok, _context(model))
        judge_engine = self._engine(paths["judge"])
        reward = GeneratorReward(
            self._eval_arm(judge_engine), seed=phase.seed, graded=self._graded_generator
        )
        rows, skipped = self.generator_rows(pairs, view, cfg.grpo.generator.max_prompt_tokens)
        self._log_event(phase, too_long=skipped)
        ds = Dataset.from_list(rows)
        opt, sched = self._optimizer("generator", model)
        constraint_for = None
        if cfg.grpo.generator.rollout_decoding == "constrained":
            fmt = self.templates["generator"].output_format(
                None, {"max_items": cfg.eval.max_rubric_items}
            )
            grammar = fmt and fmt.constraint(
                cfg.grpo.generator.max_completion_length, view.count_tokens
            )

            def constraint_for(_prompt: str) -> Constraint | None:
                return grammar  # one rubric grammar for every prompt

        rollouts = self._rollouts(
            cfg.grpo.generator, paths["generator"], model, phase, constraint_for
        )
        out = run_grpo(
            model, tok, ds, reward, cfg.grpo.generator, cfg.hardware, phase, (opt, sched),
            GradientProbe(model, seed=cfg.seed), rollout_func=rollouts,
        )  # fmt: skip
        self._rollout_event(phase, rollouts)
        self._save_optimizer("generator", opt)
        return out

    def _rollouts(
        self,
        g: GRPOPhaseConfig,
        path: Path,
        model: Any,
        phase: Phase,
        constraint_for: Any,
    ) -> EngineRollouts | None:
        """The phase's `rollout_func` (None: TRL generates), serving the live `model`;
        `constraint_for(prompt)` is the output grammar of constrained rollouts (None: free)."""
        if g.rollouts != "engine":
            return None
        return EngineRollouts(
            self._engine(path, live=model),
            max_new_tokens=g.max_completion_length,
            temperature=g.temperature,
            top_p=g.top_p,
            seed=phase.seed,
            constraint_for=constraint_for,
            mask_forced=g.mask_forced_tokens,
        )

    def _rollout_event(self, phase: Phase, rollouts: EngineRollouts | None) -> None:
        if rollouts is not None:
            self._log_event(phase, rollouts=rollouts.stats.to_dict())

    def _joint(self, phase: Phase, paths: dict[str, Path], pairs: list) -> dict[str, Path]:
        """Both models step in turn on every batch: the generator against the current judge,
        then the judge on fresh rubrics from the current generator. No rubric is cached."""
        cfg = self.cfg
        models = {r: self._load(paths[r], r) for r in ROLES}
        opts = {r: self._optimizer(r, models[r][0]) for r in ROLES}
        probes = {r: GradientProbe(models[r][0], seed=cfg.seed) for r in ROLES}
        judge_engine = self._engine(paths["judge"], live=models["judge"][0])
        gen_engine = self._engine(paths["generator"], live=models["generator"][0])
        g_cfg, j_cfg = cfg.grpo.generator, cfg.grpo.judge
        views = {
            r: TokenizerView(models[r][1], _prompt_context(models[r][0], getattr(cfg.grpo, r)))
            for r in ROLES
        }
        per_step = min(
            g_cfg.per_device_train_batch_size * g_cfg.gradient_accumulation_steps // g_cfg.num_generations,
            j_cfg.per_device_train_batch_size * j_cfg.gradient_accumulation_steps // j_cfg.num_generations,
        )  # fmt: skip
        per_step = max(1, per_step) * self.state_.num_processes
        chunks = [pairs[k : k + per_step] for k in range(0, len(pairs) - per_step + 1, per_step)]
        limit = min(x for x in (g_cfg.max_steps, j_cfg.max_steps, len(chunks)) if x > 0)
        outs: dict[str, Path] = {}
        for step, chunk in enumerate(chunks[:limit]):
            sub = {
                r: Phase(f"{phase.name}-step{step}-{r}", r, self.run_dir, phase.seed + step)
                for r in ROLES
            }
            reward = GeneratorReward(
                self._eval_arm(judge_engine),
                seed=phase.seed + step,
                graded=self._graded_generator,
            )
            gen_rows, _ = self.generator_rows(chunk, views["generator"], g_cfg.max_prompt_tokens)
            ds = Dataset.from_list(gen_rows)
            outs["generator"] = run_grpo(
                models["generator"][0], models["generator"][1], ds, reward, g_cfg, cfg.hardware,
                sub["generator"], opts["generator"], probes["generator"], max_steps=1,
                step_offset=step,
            )  # fmt: skip
            arm = self._eval_arm(gen_engine)
            arm.rubric_sampling = _seeded(arm.rubric_sampling, stable_hash(phase.seed, step))
            rubrics = arm.rubrics([p.prompt for p in chunk], desc="fresh rubrics")
            rows, _, j_reward = self._judge_task(chunk, rubrics, views["judge"], phase.seed + step)
            outs["judge"] = run_grpo(
                models["judge"][0], models["judge"][1], Dataset.from_list(rows), j_reward, j_cfg,
                cfg.hardware, sub["judge"], opts["judge"], probes["judge"], max_steps=1,
                step_offset=step,
            )  # fmt: skip
        for r in ROLES:
            self._save_optimizer(r, opts[r][0])
        final = {r: self.run_dir / "models" / f"{phase.name}-{r}" for r in ROLES}
        if self.state_.is_main_process:
            import shutil

            for r in ROLES:
                if final[r].exists():
                    shutil.rmtree(final[r])
                shutil.copytree(outs[r], final[r])
            for stale in (self.run_dir / "models").glob(f"{phase.name}-step*"):
                shutil.rmtree(stale)
        self.state_.wait_for_everyone()
        return final

    def _log_event(self, phase: Phase, **values: Any) -> None:
        if self.state_.is_main_process:
            with (self.run_dir / "metrics.jsonl").open("a") as f:
                f.write(json.dumps({"phase": phase.name, "event": "data", **values}) + "\n")

    # ---- the run ---------------------------------------------------------------------------
    def run(self) -> dict[str, Path]:
        """Every unfinished phase in order; returns the final model folders. One process trains
        a run folder at a time (the main process holds `run.lock` there)."""
        if self.stop_after and self.stop_after not in dict(phase_names(self.cfg)):
            raise InputError(f"--stop-after {self.stop_after!r} is not a phase of this run")
        lock = RunLock(self.run_dir / "run") if self.state_.is_main_process else None
        if lock is not None:
            lock.acquire()
        try:
            return self._run_phases()
        finally:
            if lock is not None:
                lock.release()

    def _run_phases(self) -> dict[str, Path]:
        self._check_config()
        data = load_train_data(self.cfg)
        slices = cycle_slices(data.train, self.cfg.cycles, self.cfg.seed)
        self._mark("base", {r: str(p) for r, p in self.base_models().items()}, section="info")
        for index, (name, role) in enumerate(phase_names(self.cfg)):
            if name in self.done()["phases"]:
                continue
            paths = self.current_models()
            phase = self._phase(name, role, index)
            start = time.perf_counter()
            self._say(f"phase {name}: start")
            if name.startswith("sft-"):
                out = self._sft(phase, paths[role], data)
                record: dict[str, Any] = {"export": str(out)}
            else:
                cycle = int(name.split("-")[0].removeprefix("cycle"))
                pairs = slices[cycle - 1]
                if role == "judge":
                    record = {"export": str(self._grpo_judge(phase, paths, pairs, cycle))}
                elif role == "generator":
                    record = {"export": str(self._grpo_generator(phase, paths, pairs))}
                else:
                    record = {r: str(p) for r, p in self._joint(phase, paths, pairs).items()}
            record["seconds"] = round(time.perf_counter() - start, 2)
            self._mark(name, record)
            self._say(f"phase {name}: done in {record['seconds']:.1f} s")
            if name == self.stop_after:
                raise StopRequested(name)
        return self.current_models()

    def _say(self, message: str) -> None:
        if self.progress and self.state_.is_main_process:
            print(f"[rubric-arm train] {message}", flush=True)


def _target_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    """How many check rows took each kind of target (none for written-judgment rows)."""
    return dict(Counter(f"targets_{r['target_source']}" for r in rows if "target_source" in r))


def _context(model: Any) -> int:
    text = model.config.get_text_config(decoder=True)
    return int(getattr(text, "max_position_embeddings", 0) or 2048)


def _prompt_context(model: Any, phase_cfg: GRPOPhaseConfig) -> int:
    """The context GRPO prompts are built for: the model's, capped at `max_prompt_tokens` plus the
    completion, so the judge pipeline truncates responses to keep each prompt within the cap."""
    return min(_context(model), phase_cfg.max_prompt_tokens + phase_cfg.max_completion_length)


def _seeded(params: SamplingParams, seed: int) -> SamplingParams:
    return params if params.greedy else replace(params, seed=seed)


def freeze_lower_layers(model: Any, trainable: int | None, *, checkpointing: bool = False) -> None:
    """Leave only the top `trainable` decoder layers and the final norm trainable (None: all).

    The input embeddings are frozen too, and with them a tied output head. Backward then stops at
    the lowest trained layer (a third of the backward pass with 10 of SmolLM2's 30 layers); only
    reentrant gradient checkpointing needs an input that requires grad, so only then is one made."""
    if trainable is None:
        return
    layers = model.get_decoder().layers
    if not 1 <= trainable <= len(layers):
        raise InputError(f"trainable_layers must be in 1..{len(layers)}, got {trainable}")
    model.requires_grad_(False)
    for layer in layers[len(layers) - trainable :]:
        layer.requires_grad_(True)
    model.get_decoder().norm.requires_grad_(True)
    head = model.get_output_embeddings()
    if head is not None and head.weight is not model.get_input_embeddings().weight:
        head.requires_grad_(True)
    if checkpointing:
        model.enable_input_require_grads()


def _fresh_rubric_dataset(
    trainer: RubricARMTrainer,
    pairs: list[PreferencePair],
    gen_engine: Any,
    view: HFTokenizerEngine,
    phase: Phase,
    grammars: dict[str, Constraint | None] | None = None,
) -> Dataset:
    """The `rubric_cache: false` ablation: a new rubric is sampled (never stored) every time the
    GRPO trainer draws a batch, so the judge never sees the same rubric twice for an example."""
    arm = trainer._eval_arm(gen_engine)
    calls = {"n": 0}
    by_id = {p.id: p for p in pairs}

    def transform(batch: dict[str, list]) -> dict[str, list]:
        calls["n"] += 1
        chosen = [by_id[i] for i in batch["pair_id"]]
        arm.rubric_sampling = _seeded(arm.rubric_sampling, stable_hash(phase.seed, calls["n"]))
        rubrics = arm.rubrics([p.prompt for p in chosen], desc="fresh rubrics")
        rows, _ = trainer.judge_rows(chosen, rubrics, view, seed=phase.seed, grammars=grammars)
        if len(rows) != len(chosen):
            raise InputError("a pair no longer fits the judge's context with a fresh rubric")
        return {k: [r[k] for r in rows] for k in ("prompt", "label", "n_criteria")}

    ds = Dataset.from_list([{"pair_id": p.id} for p in pairs if p.label is not None])
    ds.set_transform(transform)
    return ds


def train(cfg: TrainConfig, *, progress: bool = True) -> dict[str, Path]:
    """Run (or resume) the training described by `cfg`; returns the final model folders."""
    return RubricARMTrainer(cfg, progress=progress).run()
