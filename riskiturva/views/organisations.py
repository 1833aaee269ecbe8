"""The one visible-organisation lookup every read goes through.

An organisation outside the caller's visible organisations reads as absent (`NotVisible`,
the same answer as for one that does not exist), never as forbidden.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from riskiturva.models import Organisation
from riskiturva.store import NotVisible


@dataclass(frozen=True, slots=True)
class OrganisationRef:
    """An organisation as a reader sees it: slug, names in fi/sv/en, partner."""

    id: int
    slug: str
    names: Mapping[str, str]
    partner: str | None

    def name(self, language: str) -> str:
        return self.names.get(language) or self.names["en"]


def ref_of(row: Organisation) -> OrganisationRef:
    """The reader's view of an organisation row."""
    return OrganisationRef(
        id=row.id,
        slug=row.slug,
        names={"fi": row.name_fi, "sv": row.name_sv, "en": row.name_en},
        partner=row.partner,
    )


def organisations(
    session: Session,
    visible: Collection[str],
    *,
    slugs: Collection[str] | None = None,
    partner: str | None = None,
) -> tuple[OrganisationRef, ...]:
    """The visible organisations (optionally only `slugs`, or a partner's), by slug."""
    allowed = [s for s in visible if slugs is None or s in slugs]
    query = select(Organisation).where(Organisation.slug.in_(allowed)).order_by(Organisation.slug)
    if partner is not None:
        query = query.where(Organisation.partner == partner)
    return tuple(ref_of(row) for row in session.scalars(query))


def organisation(session: Session, visible: Collection[str], slug: str) -> OrganisationRef:
    """One visible organisation; `NotVisible` when it is absent or not the caller's."""
    found = organisations(session, visible, slugs=[slug])
    if not found:
        raise NotVisible(slug)
    return found[0]
