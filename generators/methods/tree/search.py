"""The search itself: plant one tree per problem, run synchronous MCTS rounds across all
trees (one engine call per round), verify each new step, settle a majority gold.

Pure over the engine it is given; building rows is `rows.py`.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from dataclasses import dataclass, field

from reasonfactory.generators.base import RunContext
from reasonfactory.generators.engines.base import Completion, Engine, GenRequest
from reasonfactory.generators.methods.tree.config import PROGRESS_SECONDS, TreeConfig, log
from reasonfactory.generators.methods.tree.mcts import (
    Node,
    add_child,
    backup,
    iter_nodes,
    make_root,
    path_to,
    recompute_values,
    score_alone,
    select_child,
)
from reasonfactory.generators.prompts import STEP_BOUNDARY, build_code_messages, build_messages
from reasonfactory.generators.verify.answer import Outcome, check_answer
from reasonfactory.generators.verify.answers import answer_key, extract_boxed
from reasonfactory.generators.verify.rollout import completion_answer, mc_label, mc_value
from reasonfactory.generators.verify.sandbox import Limits, run_many
from reasonfactory.generators.verify.steps import StepCheck, check_code, check_equations, code_of
from reasonfactory.warehouse.ids import digest


@dataclass
class Search:
    """One problem's tree and where its current rollout stands."""

    problem_id: str
    question: str
    gold: str | None
    gold_source: str
    tree_id: str
    messages: tuple[dict, ...]
    root: Node
    rng: random.Random
    rollouts_started: int = 0
    cursor: Node | None = None
    verdicts: dict[str, bool] = field(default_factory=dict)
    votes: Counter = field(default_factory=Counter)


def plant(problem: dict, config: TreeConfig, ctx: RunContext) -> Search:
    build = build_code_messages if "code" in config.verify else build_messages
    seed = digest(config.seed, problem["problem_id"], "uct")
    return plant_search(problem, ctx, build(problem["question"]), random.Random(seed))


def plant_search(problem: dict, ctx: RunContext, messages, rng: random.Random) -> Search:
    """A problem's empty search (the root only), asked with `messages`; tree and beam share it."""
    pid = problem["problem_id"]
    return Search(
        problem_id=pid,
        question=problem["question"],
        gold=problem.get("gold"),
        gold_source="problem" if problem.get("gold") is not None else "none",
        tree_id="tr_" + digest(ctx.fingerprint, pid),
        messages=messages,
        root=make_root(),
        rng=rng,
    )


# -- the search loop -------------------------------------------------------------------------


def search_trees(searches: list[Search], engine: Engine, config: TreeConfig) -> None:
    """Run every tree's rollouts in synchronous rounds, one engine call per round."""
    started = last_log = time.perf_counter()
    rounds = requests = 0
    while True:
        jobs = [(s, node) for s in searches if (node := advance(s, config)) is not None]
        if not jobs:
            break
        run_round(jobs, engine, config)
        rounds += 1
        requests += len(jobs)
        if time.perf_counter() - last_log >= PROGRESS_SECONDS:
            last_log = time.perf_counter()
            done = sum(s.rollouts_started for s in searches)
            log.info(
                "tree search: round %d, %d of %d trees still searching, rollouts %d/%d, "
                "%d requests so far (%.0f s)",
                rounds,
                len(jobs),
                len(searches),
                done,
                config.rollouts * len(searches),
                requests,
                last_log - started,
            )
    loose = [(s, n) for s in searches for n in iter_nodes(s.root) if pending_answer(n)]
    if loose:  # closed thoughts whose answer no rollout came back for
        run_round(loose, engine, config)
        rounds, requests = rounds + 1, requests + len(loose)
    log.info(
        "tree search: %d trees, %d rounds, %d requests (%.1f per engine call), %.1f s",
        len(searches),
        rounds,
        requests,
        requests / max(rounds, 1),
        time.perf_counter() - started,
    )


def advance(s: Search, config: TreeConfig) -> Node | None:
    """Walk the current rollout down to the next node that needs the engine (None: done)."""
    while True:
        if s.cursor is None:
            if s.rollouts_started >= config.rollouts or s.root.exhausted:
                return None
            s.rollouts_started += 1
            s.cursor = s.root
        node = s.cursor
        if pending_answer(node):
            return node
        if node.terminal or node.exhausted:
            s.cursor = None
            continue
        if not node.expanded:
            if node.kind == "step" and node.depth >= config.max_depth:
                node.terminal, node.reason = True, "max_depth"
                score_alone(node, -1.0)
                s.cursor = None
                continue
            return node
        child = select_child(node, config.c, s.rng)
        if child is None:
            node.exhausted = True
            s.cursor = None
            continue
        s.cursor = child


