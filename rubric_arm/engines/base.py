"""The one interface every text-generation backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from rubric_arm.errors import InputError
from rubric_arm.types import Chat, Completion, Constraint, SamplingParams, VerdictProbe


class Engine(ABC):
    """Generates completions for a batch of chats with one model.

    `fingerprint` identifies the weights (it goes into cache keys); `context_length` is the
    model's maximum number of positions, used to budget prompts against `max_new_tokens`;
    `supports_constraints` says whether `generate` can follow a grammar per chat.
    """

    name: str
    fingerprint: str
    context_length: int
    supports_constraints: bool = False

    @abstractmethod
    def generate(
        self,
        chats: Sequence[Chat],
        params: SamplingParams,
        *,
        desc: str | None = None,
        constraints: Sequence[Constraint | None] | None = None,
        probe: VerdictProbe | None = None,
    ) -> list[list[Completion]]:
        """Return `params.n` completions for every chat, in input order.

        Chats are rendered through the model's chat template (Qwen3 thinking off).
        `desc` labels the progress bar shown for long batches. `constraints[i]` (if given and
        not None) is the grammar chat i's output must follow; an engine without
        `supports_constraints` raises InputError for one. `probe` asks for the verdict label
        probabilities (`Completion.label_probs`) where the engine can read them.
        """

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Number of tokens of `text` alone (no special tokens)."""

    @abstractmethod
    def truncate(self, text: str, max_tokens: int) -> str:
        """`text` cut to at most `max_tokens` tokens, keeping its beginning."""

    @abstractmethod
    def chat_tokens(self, chat: Chat) -> int:
        """Number of tokens of `chat` once rendered with the chat template and generation prompt."""

    def next_label_probs(
        self, chats: Sequence[Chat], labels: Sequence[str], *, desc: str | None = None
    ) -> list[dict[str, float]]:
        """P(label) for the first token of the reply to each chat, renormalised over `labels`
        (each read at the first token of its spelling): one forward pass, nothing generated.

        Explicit rubric aggregation (`rubric_arm.checklist`) reads its per-criterion checks this
        way; an engine that cannot score next tokens says so.
        """
        raise InputError(
            f"engine {self.name!r} cannot score next-token labels; explicit rubric aggregation "
            "needs the transformers engine"
        )

    def close(self) -> None:  # noqa: B027 - optional hook, most engines hold nothing to release
        """Release resources held by the engine (default: nothing to do)."""
