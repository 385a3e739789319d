"""The `sim` engine: a seeded, CPU-only simulator of a step-by-step solver. Not a model.

It reads the problem from the prompt and any steps already written from the request's
`prefix` (with the one arithmetic reader, `generators.verify.exact`: a written result is the
right side of a step's first equation as `generators.verify.chains` finds it), and writes
the remaining steps in the step protocol of `generators.prompts`, one equation per step.
Each step is wrong with probability `error_rate`: the written result is off (a slip), and
later steps compute from the written, wrong value. With `s` steps and no prefix, the final
answer is right with probability (1 - error_rate) ** s exactly, because every operation
is injective in the carried value and a slip never lands on the right value.

`format_error_rate` makes it sometimes break the output format (unclosed `<think>`, no
`\\boxed{}`, two boxed answers) so the format filter has something real to catch.
`cumulative_logprob` is the log-probability of the simulator's own random choices.

Three optional behaviours, all off by default (the defaults reproduce the text above exactly):
- `typo_rate`: a step that did not slip writes a wrong result with this probability but
  carries the right value on (a copying typo: `22 * 3 = 76.`, then `66 + 5 = 71.`). Later
  steps are right, so the final answer can be right through a false equation: the lucky
  answers an answer check cannot see and a step verifier can.
- `wordings`: each step is worded one of this many ways (a lead-in such as "Now, "), so
  correct solutions differ in text as a model's samples do.
- `language: zh`: steps and the answer line in Chinese (`第 1 步：计算 17 + 5 = 22。`,
  `答案是 \\boxed{22}。`; the wording is `sim_plans.ZH_WORDING`), for Chinese journeys and
  the language filter.
- code-augmented steps, when the prompt asks for them (`prompts.CODE_MARKER`): each step is
  followed by a ```python block that computes it from earlier steps' variables and prints
  it. A slipped step's code is honest (it prints the right value, which disagrees with the
  written one) or, one time in three, buggy (it names an undefined variable).
When the prefix already closes the thought (`</think>`), it writes only the answer paragraph.

Feedback (the `revise` method's external feedback): when the last user message follows an
earlier reply of its own and names a failing step (`Step 3 is wrong: ...`), the sim writes
steps 1 to 3 without a slip or typo (it keeps the steps the check passed and fixes the named
one, as a solver that reads the finding would) and the steps after it at the usual rates.
Any other feedback (a wrong final answer, a missing `\\boxed{}`) is not acted on: the
attempt is a fresh sample.

For a `builtin:code` problem (a code prompt, `prompts.CODE_SOLVE_PROMPT`, or distill's code
template) it writes a short thought and one ```python block: the task's right program, or,
at the rates of `code_rates` (engine config `code: {wrong, crashing, looping, hostile}`;
unset: `error_rate` split 50/20/15/15), a wrong one (a slip: off by one, a forgotten case),
one that crashes, one that never ends, or a hostile one (reads another process's
environment, connects to the host's Docker socket, writes a cron file).

It only knows the built-in families (arithmetic, linear, code): anything else is an
`EngineError`.
"""

from __future__ import annotations

import math
import random
import re
import time
from fractions import Fraction

from reasonfactory.generators.engines.base import (
    Completion,
    EngineError,
    GenRequest,
    OnSample,
    SampleFeed,
    WholeBatches,
)
from reasonfactory.generators.engines.sim_plans import (
    ZH_ANSWER,
    ZH_STEP,
    Ref,
    StepPlan,
    plan_problem,
    to_chinese,
)
from reasonfactory.generators.problems.code_family import code_program, parse_code_question
from reasonfactory.generators.problems.families import OPS, fmt, fmt_operand
from reasonfactory.generators.prompts import CODE_MARKER, STEP_BOUNDARY, code_question_of
from reasonfactory.generators.verify.chains import find_equations
from reasonfactory.warehouse.ids import digest

_STEP = re.compile(r"Step (\d+):|第 ?(\d+) ?步")
_NAMED_WRONG = re.compile(r"\bStep (\d+) is wrong\b")
_TOKEN = re.compile(r"\w+|[^\w\s]")


