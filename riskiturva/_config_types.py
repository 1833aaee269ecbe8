"""Building blocks of the configuration models, shared by `riskiturva.config` and the
tables it is made of elsewhere (`riskiturva.alerts.settings`): the strict base model,
paths that resolve against the configuration file's folder, checked CA files and e-mail
addresses."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo


class ConfigModel(BaseModel):
    """Unknown keys are errors, values are frozen, numbers are finite."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _base_folder(info: ValidationInfo) -> Path | None:
    context = info.context if isinstance(info.context, Mapping) else {}
    base = context.get("base")
    return Path(base) if base is not None else None


def resolved(path: Path, info: ValidationInfo) -> Path:
    """A relative path resolves against the configuration file's folder."""
    base = _base_folder(info)
    path = path.expanduser()
    if base is not None and not path.is_absolute():
        path = base / path
    return path.resolve() if base is not None else path


def _ca_file(path: Path, info: ValidationInfo) -> Path:
    from riskiturva.trust_files import read_ca_certificates

    path = resolved(path, info)
    read_ca_certificates(path)
    return path


def _email(value: str) -> str:
    import email_validator

    try:
        # Syntax only, never a DNS lookup; `.test` names are allowed for the lab.
        checked = email_validator.validate_email(
            value, check_deliverability=False, test_environment=True
        )
    except email_validator.EmailNotValidError as exc:
        raise ValueError(f"not an e-mail address: {exc}") from exc
    return checked.normalized


CACertificateFile = Annotated[Path, AfterValidator(_ca_file)]
EmailAddress = Annotated[str, AfterValidator(_email)]
