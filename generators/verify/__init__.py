"""The one layer that decides truth; generators and filters both call it, nothing re-implements it.

- `answers.py`: pull a final answer out of text (`\\boxed{}`, GSM8K's `####`), vote keys.
- `answer.py`: is a predicted answer the gold one (math-verify, guarded), one pair.
- `answer_pool.py`: many answer checks in a killable process pool, plus rule checkers.
- `checkers.py`, `countdown.py`: problems decided by a rule rather than a gold (Countdown).
- `exact.py`: the one arithmetic reader (a syntax tree with spans and exact values) that
  claims, answers, Countdown, error injection and the sim engine all use; `claim_tokens.py`
  its lexer and the prose around claims; `chains.py` finds `lhs = rhs` claims (chains split
  into links) and `judge.py` decides whether each holds. `exact.py` is the reader's front
  (a whole answer as one number); `arith_parser.py` parses, `arith_tree.py` holds the nodes.
- `steps.py`: a step's verdict from its claims or its code; `sandbox.py` (+ `sandbox_child.py`)
  runs model code confined; `rollout.py`: Math-Shepherd rollout labels.

Imports nothing from methods, engines or problems.
"""