def sim_solves(question: str) -> bool:
    """Whether the sim can answer a problem (a built-in family's question).

    >>> sim_solves("Compute 2 + 3."), sim_solves("Prove Fermat's last theorem.")
    (True, False)
    """
    return plan_problem(question) is not None or parse_code_question(question) is not None


def count_tokens(text: str) -> int:
    """The sim's token count: words and punctuation marks (an approximation, said so)."""
    return len(_TOKEN.findall(text))


class SimEngine(WholeBatches):
    """Seeded simulator engine.

    >>> from reasonfactory.generators.prompts import build_messages
    >>> eng = SimEngine(error_rate=0.0)
    >>> [c] = eng.generate([GenRequest(messages=build_messages("Compute 2 + 3."), seed=1)])[0]
    >>> c.text.endswith("\\\\boxed{5}.")
    True
    """

    def __init__(
        self,
        error_rate: float = 0.1,
        format_error_rate: float = 0.0,
        model: str = "sim",
        typo_rate: float = 0.0,
        wordings: int = 1,
        language: str = "en",
        delay_s: float = 0.0,
        code_rates: dict | None = None,
    ):
        if not 0 <= error_rate < 1 or not 0 <= format_error_rate < 1 or not 0 <= typo_rate < 1:
            raise ValueError("error_rate, format_error_rate and typo_rate must lie in [0, 1)")
        if not 1 <= wordings <= len(LEADS):
            raise ValueError(f"wordings must lie in [1, {len(LEADS)}]")
        self.error_rate = error_rate
        self.format_error_rate = format_error_rate
        self.typo_rate = typo_rate
        self.wordings = wordings
        if language not in ("en", "zh"):
            raise ValueError(f"language must be en or zh, not {language!r}")
        self.language = language
        self.model = model
        self.delay_s = delay_s  # a model's time per call, for benchmarks; text is unchanged
        e = error_rate
        self.code_rates = code_rates or {
            "wrong": 0.5 * e,
            "crashing": 0.2 * e,
            "looping": 0.15 * e,
            "hostile": 0.15 * e,
        }

    def generate(
        self, requests: list[GenRequest], on_sample: OnSample | None = None
    ) -> list[list[Completion]]:
        if self.delay_s:
            time.sleep(self.delay_s)
        out = [self._sample(req) for req in requests]
        feed = SampleFeed(on_sample)
        feed.send_all(out)
        feed.raise_first()
        return out

    def _sample(self, req: GenRequest) -> list[Completion]:
        question = req.user_text()
        code_q = code_question_of(question) or question
        # What a real engine reports for each sample, counted once per request (per sample,
        # the count was a seventh of the sim's time).
        tokens_in = _prompt_tokens(req)
        if parse_code_question(code_q) is not None:
            return [
                self._program(
                    code_q, req, random.Random(digest(req.seed, req.first_sample + i)), tokens_in
                )
                for i in range(req.n)
            ]
        found = plan_problem(question)
        if found is None:
            raise EngineError(
                "the sim engine only solves the built-in problem families (builtin:arithmetic, "
                f"builtin:linear); it cannot answer: {question[-160:]!r}. Use a real engine "
                "(vllm, openai) for other problems."
            )
        _, plan = found
        written = _written_results(req.prefix)
        sure = _named_wrong_step(req)
        out = []
        for i in range(req.n):
            seed = digest(req.seed, req.first_sample + i) if req.seed is not None else None
            out.append(self._complete(plan, written, req, random.Random(seed), tokens_in, sure))
        return out

    def _complete(
        self,
        plan: list[StepPlan],
        written: list[Fraction],
        req: GenRequest,
        rng: random.Random,
        tokens_in: int,
        sure: int = 0,
    ) -> Completion:
        """One sample; steps before index `sure` are written right (feedback named step `sure`)."""
        values = list(written)
        ideal = _ideal_values(plan)
        code = CODE_MARKER in req.user_text()
        closed = "</think>" in req.prefix
        logp, steps = 0.0, []
        for k in range(len(written), 0 if closed else len(plan)):
            step = plan[k]
            lhs, rhs = _resolve(step.lhs, values), _resolve(step.rhs, values)
            result = OPS[step.op](lhs, rhs)
            shown, bug = result, False
            if k < sure:
                pass  # fixed on feedback: no slip, no typo, no random draw
            elif self.error_rate and rng.random() < self.error_rate:
                result = shown = _slip(result, ideal[k], rng)
                logp += math.log(self.error_rate)
                if code:
                    bug = rng.random() < 1 / 3
                    logp += math.log(1 / 3 if bug else 2 / 3)
            else:
                logp += math.log1p(-self.error_rate)
                if self.typo_rate:
                    if rng.random() < self.typo_rate:
                        shown = _slip(result, ideal[k], rng)  # written wrong, carried right
                        logp += math.log(self.typo_rate)
                    else:
                        logp += math.log1p(-self.typo_rate)
            values.append(result)
            text = step.render(fmt_operand(lhs), fmt_operand(rhs), fmt(shown), values)
            if self.wordings > 1:
                text = _reword(text, rng.randrange(self.wordings))
                logp -= math.log(self.wordings)
            if code:
                text += "\n" + _code_block(step, k, bug)
            if self.language == "zh":
                steps.append(ZH_STEP.format(k=k + 1, text=to_chinese(text)))
            else:
                steps.append(f"Step {k + 1}: {text}")
        answer = fmt(values[-1]) if values else "0"
        ending, fmt_logp = self._ending(answer, rng)
        body = STEP_BOUNDARY.join(steps)
        if closed:  # the thought is closed: only the answer paragraph is left to write
            text = ending.split("</think>", 1)[-1].lstrip("\n")
        elif req.prefix:
            lead = "" if req.prefix.endswith(("\n\n", "<think>\n")) else STEP_BOUNDARY
            text = lead + body + ending if body else ending.lstrip("\n")
        else:
            text = "<think>\n" + body + ending
        return _finish(text, req, logp + fmt_logp, tokens_in)

    def _program(
        self, question: str, req: GenRequest, rng: random.Random, tokens_in: int
    ) -> Completion:
        """A code problem's reply: a thought, then one program of a kind drawn at the rates."""
        draw, kind, logp = rng.random(), "right", 0.0
        for name, rate in self.code_rates.items():
            if draw < rate:
                kind, logp = name, math.log(rate)
                break
            draw -= rate
        else:
            logp = math.log1p(-sum(self.code_rates.values()))
        program = code_program(question, kind)
        task = question.split(". ")[0].rstrip(".")
        thought = (
            f"The task: {task[0].lower() + task[1:]}.\n\nI read the input, compute the "
            "answer and print it, one line per result."
        )
        text = f"<think>\n{thought}\n</think>\n\n```python\n{program}```"
        if self.format_error_rate and rng.random() < self.format_error_rate:
            text, logp = text.replace("</think>", ""), logp + math.log(self.format_error_rate)
        return _finish(text, req, logp, tokens_in)

    def _ending(self, answer: str, rng: random.Random) -> tuple[str, float]:
        if self.language == "zh":
            ending = "\n</think>\n\n" + ZH_ANSWER.format(answer=answer)
            if not self.format_error_rate or rng.random() >= self.format_error_rate:
                return ending, math.log1p(
                    -self.format_error_rate
                ) if self.format_error_rate else 0.0
            return ending.replace("</think>", ""), math.log(self.format_error_rate)
        good = f"\n</think>\n\nThe answer is \\boxed{{{answer}}}."
        if not self.format_error_rate or rng.random() >= self.format_error_rate:
            return good, math.log1p(-self.format_error_rate) if self.format_error_rate else 0.0
        logp = math.log(self.format_error_rate / 3)
        kind = rng.randrange(3)
        if kind == 0:  # forgets to close the thought
            return f"\n\nThe answer is \\boxed{{{answer}}}.", logp
        if kind == 1:  # forgets to box
            return f"\n</think>\n\nThe answer is {answer}.", logp
        return f"\n</think>\n\nThe answer is \\boxed{{{answer}}}, or maybe \\boxed{{0}}.", logp


