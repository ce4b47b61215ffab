"""`rubric-arm bench engine`: pipeline vs raw `generate` vs the CPU compute roofline, one run."""

from __future__ import annotations

import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from rubric_arm.cache import RubricCache
from rubric_arm.engines import load_engine
from rubric_arm.pipeline import RubricARM
from rubric_arm.presets import get_preset
from rubric_arm.reproduce.bench_vllm import run_peer
from rubric_arm.types import Chat, PreferencePair, SamplingParams

BENCH_PROMPTS = [
    "Explain why the sky looks blue in two short paragraphs.",
    "Write a haiku about autumn leaves. Use lowercase letters only.",
    "List four benefits of regular exercise as a numbered list.",
    "Summarise the plot of Romeo and Juliet in under 60 words.",
    "Give three tips for writing clear emails. End with the word 'Done'.",
    "What is the difference between a virus and a bacterium?",
    "Write a short product description for a reusable water bottle.",
    "Explain recursion to a ten-year-old without using code.",
    "Suggest a name for a bakery and explain the choice in one sentence.",
    "Describe how to make a cup of tea in exactly five steps.",
    "Write a polite message declining a meeting invitation.",
    "What are the main causes of inflation? Answer in bullet points.",
    "Translate 'good morning, how are you?' into French and Spanish.",
    "Give a two-sentence argument for planting more trees in cities.",
    "Write a limerick about a cat who loves to swim.",
    "Explain what a binary search does and when it is useful.",
    "Compare tea and coffee in a short table with two rows.",
    "Write a motivational sentence for a student before an exam.",
    "Describe the taste of a lemon to someone who never had one.",
    "Give three questions to ask at the end of a job interview.",
]


def measure_matmul_flops(size: int = 1024, seconds: float = 3.0) -> float:
    """Sustained fp32 matmul FLOP/s on this machine with torch's current thread count."""
    a = torch.randn(size, size)
    b = torch.randn(size, size)
    for _ in range(3):
        a @ b
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        n += 1
    return 2 * size**3 * n / (time.perf_counter() - start)


def _raw_generate(engine: Any, chats: list[Chat], max_new_tokens: int) -> tuple[int, float]:
    """Plain `model.generate` over `chats` in input order at the engine's batch size (greedy)."""
    tok, model = engine.tokenizer, engine.model
    eos = set(engine.stop_token_ids)
    texts = [
        tok.apply_chat_template(
            c, tokenize=False, add_generation_prompt=True, enable_thinking=False
        )
        for c in chats
    ]
    generated, start = 0, time.perf_counter()
    for lo in range(0, len(texts), engine.batch_size):
        enc = tok(
            texts[lo : lo + engine.batch_size],
            return_tensors="pt",
            padding=True,
            add_special_tokens=False,
        )
        with torch.inference_mode():
            out = model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tok.pad_token_id,
                eos_token_id=sorted(eos),
            )
        for row in out[:, enc["input_ids"].shape[1] :].tolist():
            n = 0
            for t in row:
                n += 1
                if t in eos:
                    break
            generated += n
    return generated, time.perf_counter() - start


