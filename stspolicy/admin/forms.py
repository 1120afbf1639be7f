"""Forms of the admin pages. Values are checked by the pure policy core, errors land beside their field."""

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    FieldList,
    HiddenField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
)
from wtforms.validators import InputRequired, Length, ValidationError

from ..models import GRANT_ROLES
from ..policy import MAX_AGE_LIMIT, MODES, PolicyError, normalize_mx_pattern

# (seconds, label): the usual choices; any other value 0..31557600 may be typed.
MAX_AGE_PRESETS = [
    (86400, "1 day"),
    (604800, "1 week"),
    (1209600, "2 weeks"),
    (2592000, "30 days"),
    (15768000, "6 months"),
    (MAX_AGE_LIMIT, "1 year (the maximum)"),
]
BLANK_MX_ROWS = 2  # empty rows offered without JavaScript; blank rows are ignored


def valid_mx_pattern(form, field) -> None:
    if field.data and field.data.strip():
        try:
            normalize_mx_pattern(field.data)
        except PolicyError as error:
            raise ValidationError(error.message) from None


class PolicyForm(FlaskForm):
    mode = RadioField("Mode", choices=[SelectChoice(mode) for mode in MODES], default="testing",
                      validators=[InputRequired()])
    mx = FieldList(StringField("mx pattern", validators=[Length(max=255), valid_mx_pattern]), "mx patterns")
    max_age = StringField("max_age (seconds)", default="604800", validators=[InputRequired(), Length(max=12)])
    # Set by the confirmation page when the change switches to enforce.
    confirmed = HiddenField()

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
    name = StringField("Domain", validators=[InputRequired(), Length(max=253)])


class GrantForm(FlaskForm):
    email = EmailField("E-mail of the member", validators=[InputRequired(), Length(max=254)])
    role = SelectField("Access", choices=[SelectChoice(role) for role in GRANT_ROLES], default="viewer")


class TokenForm(FlaskForm):
    name = StringField("What the token is for", validators=[InputRequired(), Length(max=100)])


class RemoveForm(FlaskForm):
    force = BooleanField("Delete at once, without waiting for cached policies to expire")

