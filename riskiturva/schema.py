"""The whole schema: every module of tables imported, for migrations and their test.

`metadata` is what Alembic compares the database with (`riskiturva/migrations/env.py`).
"""

from __future__ import annotations

from riskiturva import models, models_auth, models_schedule
from riskiturva.alerts import models as alert_models
from riskiturva.intel import models as intel_models
from riskiturva.orm import Base
from riskiturva.reports import models as report_models

metadata = Base.metadata
TABLE_MODULES = (models, models_auth, models_schedule, alert_models, intel_models, report_models)

__all__ = ["TABLE_MODULES", "metadata"]
