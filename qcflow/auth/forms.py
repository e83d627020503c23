"""HTML forms of the auth pages (shape only; rules live in services)."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, IntegerField, PasswordField, StringField
from wtforms.validators import AnyOf, DataRequired, Length, NumberRange


class LoginForm(FlaskForm):
    username = StringField(_l("User name"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=128)])


class PasswordForm(FlaskForm):
    current_password = PasswordField(_l("Current password"), validators=[DataRequired()])
    new_password = PasswordField(_l("New password"), validators=[DataRequired(), Length(min=8, max=128)])


class LanguageForm(FlaskForm):
    #: Rendered as radio buttons in the template (WTForms' RadioField tuples are deprecated).
    locale = StringField(_l("Language"), validators=[DataRequired(), AnyOf(["zh", "en"])])


#: A one-time-code field phones fill from the authenticator (or from SMS-style autofill) with a digit pad.
CODE_FIELD_ATTRIBUTES = {"autocomplete": "one-time-code", "inputmode": "numeric", "pattern": "[0-9 ]*",
                         "maxlength": "8", "autocapitalize": "off", "spellcheck": "false"}


class SecondFactorForm(FlaskForm):
    code = StringField(_l("6-digit code"), validators=[DataRequired(), Length(max=8)],
                       render_kw=CODE_FIELD_ATTRIBUTES)


class EnrolForm(SecondFactorForm):
    #: The new secret, signed by the server (qcflow.auth.views), so the browser cannot choose it.
    enrolment = HiddenField(validators=[DataRequired()])


class TokenForm(FlaskForm):
    username = StringField(_l("User name"), validators=[DataRequired(), Length(max=64)])
    name = StringField(_l("What the token is for"), validators=[DataRequired(), Length(max=100)])
    days = IntegerField(_l("Valid for (days)"), validators=[DataRequired(), NumberRange(min=1, max=3650)])
