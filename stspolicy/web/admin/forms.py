"""Forms of the admin pages. Values are checked by the pure policy core, errors land beside their field."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    EmailField,
    FieldList,
    HiddenField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import EqualTo, InputRequired, Length, NumberRange, Optional, ValidationError

from stspolicy.accounts.models import GRANT_ROLES
from stspolicy.accounts.service import PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH
from stspolicy.dns.dane import PemError, load_certificates, load_public_key
from stspolicy.policies.names import InvalidName, normalize_domain
from stspolicy.policies.rules import MAX_AGE_LIMIT, MODES, PolicyError, normalize_mx_pattern
from stspolicy.web.locale import ROLE_NAMES

# (seconds, label): the usual choices; any other value 0..31557600 may be typed.
MAX_AGE_PRESETS = [
    (86400, _l("1 day")),
    (604800, _l("1 week")),
    (1209600, _l("2 weeks")),
    (2592000, _l("30 days")),
    (15768000, _l("6 months")),
    (MAX_AGE_LIMIT, _l("1 year (the maximum)")),
]
MX_REMOVAL_CHOICES = ("schedule", "now")  # drop mx patterns once cached policies expire, or at once
BLANK_MX_ROWS = 2  # empty rows offered without JavaScript; blank rows are ignored
MAX_PEM_CHARACTERS = 16384  # a certificate with its chain is a few kilobytes
MAX_TLSA_TTL = 2**31 - 1
PRIVATE_KEY_MARK = "PRIVATE KEY-----"


def valid_mx_pattern(form, field) -> None:
    if field.data and field.data.strip():
        try:
            normalize_mx_pattern(field.data)
        except PolicyError as error:
            raise ValidationError(error.message) from None


class PolicyForm(FlaskForm):
    mode = RadioField(_l("Mode"), choices=[SelectChoice(mode) for mode in MODES], default="testing",
                      validators=[InputRequired()])
    mx = FieldList(StringField(_l("mx pattern"), validators=[Length(max=255), valid_mx_pattern]), "mx patterns")
    max_age = StringField(_l("max_age (seconds)"), default="604800", validators=[InputRequired(), Length(max=12)])
    # Set by the confirmation pages: a switch to enforce, and how to drop mx patterns.
    confirmed = HiddenField()
    mx_removal = HiddenField()

    def mx_patterns(self) -> list[str]:
        return [entry.data.strip() for entry in self.mx.entries if entry.data and entry.data.strip()]

    def offer_blank_rows(self) -> None:
        """Leave a few empty rows to type into (JavaScript adds more on demand)."""
        while len(self.mx.entries) < len(self.mx_patterns()) + BLANK_MX_ROWS:
            self.mx.append_entry("")

    def add_error(self, field: str, message: str) -> None:
        """An error from the service, shown beside the field it names (the first mx row for `mx`)."""
        target = {"domain": "name", "policy": "mode"}.get(field, field)
        if target == "mx":
            self.offer_blank_rows()
            row = next((entry for entry in self.mx.entries if entry.data and entry.data.strip()), self.mx.entries[0])
            row.errors = [*row.errors, message]
        elif target in self:
            self[target].errors = [*self[target].errors, message]
        else:
            self.form_errors.append(message)


class DomainForm(PolicyForm):
    name = StringField(_l("Domain"), validators=[InputRequired(), Length(max=253)])


class GrantForm(FlaskForm):
    """Access for an account by e-mail; an unknown address is invited as a member."""

    email = EmailField(_l("E-mail of the member"), validators=[InputRequired(), Length(max=254)])
    role = SelectField(_l("Access"), choices=[SelectChoice(role, ROLE_NAMES[role]) for role in GRANT_ROLES],
                       default="viewer")


class InviteForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[InputRequired(), Length(max=254)])
    role = RadioField(_l("Role"), choices=[SelectChoice("member", _l("member: sees the domains given to it")),
                                       SelectChoice("admin", _l("admin: sees and manages everything"))],
                      default="member", validators=[InputRequired()])


class AccountGrantForm(FlaskForm):
    """Access for one account to a domain chosen from the hosted ones."""

    domain = SelectField(_l("Domain"), validators=[InputRequired()])
    role = SelectField(_l("Access"), choices=[SelectChoice(role, ROLE_NAMES[role]) for role in GRANT_ROLES],
                       default="viewer")


PASSWORD_HINT = _l("At least %(num)d characters; a few unrelated words are easy to type and hard to guess.",
                   num=PASSWORD_MIN_LENGTH)


def _new_password_fields():
    length = f"The password needs {PASSWORD_MIN_LENGTH} to {PASSWORD_MAX_LENGTH} characters."
    new = PasswordField(_l("New password"), validators=[
        InputRequired(), Length(min=PASSWORD_MIN_LENGTH, max=PASSWORD_MAX_LENGTH, message=length)])
    repeat = PasswordField(_l("New password again"), validators=[
        InputRequired(), EqualTo("password", message=_l("The two passwords differ."))])
    return new, repeat


class SetPasswordForm(FlaskForm):
    """The page a password link opens."""

    password, repeat = _new_password_fields()


class ChangePasswordForm(FlaskForm):
    current = PasswordField(_l("Current password"), validators=[InputRequired(), Length(max=PASSWORD_MAX_LENGTH)])
    password, repeat = _new_password_fields()


class LanguageForm(FlaskForm):
    """The language of one's own pages; each language is named in itself."""

    language = SelectField(_l("Language of these pages"), choices=[
        SelectChoice("", _l("The one the browser asks for")), SelectChoice("en", "English"),
        SelectChoice("fr", "Français")])


