"""Prompt templates and completion parsing: pure functions, testable without an engine.

The step protocol every engine is asked for (and the sim engine speaks):
  <think>
  Step 1: <one calculation, written as an equation>.

  Step 2: ...
  </think>

  <short answer ending in \\boxed{ANSWER}>
Steps are separated by blank lines, so a step boundary is the stop string "\\n\\n".

Code-augmented steps (rStar-Math style, `build_code_messages`): each step states its
calculation, then a ```python fenced block with no blank line in it that computes it (it may
use variables of earlier steps) and prints the step's result.

Code problems (`meta.checker` = `code`, `generators/problems/code.py`) are asked for a program
instead (`CODE_SOLVE_PROMPT`, `messages_for`): think inside <think>, then the whole solution
as one ```python block after </think>; `parse_completion(..., code=True)` takes that block as
the predicted answer (`generators.verify.code_extract.extract_code`).
"""

from __future__ import annotations

from dataclasses import dataclass

from reasonfactory.generators.reply_forms import split_final_answer
from reasonfactory.generators.verify.answers import extract_boxed
from reasonfactory.generators.verify.checkers import problem_checker
from reasonfactory.generators.verify.code_extract import extract_code

STEP_BOUNDARY = "\n\n"

SOLVE_PROMPT = (
    "Solve the following problem. Think step by step inside <think> and </think>, one step "
    "per paragraph, separated by blank lines, writing each calculation as an equation "
    "(for example `12 * 3 = 36`). After </think>, state the final answer as \\boxed{{ANSWER}}."
    "\n\nProblem: {question}"
)


# Code-augmented steps: the marker tells the sim engine (and a reader) which protocol is asked for.
CODE_MARKER = "```python"
CODE_PROMPT = (
    "Solve the following problem. Think step by step inside <think> and </think>, one step "
    "per paragraph, separated by blank lines. In each step, write the calculation as an "
    "equation (for example `12 * 3 = 36`), then a " + CODE_MARKER + " block with no blank "
    "lines that computes it with Python (you may use the variables of earlier steps) and "
    "prints the step's result. After </think>, state the final answer as \\boxed{{ANSWER}}."
    "\n\nProblem: {question}"
)


def build_code_messages(question: str) -> tuple[dict, ...]:
    """The chat asking for code-augmented steps (for `code` step verification).

    >>> CODE_MARKER in build_code_messages("Compute 1 + 2.")[0]["content"]
    True
    """
    return ({"role": "user", "content": CODE_PROMPT.format(question=question)},)


# For models that do not write `<think>` (`reply: final_answer`, generators/reply_forms.py):
# no worked example in it, since a weak model copies the example (`12 * 3 = 36` was in 27 of
# 200 SmolLM2-135M replies to SOLVE_PROMPT).
FINAL_ANSWER_PROMPT = (
    "Solve the following problem step by step, one step per line, writing each calculation "
    "as an equation with its result. End with the line: The final answer is ANSWER."
    "\n\nProblem: {question}"
)


CODE_SOLVE_PROMPT = (
    "Solve the following programming problem in Python. Think step by step inside <think> and "
    "</think>. After </think>, give your complete solution as one ```python code block."
    "\n\nProblem: {question}"
)


def is_code_problem(problem: dict) -> bool:
    """Whether a problem row is judged by tests (its `meta.checker` is `code`).

    >>> is_code_problem({"meta": '{"checker": "code"}'}), is_code_problem({"meta": None})
    (True, False)
    """
    return problem_checker(problem) == "code"


def messages_for(problem: dict, messages=None) -> tuple[dict, ...]:
    """The chat for a problem row: a program for a code problem, else `messages(question)`
    (a method's own prompt, e.g. self_output's `config.messages`; default `build_messages`)."""
    if is_code_problem(problem):
        return (
            {"role": "user", "content": CODE_SOLVE_PROMPT.format(question=problem["question"])},
        )
    return (messages or build_messages)(problem["question"])


