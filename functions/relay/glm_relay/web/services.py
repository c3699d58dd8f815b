"""What one container keeps between requests: credentials, the upstream pool, state, logs.

Built once per container (see ``handler.py``), so warm invocations reuse the cached secrets,
the signed upstream token and the pooled upstream connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from dataclasses import dataclass, field

from glm_relay.chat.session import ChatService
from glm_relay.config import Settings
from glm_relay.secrets import SecretSource, secret_source
from glm_relay.state import UserState
from glm_relay.upstream import CredentialStore, ZhipuClient
from glm_relay.web.telemetry import Telemetry


@dataclass(slots=True)
class Services:
    """The container's long-lived objects."""

    credentials: CredentialStore
    zhipu: ZhipuClient
    signing_key: SecretSource
    state: UserState
    chats: ChatService
    telemetry: Telemetry
    preparing: asyncio.Task[None] | None = field(default=None)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, credentials: CredentialStore | None = None
    ) -> Services:
        """Everything wired from ``settings``; ``credentials`` replaces the Zhipu key's source."""

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
        zhipu = ZhipuClient(settings, credentials)
        state = UserState(settings)
        services = cls(
            credentials=credentials,
            zhipu=zhipu,
            signing_key=source(settings.access_token_secret_id),
            state=state,
            chats=ChatService(settings, upstream=zhipu, ledger=state),
            telemetry=Telemetry(log_content=settings.log_content),
        )
        services.preparing = _in_background(zhipu.prepare())
        return services


def _in_background(work: Awaitable[None]) -> asyncio.Task[None] | None:
    """``work`` started now when an event loop runs (a container is built inside its first
    request); its errors are dropped: the request that needs the result meets them itself."""

    async def quietly() -> None:
        with contextlib.suppress(Exception):
            await work

    try:
        return asyncio.get_running_loop().create_task(quietly())
    except RuntimeError:
        if asyncio.iscoroutine(work):
            work.close()
        return None
