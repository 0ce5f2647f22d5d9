"""Policy file texts the policy tests build on, and a check of a refusal."""

from policies.errors import PolicyFileError

#: A small valid policy in YAML, eight lines long: problems in text appended to it are
#: reported from line 9 on.
BASE = """name: Shop
version: "1"
currency: EUR
roles:
  agent:
    authority: 25.00
    limits:
      refund: 50.00
"""


def assert_one_problem(error: PolicyFileError, where: str, what: str) -> None:
    """The policy file was refused for exactly one problem, at ``where``, whose message
    holds ``what``."""
    problems = error.problems
    assert len(problems) == 1, problems
    assert problems[0].location == where, (problems[0].location, where)
    assert what in problems[0].message, (problems[0].message, what)