def _prompt_tokens(req: GenRequest) -> int:
    """What a real engine reports as `tokens_in`: the request's text, counted the sim's way
    (a tree's requests carry the path so far, so their prompts grow with depth)."""
    chat = sum(count_tokens(str(m.get("content") or "")) for m in req.messages)
    return chat + count_tokens(req.prefix) + count_tokens(req.prompt or "")


def _finish(text: str, req: GenRequest, logp: float, tokens_in: int) -> Completion:
    meta = {"tokens_in": tokens_in}
    stop_reason = None
    cut = min(((text.find(s), s) for s in req.stop if s and s in text), default=None)
    if cut is not None:
        pos, stop_reason = cut
        text = text[: pos + len(stop_reason)] if req.include_stop else text[:pos]
    tokens = _TOKEN.findall(text)
    if len(tokens) > req.max_tokens:
        # Cut at the token where the budget runs out, as a real engine would.
        spans = list(_TOKEN.finditer(text))
        text = text[: spans[req.max_tokens - 1].end()] if req.max_tokens else ""
        return Completion(
            text, "length", None, req.max_tokens, logp if req.logprobs else None, meta=meta
        )
    return Completion(
        text, "stop", stop_reason, len(tokens), logp if req.logprobs else None, meta=meta
    )


def _named_wrong_step(req: GenRequest) -> int:
    """The step number a revision request names as wrong (0: none, or not a revision).

    >>> chat = [{"role": "user", "content": "Compute 2 + 3."},
    ...         {"role": "assistant", "content": "..."},
    ...         {"role": "user", "content": "found: Step 2 is wrong: 5 * 2 is 10, not 11."}]
    >>> [_named_wrong_step(GenRequest(messages=m)) for m in (chat, chat[:1])]
    [2, 0]
    """
    if not any(m.get("role") == "assistant" for m in req.messages):
        return 0
    found = _NAMED_WRONG.search(req.user_text())
    return int(found.group(1)) if found else 0