def run_round(jobs: list[tuple[Search, Node]], engine: Engine, config: TreeConfig) -> None:
    """Expand (or write the answer of) every job's node with one engine call, then verify."""
    results = _generate(engine, [request_for(s, node, config) for s, node in jobs])
    fresh: list[tuple[Search, Node, str | None]] = []
    for (s, node), completions in zip(jobs, results, strict=True):
        if pending_answer(node):
            write_answer(s, node, completions[0] if completions else None)
        else:
            fresh += [(s, child, answer) for child, answer in expand(node, completions)]
    verify([(s, child) for s, child, _ in fresh], engine, config)
    for s, child, answer in fresh:
        settle(s, child, answer)


def request_for(s: Search, node: Node, config: TreeConfig) -> GenRequest:
    if pending_answer(node):
        prefix, n, stop, purpose = _prefix(node.parent, closed=True), 1, (), "answer"
    else:
        prefix, n, stop, purpose = _prefix(node), config.width, (STEP_BOUNDARY,), "expand"
    return GenRequest(
        messages=s.messages,
        prefix=prefix,
        n=n,
        temperature=config.temperature,
        top_p=config.top_p,
        max_tokens=config.max_step_tokens,
        stop=stop,
        seed=_seed(config.seed, s.problem_id, node.node_id, purpose),
        problem_id=s.problem_id,
    )


def split_step(text: str) -> tuple[str, bool, str | None]:
    """A sampled continuation as (step paragraph, closes the thought, answer text if any).

    >>> split_step("Step 4: 58 / 2 = 29.\\n</think>")
    ('Step 4: 58 / 2 = 29.', True, None)
    """
    body, closes, answer = text, False, None
    if "</think>" in body:
        body, after = body.split("</think>", 1)
        closes, answer = True, after.strip() or None
    step = body.strip().removeprefix("<think>").strip()
    if not closes and extract_boxed(step) is not None:
        closes = True  # the answer was written inside the thought: the thought is done
    return step, closes, answer


def expand(node: Node, completions: list[Completion]) -> list[tuple[Node, str | None]]:
    """Children from the sampled continuations; identical ones merge (`samples` counts them)."""
    node.expanded = True
    made: dict[tuple[str, bool], Node] = {}
    out: list[tuple[Node, str | None]] = []
    for c in completions:
        step, closes, answer = split_step(c.text)
        if not step:
            if closes:  # "</think>" straight away: this node was the last step
                existing = next((ch for ch in node.children if ch.kind == "answer"), None)
                if existing is not None:
                    existing.samples += 1
                else:
                    out.append((add_child(node, "answer", None), answer))
            continue
        key = (step, closes)
        if key in made:
            made[key].samples += 1
            continue
        child = add_child(node, "step", step, closes=closes, tokens=c.n_tokens)
        if c.finish_reason == "length":
            child.terminal, child.reason = True, "truncated"
        made[key] = child
        out.append((child, answer))
    return out


def settle(s: Search, child: Node, answer: str | None) -> None:
    """After verification: back up a failed step; give a closing step its answer node."""
    if child.kind == "answer":
        if answer is not None:
            write_answer(s, child, Completion(answer))
        return
    if child.terminal:
        score_alone(child, -1.0)
        return
    if child.closes:
        child.expanded = True
        leaf = add_child(child, "answer", None)
        if answer is not None:
            write_answer(s, leaf, Completion(answer))


def write_answer(s: Search, node: Node, completion: Completion | None) -> None:
    text = (completion.text if completion else "").strip().removeprefix("</think>").strip()
    node.text = text
    node.tokens = completion.n_tokens if completion else 0
    node.answer = extract_boxed(text)
    node.terminal, node.reason = True, "answer"
    if s.gold is None:
        s.votes.update([answer_key(node.answer)] if node.answer else [])
    right = is_right(s, node.answer)
    node.correct = right if s.gold is not None else None
    backup(node, 1.0 if right else -1.0)


def is_right(s: Search, answer: str | None) -> bool:
    """Against the gold (math-verify, cached per distinct answer), else the running majority."""
    key = answer_key(answer)
    if key is None:
        return False
    if s.gold is None:
        return bool(s.votes) and s.votes.most_common(1)[0][0] == key
    if key not in s.verdicts:
        outcome = check_answer(s.gold, answer)
        if outcome is Outcome.GOLD_UNPARSEABLE:
            s.verdicts[key] = key == answer_key(s.gold)
        else:
            s.verdicts[key] = outcome is Outcome.CORRECT
    return s.verdicts[key]


# -- verification ----------------------------------------------------------------------------


