"""The collector's options (`[settings.collectors.tls]`), validated at the edge."""

from __future__ import annotations

from pydantic import Field

from riskiturva.config import CollectorOptions


class TLSOptions(CollectorOptions):
    """How long sslyze waits on an endpoint, and how often it tries again."""

    network_timeout: float | None = Field(
        None,
        gt=0,
        le=120,
        description="seconds to wait for a connection or an answer, per connection (sslyze"
        " rounds up to whole seconds); default: settings.timeouts.connect",
    )
    max_retries: int = Field(
        2, ge=0, le=10, description="further attempts after a connection timed out"
    )
