"""Bulk enrolment of new claimants into the store: ``COPY`` on PostgreSQL, batched
``executemany`` on SQLite; one transaction per batch, with the change log written in it, so
every index catches up by replaying the log as after single enrolments.

Only for claimants without a template of the model (what ``load-templates`` loads): nothing is
replaced, so no removal is logged. Claimants known under another model get the template; new
ones are created.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import insert, literal, select
from sqlalchemy.orm import Session, sessionmaker

from biometric.gallery.changelog import change_log_transaction
from biometric.gallery.models import Claimant, IndexChange, Template


@dataclass(frozen=True)
class NewTemplate:
    citizen_id: str
    embedding: np.ndarray
    quality: float | None
    source: str = "chip"


def enrolled_among(
    sessions: sessionmaker[Session], model: str, citizen_ids: list[str]
) -> set[str]:
    """Which of ``citizen_ids`` hold a template of ``model`` already."""
    with sessions() as s:
        return set(
            s.scalars(
                select(Claimant.citizen_id)
                .join(Template, Template.claimant_id == Claimant.id)
                .where(Template.model == model, Claimant.citizen_id.in_(citizen_ids))
            ).all()
        )


def insert_new(
    sessions: sessionmaker[Session], model: str, model_version: str, items: list[NewTemplate]
) -> int:
    """Insert the templates (citizen ids unique, none enrolled for ``model``) in one
    transaction with their change-log rows; returns how many."""
    if not items:
        return 0
    now = datetime.now(UTC)
    with change_log_transaction(sessions) as s:
        postgres = s.get_bind().dialect.name == "postgresql"
        cids = [i.citizen_id for i in items]
        known = _claimant_ids(s, cids)
        new = [c for c in cids if c not in known]
        if new:
            if postgres:
                _copy(s, "claimants (citizen_id, status, created_at)",
                      [(c, "active", now) for c in new])
            else:
                s.execute(insert(Claimant), [{"citizen_id": c, "created_at": now} for c in new])
            known |= _claimant_ids(s, new)
        rows = [
            (known[i.citizen_id], model, model_version,
             np.asarray(i.embedding, "<f4").tobytes(), i.quality, i.source, now)
            for i in items
        ]
        if postgres:
            _copy(s, "templates (claimant_id, model, model_version, embedding, quality, source, "
                  "created_at)", rows)
        else:
            keys = ("claimant_id", "model", "model_version", "embedding", "quality", "source",
                    "created_at")
            s.execute(insert(Template), [dict(zip(keys, r, strict=True)) for r in rows])
        # One change-log row per new template, in template id order: the claimants held no
        # template of this model, so theirs are exactly the rows just written.
        new_templates = (
            select(literal("add"), Template.id, Template.model)
            .where(Template.model == model, Template.claimant_id.in_(list(known.values())))
            .order_by(Template.id)
        )
        s.execute(
            insert(IndexChange).from_select(["op", "template_id", "model"], new_templates)
        )
    return len(items)


def _claimant_ids(s: Session, citizen_ids: list[str]) -> dict[str, int]:
    rows = s.execute(
        select(Claimant.citizen_id, Claimant.id).where(Claimant.citizen_id.in_(citizen_ids))
    ).all()
    return {r[0]: r[1] for r in rows}


def _copy(s: Session, target: str, rows: list[tuple]) -> None:
    """PostgreSQL ``COPY ... FROM STDIN`` (binary-safe via psycopg's row writer)."""
    cursor = s.connection().connection.driver_connection.cursor()
    with cursor.copy(f"COPY {target} FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
