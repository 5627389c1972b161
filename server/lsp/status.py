"""Status for the editor's status bar: an `orchestrator/status` notification after each call
(profile, month spend, budget, alert level), and `window/showMessage` at the budget alerts
(50/80/95/100 %) the core raises."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from lsprotocol import types

if TYPE_CHECKING:
    from orchestrator.ledger import BudgetAlert

    from .server import OrchestratorServer

log = logging.getLogger(__name__)
METHOD = "orchestrator/status"


class Status:
    def __init__(self, ls: OrchestratorServer):
        self.ls = ls
        self._scheduled = False
        self.last: dict[str, Any] | None = None

    def changed(self) -> None:
        """Send a status soon; calls in a burst share one notification."""
        if self._scheduled or self.ls.ready is None:
            return
        self._scheduled = True
        self.ls.spawn(self._send())

    async def _send(self) -> None:
        # Let the call that triggered us answer first: the status never delays a response.
        await asyncio.sleep(0)
        self._scheduled = False
        orch = self.ls.ready
        if orch is None:
            return
        state = await orch.ledger.budget_state()
        profile = self.ls.profile or orch.settings.routing.profile.value
        self.last = {
            "profile": profile,
            "period": state.period,
            "monthSpendUsd": round(state.spent_usd, 6),
            "budgetUsd": state.budget_usd,
            "remainingUsd": state.remaining_usd,
            "alertLevel": state.alert_level,
            "providers": orch.settings.configured_providers(),
        }
        self.ls.notify(METHOD, self.last)

    def on_alert(self, alert: BudgetAlert) -> None:
        kind = types.MessageType.Error if alert.level >= 100 else types.MessageType.Warning
        self.ls.show(f"Orchestrator budget: {alert.message}", kind)


def register(ls: OrchestratorServer) -> None:
    ls.status = Status(ls)
