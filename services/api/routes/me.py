"""Who the token says you are."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from services.api.deps import ActorDep
from services.api.models import PROBLEM_RESPONSES

router = APIRouter(tags=["authentication"], responses=PROBLEM_RESPONSES)


class Me(BaseModel):
    actor_id: str
    role: str
    organisation_id: str | None


@router.get("/me", response_model=Me)
def whoami(actor: ActorDep) -> Me:
    """The actor every command you send is recorded as."""
    return Me(actor_id=actor.id, role=actor.role.value, organisation_id=actor.organisation_id)