class PublishModeForm(FlaskForm):
    """`flask dns mode` as a form: how the domain's `_mta-sts` record is published."""

    mode = RadioField(_l("How the _mta-sts record is published"), choices=[
        SelectChoice("manual", _l("manual: the domain's owner publishes every new id")),
        SelectChoice("rfc2136", _l("rfc2136: this service writes it into the owner's zone (dynamic update)")),
        SelectChoice("delegated", _l("delegated: the owner points _mta-sts at this service's zone, once")),
    ], validators=[InputRequired()])
    server = StringField(_l("Primary server (rfc2136), address[:port]"), validators=[Optional(), Length(max=261)])
    zone = StringField(_l("Zone that holds _mta-sts (rfc2136)"), validators=[Optional(), Length(max=253)])
    key = StringField(_l("TSIG key name from DNS_TSIG_KEYS (rfc2136)"), validators=[Optional(), Length(max=253)])


class TokenForm(FlaskForm):
    name = StringField(_l("What the token is for"), validators=[InputRequired(), Length(max=100)])


class RemoveForm(FlaskForm):
    force = BooleanField(_l("Delete at once, without waiting for cached policies to expire"))


def no_private_key(form, field) -> None:
    if field.data and PRIVATE_KEY_MARK in field.data:
        raise ValidationError("This is a private key: paste the certificate or the public key "
                              "(openssl pkey -in key.pem -pubout). A private key never belongs in a web form.")


def _pem_text(limit_name: str):
    return [Length(max=MAX_PEM_CHARACTERS, message=f"{limit_name} is longer than {MAX_PEM_CHARACTERS} characters: "
                   "paste the PEM text only"), no_private_key]


class TlsaForm(FlaskForm):
    """`flask tlsa generate` and `flask tlsa rollover` as one form; public material only."""

    certificate = TextAreaField(_l("Server certificate (PEM)"),
                                validators=[InputRequired(), *_pem_text("The certificate")])
    chain = TextAreaField(_l("Issuer certificate (PEM, optional)"), validators=[Optional(), *_pem_text("The chain")])
    next_key = TextAreaField(_l("Next certificate or public key (PEM, optional)"),
                             validators=[Optional(), *_pem_text("The next key")])
    mx = StringField(_l("MX host (optional)"), validators=[Optional(), Length(max=253)])
    ttl = IntegerField(_l("TTL of the TLSA records in seconds (optional)"),
                       validators=[Optional(), NumberRange(0, MAX_TLSA_TTL)])
    published = DateTimeLocalField(_l("Next record published at, UTC (optional)"), validators=[Optional()])
    deployed = DateTimeLocalField(_l("Next certificate deployed at, UTC (optional)"), validators=[Optional()])

    # What the validators below parse; an empty optional field leaves its default.
    certificates: tuple = ()
    chain_certificates: tuple = ()
    next_public_key = None
    mx_host: str | None = None

    def drop_private_keys(self) -> None:
        """A refused private key is not sent back to the browser in the re-shown form."""
        for field in (self.certificate, self.chain, self.next_key):
            if field.data and PRIVATE_KEY_MARK in field.data:
                field.data = ""

    # Each runs after the field's own validators; a field already in error is not parsed.
    def validate_certificate(self, field) -> None:
        self.certificates = tuple(_parse(load_certificates, field) or ())

    def validate_chain(self, field) -> None:
        self.chain_certificates = tuple(_parse(load_certificates, field) or ())

    def validate_next_key(self, field) -> None:
        self.next_public_key = _parse(load_public_key, field)

    def validate_mx(self, field) -> None:
        try:
            self.mx_host = normalize_domain(field.data)
        except InvalidName as error:
            raise ValidationError(str(error)) from None


def _parse(load, field):
    if field.errors:
        return None
    try:
        return load(field.data.strip().encode("ascii", "replace"))
    except PemError as error:
        raise ValidationError(f"Found {error}.") from None
