"""The answer to "Is our IT environment up to date and secure?" in one sentence.

The words are the `scoring` gettext domain's (English msgids, Finnish and Swedish
catalogs), the titles the check registry's; numbers are written as the reader's language
writes them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from riskiturva.checks import Check, Severity
from riskiturva.i18n import Translator, translator
from riskiturva.scoring.model import OrganisationScore
from riskiturva.scoring.plan import Action
from riskiturva.scoring.tables import CAP_RULES_BY_ID, POINT, CapRule, Grade

DOMAIN = "scoring"
_COUNTED_SEVERITIES = (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW)


def words(language: str) -> Translator:
    """The `scoring` domain's translator for `language`."""
    return translator(language, DOMAIN)


def format_score(tenths: int, language: str) -> str:
    """`72.5` in English, `72,5` in Finnish and Swedish; whole numbers without decimals."""
    text = str(tenths // POINT) if tenths % POINT == 0 else f"{tenths / POINT:.1f}"
    return text if language == "en" else text.replace(".", ",")


def cap_reason(rule: CapRule | str, language: str) -> str:
    """Why a cap limits the grade, in `language` (a rule or its id)."""
    found = CAP_RULES_BY_ID.get(rule) if isinstance(rule, str) else rule
    return words(language)(found.reason) if found is not None else str(rule)


def _problems(_: Translator, severity: Severity, count: int) -> str:
    if severity is Severity.CRITICAL:
        return _.ngettext("{count} critical problem", "{count} critical problems", count)
    if severity is Severity.HIGH:
        return _.ngettext("{count} serious problem", "{count} serious problems", count)
    if severity is Severity.MEDIUM:
        return _.ngettext("{count} moderate problem", "{count} moderate problems", count)
    return _.ngettext("{count} minor problem", "{count} minor problems", count)


def answer(
    score: OrganisationScore,
    actions: Sequence[Action],
    *,
    registry: Mapping[str, Check],
    language: str = "fi",
    checked: bool = True,
) -> str:
    """ "Is our IT environment up to date and secure?" in one sentence, in `language`.

    `checked=False` (nothing has been scanned successfully yet) never answers "yes":
    no findings then means "not known", not "fine".
    """
    _ = words(language)
    grade, points = score.grade.value, format_score(score.tenths, _.language)
    if not checked:
        return _(
            "Not known yet: no check has succeeded so far, so grade {grade} means nothing yet.",
            grade=grade,
        )
    action = ""
    if actions:
        top = actions[0]
        check = registry.get(top.check_id)
        title = check.title_in(_.language) if check else top.check_id
        places = _.ngettext("{count} instance", "{count} instances", top.instances)
        action = f"{title} ({places})"
    if score.grade is Grade.A:
        if not actions:
            return _(
                "Yes: grade {grade} ({score}/100), no open problems.", grade=grade, score=points
            )
        return _(
            "Yes: grade {grade} ({score}/100); small improvements: {action}.",
            grade=grade,
            score=points,
            action=action,
        )
    if score.grade is Grade.B:
        return _(
            "Mostly: grade {grade} ({score}/100); fix next: {action}.",
            grade=grade,
            score=points,
            action=action,
        )
    return _(
        "Not yet: grade {grade} ({score}/100), {problems}; fix first: {action}.",
        grade=grade,
        score=points,
        problems=_problem_summary(score, _),
        action=action,
    )


def _problem_summary(score: OrganisationScore, _: Translator) -> str:
    """The worst severity's count; with a binding cap, also what caps the grade."""
    parts = []
    for severity in _COUNTED_SEVERITIES:
        count = score.open_counts.get(severity, 0)
        if count:
            parts.append(_problems(_, severity, count))
            break
    binding = [c.rule for c in score.caps if c.binding]
    if binding and binding[0].id != "open_critical":
        parts.append(_("{reason} limits the grade", reason=_(binding[0].reason)))
    return ", ".join(parts)
