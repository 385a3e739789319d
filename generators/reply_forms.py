"""Reading a reply that does not write `<think>`: the thought is the text before its final-answer
phrase (`reply: final_answer` in a recipe's `generate`).

An instruction-tuned model never trained on the R1 format (SmolLM2-135M-Instruct: 1 reply of
200 opened `<think>`) writes its working, then its answer. The phrases read, case-insensitive,
the last one in the reply winning:

- `The final answer is 31` (also `Final answer: 31`, bold `**...**`, `$31$`),
  `The answer is 31` and `The answer to your question is 31`;
- `... = 31. This is the final answer.` (or `which equals the final answer`): the result
  written just before;
- `Answer: 31` at the start of a line;
- `#### 31` (GSM8K's form);
- a `\\boxed{31}` (the last one).

The thought is the reply without its answer line (a calculation on that line, and whatever
follows it, stay in the thought to be checked). The answer is what follows the phrase on its
line (after its last `=` when it has one:
`The final answer is 2 * 5 = 10`): a number (`$1,200.` -> `1200`) when it starts with one,
else the text when it holds a digit or LaTeX (`\\frac{1}{2}`; `the answer is the sum` is no
answer), or the boxed content. The response is
rewritten in the R1 form, `The final answer is \\boxed{31}.`, so an export has the same
shape whichever form the model wrote (the reply as written stays in `completions`).

Not here: the R1 split itself (generators/prompts.py `parse_completion`).
"""

from __future__ import annotations

import re

from reasonfactory.generators.verify.answers import extract_boxed

REPLY_FORMS = ("r1", "final_answer")

_PHRASES = re.compile(
    r"(?:\*\*)?(?:the\s+)?final\s+answer(?:\s+is)?\s*(?::|is)?\s*(?:\*\*)?[:\s]*"
    r"|(?<![A-Za-z])the\s+answer(?:\s+to(?:\s+[A-Za-z]+){1,3})?\s+is\s*:?\s*"
    r"|^[ \t]*(?:\*\*)?answer(?:\*\*)?\s*:(?:\*\*)?[ \t]*"
    r"|^[ \t]*####[ \t]*"
    r"|\\boxed\s*\{",
    re.IGNORECASE | re.MULTILINE,
)
# `4 + 4 = 8. This is the final answer.`: the answer is the result written just before
_BACKWARD = re.compile(r"(?:this|which)\s+(?:is|equals)\s+(?:the\s+)?final\s+answer", re.I)
_RESULT_BEFORE = re.compile(r"=\s*\$?\s*(-?\d[\d,]*(?:\.\d+)?)\s*[.,]?\s*$")
_NUMBER_START = re.compile(r"^\$?\s*(-?\d[\d,]*(?:\.\d+)?)(?![\d/^A-Za-z])")


def split_final_answer(text: str) -> tuple[str, str, str | None] | None:
    """(thought, R1 response, answer) of a reply ending in a final-answer phrase, else None.

    >>> split_final_answer("2 * 6 = 12\\n12 + 1 = 13\\nThe final answer is 13.")
    ('2 * 6 = 12\\n12 + 1 = 13', 'The final answer is \\\\boxed{13}.', '13')
    >>> split_final_answer("Half of it.\\nAnswer: \\\\frac{1}{2}")[2]
    '\\\\frac{1}{2}'
    >>> split_final_answer("So she pays $1,200.\\n#### 1,200")[2]
    '1200'
    >>> split_final_answer("I think it is 7.") is None
    True
    """
    matches = sorted([*_PHRASES.finditer(text), *_BACKWARD.finditer(text)], key=lambda m: m.start())
    for m in reversed(matches):
        line_end = text.find("\n", m.end())
        line_end = len(text) if line_end == -1 else line_end
        line = text[m.end() : line_end].strip()
        if m.re is _BACKWARD:
            before = _RESULT_BEFORE.search(text[: m.start()])
            if before:
                answer = before.group(1).replace(",", "")
                after = text[m.end() :].strip(" .\n")
                thought = "\n".join(p for p in (text[: m.start()].strip(), after) if p)
                return thought, f"The final answer is \\boxed{{{answer}}}.", answer
            continue
        answer = _answer_at(text, m, line)
        if answer:
            # The working around the answer line stays in the thought, to be checked: what
            # came before, a calculation on the line itself (`The final answer is 2 * 6 =
            # 15`) and anything written after it (`Let me check: 15 + 15 = 20.`).
            worked = line if "=" in line and "\\boxed" not in line else ""
            parts = (text[: m.start()].strip(), worked, text[line_end:].strip())
            thought = "\n".join(p for p in parts if p)
            return thought, f"The final answer is \\boxed{{{answer}}}.", answer
    return None


def _answer_at(text: str, m: re.Match, rest: str) -> str | None:
    if m.group(0).lower().lstrip().startswith("\\boxed"):
        return extract_boxed(text[m.start() :])
    if "\\boxed" in rest:
        return extract_boxed(rest)
    if "=" in rest:  # `The final answer is 2 * (25/5) = 15.`: what the working comes to
        rest = rest.rsplit("=", 1)[1]
    rest = rest.strip("*$ ").rstrip(".").strip("*$ ")
    number = _NUMBER_START.match(rest)
    if number:
        return number.group(1).replace(",", "")
    # an answer has a digit or LaTeX in it: `the answer is the next step` states none
    return rest if re.search(r"[\d\\]", rest) else None
