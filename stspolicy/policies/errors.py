"""What the policy services refuse, with the HTTP status that says it best for pages and the API."""




from stspolicy.policies.models import Domain
from stspolicy.policies.rules import Policy


class DomainError(ValueError):
    """A request about hosted domains that cannot be done; `field` names the input at fault.

    `status` is the HTTP status that says it best, for the pages and the API.
    """

    status = 422

    def __init__(self, message: str, field: str = "domain"):
        super().__init__(message)
        self.field = field
        self.message = message


class DomainNotFound(DomainError):
    status = 404


class DomainExists(DomainError):
    status = 409


class EnforceNotConfirmed(DomainError):
    """A switch to enforce that the caller did not confirm; nothing was changed."""

    status = 409

    def __init__(self, domain: Domain, current_mode: str, policy: Policy):
        super().__init__(f"{domain.name} runs mode {current_mode}: confirm the switch to enforce, with which "
                         "senders defer mail to any MX host that fails", field="mode")
        self.domain, self.policy = domain, policy