def _written_results(prefix: str) -> list[Fraction]:
    """The result written in each `Step k:` paragraph of the prefix: the right side of its
    first equation, as the one arithmetic reader finds it (true or not)."""
    out = []
    for block in prefix.split(STEP_BOUNDARY):
        if _STEP.search(block):
            found = [c.rhs_value for c in find_equations(block) if c.rhs_value is not None]
            if found:
                out.append(found[0])
    return out


def _resolve(operand, values: list[Fraction]) -> Fraction:
    return values[operand.index] if isinstance(operand, Ref) else operand


def _ideal_values(plan: list[StepPlan]) -> list[Fraction]:
    values: list[Fraction] = []
    for step in plan:
        values.append(OPS[step.op](_resolve(step.lhs, values), _resolve(step.rhs, values)))
    return values


# Ways to word a step (`wordings`): the first is the plain form.
LEADS = ("", "Now, ", "Next, ", "Then ", "So ")


def _reword(text: str, which: int) -> str:
    lead = LEADS[which]
    return lead + text[0].lower() + text[1:] if lead and text[:1].isalpha() else lead + text


def _code_block(step: StepPlan, k: int, bug: bool) -> str:
    """The step's Python: `s3 = s2 * 4` from earlier steps' variables, then a print."""
    lhs, rhs = _code_operand(step.lhs), _code_operand(step.rhs)
    if bug:  # a slip in the code: a variable that was never defined
        lhs = f"S{k}"
    return f"```python\ns{k + 1} = {lhs} {step.op} {rhs}\nprint(s{k + 1})\n```"


def _code_operand(operand) -> str:
    if isinstance(operand, Ref):
        return f"s{operand.index + 1}"
    return fmt_operand(operand)


def _slip(result: Fraction, ideal: Fraction, rng: random.Random) -> Fraction:
    """A plausible wrong result: off by a small amount or by ten; never the right value."""
    while True:
        delta = rng.choice([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20]) * rng.choice([-1, 1])
        wrong = result + delta
        if wrong not in (result, ideal, 0):
            return wrong
