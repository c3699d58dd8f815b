"""What one container keeps between requests: credentials, the upstream pool, state, logs.

Built once per container (see ``handler.py``), so warm invocations reuse the cached secrets,
the signed upstream token and the pooled upstream connection.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from glm_relay.chat.session import ChatService
from glm_relay.config import Settings
from glm_relay.secrets import SecretSource, secret_source
from glm_relay.state import UserState
from glm_relay.upstream import CredentialStore, KeyHealth, ZhipuClient
from glm_relay.web.telemetry import Telemetry

if TYPE_CHECKING:
    from glm_relay.state.journal import StreamJournal


@dataclass(slots=True)
class Services:
    """The container's long-lived objects."""

    credentials: CredentialStore
    zhipu: ZhipuClient
    signing_key: SecretSource
    state: UserState
    chats: ChatService
    telemetry: Telemetry
    journal: StreamJournal | None = None  # where answers are recorded, when they are resumable
    preparing: asyncio.Task[None] | None = field(default=None)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        credentials: CredentialStore | None = None,
        state: UserState | None = None,
    ) -> Services:
        """Everything wired from ``settings``; ``credentials`` replaces the Zhipu key's source,
        ``state`` the DynamoDB state (a test's own client, say)."""

        def source(secret_id: str) -> SecretSource:
            return secret_source(
                secret_id,
                source=settings.secrets_source,
                max_age_seconds=settings.secret_max_age_seconds,
            )

        credentials = credentials or CredentialStore(
            source(settings.zhipu_secret_id),
            mode=settings.zhipu_auth_mode,
            ttl_seconds=settings.jwt_ttl_seconds,
            renew_before_seconds=settings.jwt_renew_before_seconds,
        )
        telemetry = Telemetry(log_content=settings.log_content)
        health = KeyHealth(
            cooloff_seconds=settings.key_cooloff_seconds, on_sidelined=telemetry.key_sidelined
        )
        zhipu = ZhipuClient(settings, credentials, health=health)
        state = state or UserState(settings)
        journal = None
        if settings.resumable_streams and settings.conversations_table:
            from glm_relay.state.journal import StreamJournal

            journal = StreamJournal(state.table())
        return cls(
            credentials=credentials,
            zhipu=zhipu,
            signing_key=source(settings.access_token_secret_id),
            state=state,
            chats=ChatService(
                settings,
                upstream=zhipu,
                ledger=state,
                overlap=settings.quota_overlap,
                on_lost=telemetry.bookkeeping_lost,
            ),
            telemetry=telemetry,
            journal=journal,
            preparing=zhipu.start_preparing(),  # the token and pool, while the guard reads its key
        )