class _AllPositions:
    """A model wrapper that drops `logits_to_keep`, so the output layer runs at every position as
    in a plain HF forward; everything else is the wrapped model's."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def __call__(self, *args: Any, logits_to_keep: int = 0, **kwargs: Any) -> Any:
        return self.model(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)


def _scoring(engine: Any, n_checks: int) -> dict[str, Any]:
    """Explicit-aggregation checks (one forward pass each) on held-out mini responses: the
    engine's `last_token_logits` as it is, then with the output layer at every position (the
    same batches, through `_AllPositions`)."""
    from rubric_arm.checklist import CHECK_ANSWERS, check_chat
    from rubric_arm.data.mini import load_mini

    pairs = load_mini("heldout")[: (n_checks + 1) // 2]
    rule = "The response has at least 3 paragraphs separated by blank lines."
    chats = [check_chat(rule, t) for p in pairs for t in (p.response_a, p.response_b)][:n_checks]
    prompts = [list(ids) for ids in engine.encode_chats(chats)]
    firsts = [engine.tokenizer(a, add_special_tokens=False)["input_ids"][0] for a in CHECK_ANSWERS]
    t = time.perf_counter()
    exact = engine.last_token_logits(prompts, firsts, batch_size=8)
    ours = time.perf_counter() - t
    model, engine.model = engine.model, _AllPositions(engine.model)
    try:
        t = time.perf_counter()
        engine.last_token_logits(prompts, firsts, batch_size=8)
        full = time.perf_counter() - t
    finally:
        engine.model = model
    half_engine = type(engine)(engine.path, dtype="bfloat16", progress=False)
    t = time.perf_counter()
    half = half_engine.last_token_logits(prompts, firsts, batch_size=8)
    half_seconds = time.perf_counter() - t
    half_engine.close()
    meets = [torch.tensor(rows).softmax(-1)[:, 0] for rows in (exact, half)]
    return {
        "checks": len(prompts),
        "mean_prompt_tokens": round(sum(map(len, prompts)) / len(prompts), 1),
        "checks_per_s": round(len(prompts) / ours, 2),
        "full_logits_checks_per_s": round(len(prompts) / full, 2),
        "speedup": round(full / ours, 3),
        "bf16_checks_per_s": round(len(prompts) / half_seconds, 2),
        "bf16_speedup": round(ours / half_seconds, 3),
        "bf16_max_abs_p_meets_diff": round(float((meets[0] - meets[1]).abs().max()), 4),
    }


def run_engine_bench(
    *,
    model: str = "smollm2-135m-instruct",
    n_prompts: int = 16,
    pairs_per_prompt: int = 4,
    output: Path = Path("reports/bench_engine.json"),
    judge_max_tokens: int | None = None,
) -> dict[str, Any]:
    """Judge n_prompts x pairs_per_prompt pairs and compare throughput with raw generate."""
    preset = get_preset("mini")
    engine = load_engine(model, "transformers")
    prompts = (BENCH_PROMPTS * (n_prompts // len(BENCH_PROMPTS) + 1))[:n_prompts]
    n_resp = max(2, min(4, pairs_per_prompt))
    print(f"sampling {n_resp} responses for each of {n_prompts} prompts ...")
    t = time.perf_counter()
    answers = engine.generate(
        [[{"role": "user", "content": p}] for p in prompts],
        SamplingParams(temperature=0.8, top_p=0.95, max_new_tokens=96, n=n_resp, seed=0),
        desc="responses",
    )
    response_seconds = time.perf_counter() - t
    combos = [(0, 1), (2, 3), (0, 2), (1, 3), (0, 3), (1, 2)]
    combos = [c for c in combos if max(c) < n_resp][:pairs_per_prompt]
    pairs = [
        PreferencePair(f"{i}-{a}{b}", p, answers[i][a].text, answers[i][b].text)
        for i, p in enumerate(prompts)
        for a, b in combos
    ]

    judge_sampling = preset.judge_sampling
    if judge_max_tokens:
        judge_sampling = SamplingParams(temperature=0.0, max_new_tokens=judge_max_tokens)
    with tempfile.TemporaryDirectory() as tmp:
        cache = RubricCache(Path(tmp) / "bench.sqlite")
        arm = RubricARM(
            engine,
            engine,
            rubric_sampling=preset.rubric_sampling,
            judge_sampling=judge_sampling,
            cache=cache,
        )
        print(f"pipeline: judging {len(pairs)} pairs over {n_prompts} prompts ...")
        t = time.perf_counter()
        records = arm.judge(pairs, order="as_given", seed=0)
        pipeline_seconds = time.perf_counter() - t
        rubric_generations = cache.misses
        second = arm.rubrics(prompts)
        cache_after = cache.stats()
        rubric_tokens = sum(r.completion_tokens for r in second)
        judge_tokens = sum(j.completion_tokens for r in records for j in r.judgments)
        by_prompt = dict(zip(prompts, second, strict=False))
        rubric_chats = [arm.generator_chat(p) for p in prompts]
        judge_chats = [
            arm.judge_chat(p, by_prompt[p.prompt].rubric, "AB", rec)
            for p, rec in zip(pairs, records, strict=False)
        ]
        cache.close()
    pipeline_tokens = rubric_tokens + judge_tokens

    print("raw generate on the same chats ...")
    raw_r_tokens, raw_r_seconds = _raw_generate(
        engine, rubric_chats, preset.rubric_sampling.max_new_tokens
    )
    raw_j_tokens, raw_j_seconds = _raw_generate(
        engine, [c for c in judge_chats if c is not None], judge_sampling.max_new_tokens
    )
    raw_tokens, raw_seconds = raw_r_tokens + raw_j_tokens, raw_r_seconds + raw_j_seconds

    print("decode-bound generation: short prompts, engine vs raw generate ...")
    short = [
        [{"role": "user", "content": BENCH_PROMPTS[i % len(BENCH_PROMPTS)] + f" ({i})"}]
        for i in range(128)
    ]
    t = time.perf_counter()
    decoded = engine.generate(short, SamplingParams(max_new_tokens=128))
    decode_seconds = time.perf_counter() - t
    decode_tokens = sum(c[0].completion_tokens for c in decoded)
    raw_d_tokens, raw_d_seconds = _raw_generate(engine, short, 128)

    print("vLLM (its own interpreter) on the same chats ...")
    with tempfile.TemporaryDirectory() as tmp:
        peer = run_peer(
            engine.path,
            {
                "rubrics": {
                    "chats": rubric_chats,
                    "max_new_tokens": preset.rubric_sampling.max_new_tokens,
                },
                "judgments": {
                    "chats": [c for c in judge_chats if c is not None],
                    "max_new_tokens": judge_sampling.max_new_tokens,
                },
                "decode": {"chats": short, "max_new_tokens": 128},
            },
            Path(tmp),
        )

    print("explicit checks: last-position vs full-logits forward passes ...")
    scoring = _scoring(engine, 64)

    print("measuring fp32 matmul throughput ...")
    flops = measure_matmul_flops()
    params = sum(p.numel() for p in engine.model.parameters())
    roofline = flops / (2 * params)
    prompt_tokens = sum(j.prompt_tokens for r in records for j in r.judgments)
    result = {
        "model": model,
        "engine": engine.name,
        "batch_size": engine.batch_size,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "pairs": len(pairs),
        "prompts": n_prompts,
        "rubric_generations": rubric_generations,
        "rubric_cache_after_second_pass": cache_after,
        "rubric_tokens": rubric_tokens,
        "judge_tokens": judge_tokens,
        "judge_prompt_tokens": prompt_tokens,
        "judge_max_new_tokens": judge_sampling.max_new_tokens,
        "pipeline_seconds": round(pipeline_seconds, 2),
        "pipeline_tok_s": round(pipeline_tokens / pipeline_seconds, 1),
        "raw_tokens": raw_tokens,
        "raw_seconds": round(raw_seconds, 2),
        "raw_tok_s": round(raw_tokens / raw_seconds, 1),
        "matmul_gflop_s": round(flops / 1e9, 1),
        "params": params,
        "roofline_tok_s": round(roofline, 1),
        "response_sampling_tok_s": round(
            sum(c.completion_tokens for a in answers for c in a) / response_seconds, 1
        ),
    }
    result["decode_prompts"] = len(short)
    result["decode_tok_s"] = round(decode_tokens / decode_seconds, 1)
    result["decode_raw_tok_s"] = round(raw_d_tokens / raw_d_seconds, 1)
    result["decode_vs_roofline"] = round(result["decode_tok_s"] / roofline, 3)
    result["pipeline_vs_raw"] = round(result["pipeline_tok_s"] / result["raw_tok_s"], 3)
    result["pipeline_vs_roofline"] = round(result["pipeline_tok_s"] / roofline, 3)
    result["raw_vs_roofline"] = round(result["raw_tok_s"] / roofline, 3)
    result["scoring"] = scoring
    result["vllm"] = peer
    if "skipped" not in peer:
        work = [peer["rubrics"], peer["judgments"]]
        peer["tok_s"] = round(sum(w["tokens"] for w in work) / sum(w["seconds"] for w in work), 1)
        peer["seconds_per_judgment"] = round(peer["judgments"]["seconds"] / len(pairs), 3)
        result["pipeline_seconds_per_judgment"] = round(pipeline_seconds / len(pairs), 3)
        result["vllm_vs_pipeline"] = round(peer["tok_s"] / result["pipeline_tok_s"], 3)
        result["vllm_vs_raw"] = round(peer["tok_s"] / result["raw_tok_s"], 3)
        result["vllm_decode_vs_engine"] = round(peer["decode"]["tok_s"] / result["decode_tok_s"], 3)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    output.with_suffix(".md").write_text(render_markdown(result))
    print(render_markdown(result))
    return result


def render_markdown(r: dict[str, Any]) -> str:
    """The benchmark figures as a small Markdown report."""
    return "\n".join(
        [
            "# Engine benchmark",
            "",
            f"{r['pairs']} pairs over {r['prompts']} prompts, model `{r['model']}`, engine "
            f"`{r['engine']}`, batch {r['batch_size']}, {r['threads']} threads, fp32, greedy.",
            "",
            "| figure | value |",
            "|---|---|",
            f"| pipeline generated tok/s (rubrics + judgments) | {r['pipeline_tok_s']} |",
            f"| raw `model.generate` tok/s, same chats, same batch size | {r['raw_tok_s']} |",
            f"| compute roofline tok/s ({r['matmul_gflop_s']} GFLOP/s / (2 x {r['params']:,} params)) "
            f"| {r['roofline_tok_s']} |",
            f"| pipeline / raw | {r['pipeline_vs_raw']} |",
            f"| pipeline / roofline | {r['pipeline_vs_roofline']} |",
            f"| raw / roofline | {r['raw_vs_roofline']} |",
            f"| rubric generations for {r['pairs']} pairs | {r['rubric_generations']} |",
            f"| judge prompt tokens (prefill, not counted as generated) | {r['judge_prompt_tokens']} |",
            f"| decode-bound: engine tok/s, {r['decode_prompts']} short prompts x 128 tokens "
            f"| {r['decode_tok_s']} ({r['decode_vs_roofline']:.0%} of roofline) |",
            f"| decode-bound: raw `model.generate` tok/s, same prompts | {r['decode_raw_tok_s']} |",
            f"| generated tokens: rubrics / judgments | {r['rubric_tokens']} / {r['judge_tokens']} |",
            *_scoring_rows(r),
            *_vllm_rows(r),
            "",
        ]
    )


def _scoring_rows(r: dict[str, Any]) -> list[str]:
    sc = r.get("scoring")
    if not sc:
        return []
    what = f"{sc['checks']} held-out checks, {sc['mean_prompt_tokens']} prompt tokens on average"
    return [
        f"| explicit checks/s ({what}) | {sc['checks_per_s']} |",
        f"| the same with the output layer at every position | {sc['full_logits_checks_per_s']} "
        f"(last position only: {sc['speedup']}x) |",
        *(
            [
                f"| the same in bf16 with a float32 output layer | {sc['bf16_checks_per_s']} "
                f"({sc['bf16_speedup']}x; P(Meets) within {sc['bf16_max_abs_p_meets_diff']} "
                "of float32) |"
            ]
            if "bf16_checks_per_s" in sc
            else []
        ),
    ]


def _vllm_rows(r: dict[str, Any]) -> list[str]:
    peer = r.get("vllm") or {"skipped": "not run"}
    if "skipped" in peer:
        return [f"| vLLM peer | not measured: {peer['skipped']} |"]
    return [
        f"| vLLM {peer['vllm_version']} start-up (s) | {peer['startup_s']} |",
        f"| vLLM tok/s, the same rubric and judge chats (greedy, one call each) "
        f"| {peer['tok_s']} ({r['vllm_vs_pipeline']}x the pipeline, {r['vllm_vs_raw']}x raw) |",
        f"| seconds per judgment: pipeline (rubric included) / vLLM judge chats "
        f"| {r['pipeline_seconds_per_judgment']} / {peer['seconds_per_judgment']} |",
        f"| vLLM decode-bound tok/s, same short prompts | {peer['decode']['tok_s']} "
        f"({r['vllm_decode_vs_engine']}x the engine) |",
    ]
