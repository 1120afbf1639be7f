"""What every `flask ...` command group shares: our errors as one line and a non-zero exit."""

import click
from sqlalchemy.exc import DataError

from stspolicy.accounts.service import AccountError
from stspolicy.certificates.errors import CertificateError
from stspolicy.dns.rfc2136 import PublishError
from stspolicy.extensions import DATABASE_UNAVAILABLE
from stspolicy.policies.errors import DomainError
from stspolicy.policies.files import PolicyFileError
from stspolicy.policies.rules import PolicyError


class CommandGroup(click.Group):
    """Turns our errors into one line on stderr and a non-zero exit."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (PolicyError, DomainError, PolicyFileError, CertificateError, AccountError) as error:
            raise click.ClickException(error.message) from None
        except PublishError as error:
            raise click.ClickException(str(error)) from None
        except DATABASE_UNAVAILABLE as error:
            raise click.ClickException(f"database unavailable: {getattr(error, 'orig', error)}") from None
        except DataError as error:
            raise click.ClickException(f"a value cannot be stored: {error.orig}") from None