def verify(fresh: list[tuple[Search, Node]], engine: Engine, config: TreeConfig) -> None:
    """Run the configured verifiers on new steps, cheapest first; a failure is terminal."""
    alive = [(s, n) for s, n in fresh if n.kind == "step" and not n.terminal]
    if "equations" in config.verify:
        for _, node in alive:
            _record(node, check_equations(node.text), config.require_claim)
        alive = [(s, n) for s, n in alive if not n.terminal]
    if "code" in config.verify:
        with_code = [(s, n) for s, n in alive if code_of(n.text)]
        jobs = [(_ancestor_code(n), code_of(n.text)) for _, n in with_code]
        limits = Limits(
            wall_seconds=config.code_timeout,
            cpu_seconds=math.ceil(config.code_timeout),
            memory_mb=config.code_memory_mb,
        )
        results = run_many(jobs, limits, allow_weak=config.sandbox.allow_weak)
        for (_, node), result in zip(with_code, results, strict=True):
            _record(node, check_code(node.text, result), sandbox=", ".join(result.layers))
        alive = [(s, n) for s, n in alive if not n.terminal]
    if "rollout" in config.verify and alive:
        requests = [
            GenRequest(
                messages=s.messages,
                prefix=_prefix(n, closed=n.closes),
                n=config.rollout_samples,
                temperature=config.temperature,
                top_p=config.top_p,
                max_tokens=config.max_tokens,
                seed=_seed(config.seed, s.problem_id, n.node_id, "rollout"),
                problem_id=s.problem_id,
            )
            for s, n in alive
        ]
        for (s, node), completions in zip(alive, _generate(engine, requests), strict=True):
            answers = [completion_answer(c.text, node.closes) for c in completions]
            if s.gold is None:
                s.votes.update(answer_key(a) for a in answers if a)
            node.rollout_answers = answers
            node.mc_value = mc_value(answers, lambda a, s=s: is_right(s, a))
            _record(node, mc_label(answers, lambda a, s=s: is_right(s, a)))


def _record(
    node: Node, check: StepCheck, require_claim: bool = False, sandbox: str | None = None
) -> None:
    meta = check.as_meta() | ({"sandbox": sandbox} if sandbox is not None else {})
    node.checks.append(meta)
    node.check = dict(meta)
    if check.ok is False:
        node.terminal, node.correct, node.reason = True, False, "failed_check"
    elif check.ok is None and require_claim:
        node.terminal, node.correct, node.reason = True, False, "no_claim"


def _ancestor_code(node: Node) -> str:
    return "\n".join(
        code for n in path_to(node)[:-1] if n.kind == "step" and (code := code_of(n.text))
    )


# -- after the search ------------------------------------------------------------------------


def settle_majority(s: Search, config: TreeConfig) -> None:
    """No gold: the majority answer, if agreed enough, becomes the gold; rewards are re-scored."""
    if s.gold_source != "none":
        return
    answers = [n for n in iter_nodes(s.root) if n.kind == "answer" and n.text is not None]
    keys = [answer_key(n.answer) for n in answers]
    votes = Counter(k for k in keys if k is not None)
    if not votes or votes.most_common(1)[0][1] / len(answers) < config.min_agreement:
        return
    top = votes.most_common(1)[0][0]
    s.gold = next(n.answer for n, k in zip(answers, keys, strict=True) if k == top)
    s.gold_source = "majority"
    for node, key in zip(answers, keys, strict=True):
        node.correct = key == top
        node.reward = 1.0 if node.correct else -1.0
    for node in iter_nodes(s.root):
        if node.rollout_answers is not None:
            node.mc_value = mc_value(node.rollout_answers, lambda a: answer_key(a) == top)
    recompute_values(s.root)


# -- helpers ---------------------------------------------------------------------------------


def pending_answer(node: Node) -> bool:
    return node.kind == "answer" and node.text is None


def _prefix(node: Node, closed: bool = False) -> str:
    """The assistant text so far: `<think>`, the steps down to `node`, and a step boundary
    (or, when the thought is closed, `</think>` and the blank line before the answer)."""
    steps = [n.text for n in path_to(node) if n.kind == "step"]
    body = STEP_BOUNDARY.join(steps)
    if closed:
        return "<think>\n" + body + "\n</think>\n\n"
    return "<think>\n" + body + (STEP_BOUNDARY if steps else "")


def _seed(seed: int, problem_id: str, node_id: str, purpose: str) -> int:
    return int(digest(seed, problem_id, node_id, purpose, length=8), 16)


def _generate(engine: Engine, requests: list[GenRequest]) -> list[list[Completion]]:
    if not requests:
        return []
    results = engine.generate(requests)
    if len(results) != len(requests):
        raise RuntimeError(f"engine returned {len(results)} results for {len(requests)} requests")
    return results
