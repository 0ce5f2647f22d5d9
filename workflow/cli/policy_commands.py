"""``complaintflow policy``: check, explain, test a policy file; print its JSON Schema."""

from __future__ import annotations

import json
from decimal import Decimal

import click

from policies.decide import OfferRequest, decide_offer
from policies.errors import MoneyError, PolicyFileError
from policies.expectations import load_expectations, parse_remedy, run_expectations
from policies.model import COMPLAINANT_TYPES, Policy
from policies.money import minor_units
from policies.types import one_line
from workflow.cli.common import BUNDLED_PREFIX, bundled_file, cli_policy


def _load(file: str) -> Policy:
    """FILE, or ``bundled:NAME`` for a policy shipped with complaintflow."""
    return cli_policy(file, "'FILE'")


def _cases_file(file: str, cases: str | None) -> str:
    """CASES, ``bundled:NAME`` for a bundled policy's cases, or (no CASES) the cases
    shipped beside a policy given as ``bundled:NAME``."""
    if cases is None and not file.startswith(BUNDLED_PREFIX):
        raise click.UsageError("Missing argument 'CASES' (needed unless FILE is bundled:NAME).")
    named = cases if cases is not None else file
    if not named.startswith(BUNDLED_PREFIX):
        return named
    where = "'CASES'" if cases is not None else "'FILE'"
    return str(bundled_file(named.removeprefix(BUNDLED_PREFIX), where, cases=True))


@click.group()
def policy() -> None:
    """Work with policy files."""


@policy.command()
@click.argument("file", type=click.Path(dir_okay=False))
def check(file: str) -> None:
    """Validate FILE (or bundled:NAME); list every problem with its location."""
    loaded = _load(file)
    click.echo(f"{file}: ok — {loaded.name}, version {loaded.version}")
    click.echo(f"  digest   {loaded.digest}")
    escalation = (
        f"; escalation roles: {', '.join(loaded.escalation_roles) or 'none'}"
        if loaded.escalation_roles is not None
        else ""
    )
    click.echo(
        f"  currency {loaded.currency}; roles: {', '.join(loaded.roles) or 'none'}{escalation}"
    )
    click.echo(f"  remedy kinds: {', '.join(sorted(loaded.remedy_kind_names))}")


@policy.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--role", required=True, help="The offering agent's role.")
@click.option(
    "--remedy",
    "remedies",
    multiple=True,
    required=True,
    help="An option: kind:amount (refund:40.00EUR) or a kind alone; repeat for more.",
)
@click.option("--tier", default="standard", show_default=True)
@click.option("--category", default=None)
@click.option(
    "--complainant-type", default="unknown", show_default=True, type=click.Choice(COMPLAINANT_TYPES)
)
@click.option("--offers-made", default=0, show_default=True, type=click.IntRange(min=0))
@click.option(
    "--paid",
    default="0",
    show_default=True,
    help="Paid to this customer within the cap period (policy currency).",
)
def explain(
    file: str,
    role: str,
    remedies: tuple[str, ...],
    tier: str,
    category: str | None,
    complainant_type: str,
    offers_made: int,
    paid: str,
) -> None:
    """Decide on a hypothetical offer under FILE (or bundled:NAME), and say why."""
    loaded = _load(file)
    try:
        options = tuple(parse_remedy(text) for text in remedies)
    except (MoneyError, ValueError, ArithmeticError) as exc:
        raise click.BadParameter(one_line(exc), param_hint="'--remedy'") from None
    try:
        request = OfferRequest(
            role=role,
            remedies=options,
            customer_tier=tier,
            category=category,
            complainant_type=complainant_type,
            offers_made=offers_made,
            paid_in_period=_paid(paid, loaded.currency),
        )
    except ValueError as exc:  # OfferRequest checks only the amount paid (``_paid`` first)
        raise click.BadParameter(str(exc), param_hint="'--paid'") from None
    if category is not None and loaded.categories is not None and category not in loaded.categories:
        raise click.BadParameter(
            f"{category!r} is not one of the policy's categories: {', '.join(loaded.categories)}",
            param_hint="'--category'",
        )
    if loaded.tiers is not None and tier not in loaded.tiers:
        raise click.BadParameter(loaded.not_a_tier(tier), param_hint="'--tier'")
    try:
        decision = decide_offer(loaded, request)
    except ArithmeticError:  # decimal.Overflow: adding up an amount paid past any size
        raise click.BadParameter(
            f"{paid!r} is too large an amount", param_hint="'--paid'"
        ) from None
    click.echo(f"decision: {decision.outcome.value}")
    for rule, reason in zip(decision.rule_ids, decision.reasons, strict=True):
        click.echo(f"  [{rule}] {reason}")
    click.echo(f"policy: {loaded.name} {loaded.stamp}")


def _paid(text: str, currency: str) -> Decimal:
    """``--paid``: an amount of 0 or more in the policy's currency, with no more decimals
    than the currency has (as ``--remedy refund:40.001EUR`` is refused); any other is a
    usage error naming the option (not ``paid_in_period``, the library's argument)."""
    try:
        amount = Decimal(text)
    except ArithmeticError:  # decimal.InvalidOperation: not a number at all
        raise click.BadParameter(f"{text!r} is not an amount", param_hint="'--paid'") from None
    if not amount.is_finite() or amount < 0:
        raise click.BadParameter(f"{text!r} is not an amount of 0 or more", param_hint="'--paid'")
    exponent = amount.as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    if places > minor_units(currency):
        raise click.BadParameter(
            f"{text!r} has {places} decimal places; {currency} has {minor_units(currency)}",
            param_hint="'--paid'",
        )
    return amount


@policy.command("test")
@click.argument("file", type=click.Path(dir_okay=False))
@click.argument("cases", type=click.Path(dir_okay=False), required=False)
def test_(file: str, cases: str | None) -> None:
    """Run CASES (expected decisions, YAML) against FILE; exit 1 if any fails.
    FILE may be bundled:NAME (a bundled policy), and then CASES defaults to its cases."""
    loaded = _load(file)
    try:
        expectations = load_expectations(_cases_file(file, cases), loaded)
    except PolicyFileError as exc:
        raise click.ClickException(str(exc)) from None
    results = run_expectations(loaded, expectations)
    for result in results:
        mark = "PASS" if result.passed else "FAIL"
        click.echo(f"{mark}  {result.expectation.name}")
        if not result.passed:
            want = result.expectation.expect
            rules = ", ".join(result.expectation.rules)
            click.echo(f"      expected {want}" + (f" by [{rules}]" if rules else ""))
            click.echo(f"      got      {result.decision.explain()}")
    failed = sum(not r.passed for r in results)
    click.echo(f"{len(results) - failed} passed, {failed} failed")
    if failed:
        raise SystemExit(1)


@policy.command()
def schema() -> None:
    """Print the policy file's JSON Schema (for editors to validate as you type)."""
    document = Policy.model_json_schema()
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["title"] = "complaintflow policy file"
    click.echo(json.dumps(document, indent=2, sort_keys=True))