def build_messages(
    question: str,
    template: str = SOLVE_PROMPT,
    system: str | None = None,
    examples: tuple[tuple[str, str], ...] = (),
) -> tuple[dict, ...]:
    """The chat for one problem: an optional system turn, few-shot turns (each question in
    `template`, then its reply), then the problem in `template`.

    >>> build_messages("Compute 1 + 2.")[0]["role"]
    'user'
    >>> [m["role"] for m in build_messages("Q?", "{question}", "Be brief.", (("1+1?", "2"),))]
    ['system', 'user', 'assistant', 'user']
    """
    chat = [{"role": "system", "content": system}] if system else []
    for q, reply in examples:
        chat += [
            {"role": "user", "content": template.format(question=q)},
            {"role": "assistant", "content": reply},
        ]
    chat.append({"role": "user", "content": template.format(question=question)})
    return tuple(chat)


_SOLVE_HEAD = SOLVE_PROMPT.format(question="\0").split("\0")[0]
_CODE_HEAD = CODE_SOLVE_PROMPT.format(question="\0").split("\0")[0]


def question_of(prompt: str) -> str | None:
    """The question inside a `build_messages` or code prompt (its inverse), or None for
    another text.

    >>> question_of(build_messages("Compute 1 + 2.")[0]["content"])
    'Compute 1 + 2.'
    >>> question_of("What is 2 + 2?") is None
    True
    """
    for head in (_SOLVE_HEAD, _CODE_HEAD):
        if prompt.startswith(head):
            return prompt[len(head) :]
    return None


def code_question_of(prompt: str) -> str | None:
    """The question inside a code prompt, or None for another text."""
    return prompt[len(_CODE_HEAD) :] if prompt.startswith(_CODE_HEAD) else None


@dataclass(frozen=True)
class ParsedCompletion:
    thought: str
    response: str
    predicted: str | None
    think_closed: bool


def parse_completion(
    text: str, reasoning: str | None = None, reply: str = "r1", code: bool = False
) -> ParsedCompletion:
    """Split a completion into thought and response and extract the final answer (the last
    `\\boxed{}`, or for a code problem the program: the last code block of the response).

    When the server split the thinking off (`reasoning`), the text is all response.
    An unclosed `<think>` leaves the whole text as thought and the response empty; a text
    with no `<think>` tag at all is all response (no thought; `think_closed` False), so its
    answer is still read. `reply="final_answer"` reads a reply without `<think>` as its
    thought before a final-answer phrase (generators/reply_forms.py).

    >>> p = parse_completion("<think>\\n1 + 1 = 2\\n</think>\\n\\nSo \\\\boxed{2}.")
    >>> (p.thought, p.predicted, p.think_closed)
    ('1 + 1 = 2', '2', True)
    >>> p = parse_completion("1 + 1 = 2\\nThe final answer is 2.", reply="final_answer")
    >>> (p.thought, p.response, p.predicted, p.think_closed)
    ('1 + 1 = 2', 'The final answer is \\\\boxed{2}.', '2', True)
    """
    answer = (lambda r: extract_code(r)) if code else extract_boxed
    if reasoning is not None:
        return ParsedCompletion(reasoning.strip(), text.strip(), answer(text), True)
    if "<think>" not in text and "</think>" not in text:
        if reply == "final_answer" and not code:
            found = split_final_answer(text)
            if found is not None:
                return ParsedCompletion(found[0], found[1], found[2], True)
        return ParsedCompletion("", text.strip(), answer(text), False)
    body = text
    start = body.find("<think>")
    if start != -1:
        body = body[start + len("<think>") :]
    end = body.find("</think>")
    if end == -1:
        return ParsedCompletion(body.strip(), "", None, False)
    response = body[end + len("</think>") :].strip()
    return ParsedCompletion(body[:end].strip(), response, answer(response), True)
