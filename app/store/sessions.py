"""Sessions: how a browser (its cookie) or a script (its bearer token) shows which workspace is its own.

The secret is random and opaque; only its SHA-256 is stored. A session lasts `ttl` after
its last use (renewed at most once a day, so that reads do not write on every request),
and ends earlier when it is revoked. A workspace is created with its first session.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from app.store.db import rows_changed
from app.store.tables import SessionRecord, Workspace, utcnow

RENEW_AFTER = timedelta(days=1)  # a session used again after this long gets its full lifetime back


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def open_session(db: Session, kind: str, ttl: timedelta, workspace_id: str | None = None) -> tuple[str, str]:
    """A new session for `workspace_id` (a new workspace when None); returns (workspace id, secret)."""
    if workspace_id is None:
        workspace_id = secrets.token_urlsafe(16)
        db.add(Workspace(id=workspace_id))
        db.flush()  # the session row refers to it
    secret = secrets.token_urlsafe(32)
    db.add(SessionRecord(secret_hash=_hash(secret), workspace_id=workspace_id, kind=kind,
                         expires_at=utcnow() + ttl))
    db.commit()
    return workspace_id, secret


def workspace_of(db: Session, secret: str, ttl: timedelta) -> str | None:
    """The workspace of a live session, renewing it when it has been a while; None when unknown or expired."""
    found = session_of(db, secret, ttl)
    return found[0] if found else None


def session_of(db: Session, secret: str, ttl: timedelta) -> tuple[str, str] | None:
    """(workspace id, kind) of a live session, renewed when it has been a while; None when unknown or expired.
    Kinds: browser and token (a personal workspace), participant, instructor."""
    if not secret or len(secret) > 200:
        return None
    record = db.get(SessionRecord, _hash(secret))
    now = utcnow()
    if record is None:
        workspace_id = _adopt_legacy_token(db, secret, ttl)
        return (workspace_id, "token") if workspace_id else None
    expires_at = record.expires_at  # aware: the column type marks SQLite's moments UTC
    if expires_at <= now:
        return None
    if expires_at - now < ttl - RENEW_AFTER:
        db.execute(update(SessionRecord).where(SessionRecord.secret_hash == record.secret_hash)
                   .values(expires_at=now + ttl))
        db.commit()
    return record.workspace_id, record.kind


def revoke(db: Session, secret: str) -> bool:
    """End a session at once; True when there was one."""
    removed = rows_changed(db.execute(delete(SessionRecord).where(SessionRecord.secret_hash == _hash(secret))))
    db.commit()
    return removed > 0


def remove_expired(db: Session) -> int:
    removed = rows_changed(db.execute(delete(SessionRecord).where(SessionRecord.expires_at <= utcnow())))
    db.commit()
    return removed


def _adopt_legacy_token(db: Session, secret: str, ttl: timedelta) -> str | None:
    """Tokens made before sessions existed were kept on the workspace: they become sessions when used."""
    hashed = _hash(secret)
    workspace_id = db.scalar(select(Workspace.id).where(Workspace.token_hash == hashed))
    if workspace_id is None:
        return None
    db.execute(update(Workspace).where(Workspace.id == workspace_id).values(token_hash=None))
    db.add(SessionRecord(secret_hash=hashed, workspace_id=workspace_id, kind="token", expires_at=utcnow() + ttl))
    db.commit()
    return workspace_id

