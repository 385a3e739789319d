"""A tiny Llama built from scratch, with a tokenizer the project makes: the loop's student.

`build_student(folder)` writes a folder that transformers (`AutoModelForCausalLM`,
`AutoTokenizer`) and vLLM load offline: randomly initialised Llama weights (by default hidden
128, 4 layers, 4 heads of dim 32, about 1M parameters) and a byte-level tokenizer with no
merges, so every character (every digit) is one token, plus four special tokens.

Its chat template is made for a small model that has a short context and little compute:
the user turn is rendered as only the problem (the text after the last `Problem: ` of the
solve prompt, `generators.prompts.SOLVE_PROMPT`; a bare question is rendered as is), then a
newline, and the assistant turn follows with no role header, wrapped in `{% generation %}`
markers so TRL's `assistant_only_loss` trains on it alone. The same problem therefore
renders the same whether it comes from an export (the `sft` view stores the bare question)
or from a generation request (the solve prompt): the student is trained on exactly the
prompts it is asked.

Nothing is downloaded; the same settings and seed give the same weights.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

PAD, BOS, EOS = "<|pad|>", "<|bos|>", "<|im_end|>"
UNK = "<|unk|>"

STUDENT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{% generation %}{{ message['content'] + eos_token }}{% endgeneration %}"
    "{% elif message['role'] == 'user' %}"
    "{{ message['content'].split('Problem: ')[-1] + '\n' }}"
    "{% endif %}"
    "{% endfor %}"
)


@dataclass(frozen=True)
class StudentShape:
    """The student's size. head_dim 32 is the least vLLM's CPU attention supports."""

    hidden_size: int = 128
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    intermediate_size: int = 512
    max_position_embeddings: int = 512


def build_student(folder: str | Path, shape: StudentShape = StudentShape(), seed: int = 0) -> Path:
    """Save a fresh tiny Llama and its character-level tokenizer into `folder`.

    >>> path = build_student(tmp_path / "student")  # doctest: +SKIP
    >>> AutoTokenizer.from_pretrained(path).tokenize("12+7")  # doctest: +SKIP
    ['1', '2', '+', '7']
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    raw.decoder = decoders.ByteLevel()
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    specials = [PAD, BOS, EOS, UNK]
    # A vocabulary exactly the size of the byte alphabet plus the specials: no merges.
    trainer = trainers.BpeTrainer(
        vocab_size=len(alphabet) + len(specials),
        special_tokens=specials,
        initial_alphabet=alphabet,
        show_progress=False,
    )
    raw.train_from_iterator(["0123456789 +-*/=().\n"], trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw, pad_token=PAD, bos_token=BOS, eos_token=EOS, unk_token=UNK
    )
    tokenizer.chat_template = STUDENT_TEMPLATE
    tokenizer.save_pretrained(folder)

    torch.manual_seed(seed)
    s = asdict(shape)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        num_key_value_heads=shape.num_attention_heads,
        head_dim=shape.hidden_size // shape.num_attention_heads,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
        **s,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder
