"""Policy file texts the policy tests build on."""

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
