"""Configuration defaults. Override in instance/config.py or with QCFLOW_* environment variables."""
from __future__ import annotations

import os

DEFAULT_SECRET_KEY = "dev-only-not-secret"


class Config:
    #: "development" or "production"; production refuses a default SECRET_KEY or DEBUG.
    ENV = "development"
    SECRET_KEY = DEFAULT_SECRET_KEY
    #: qcflow remembers nobody ("remember me" is off), but Flask-Login reads a remember-me cookie
    #: before the bearer token: a name no other application sets, so a stray `remember_token` cookie
    #: on the same host cannot hide an API client's token.
    REMEMBER_COOKIE_NAME = "qcflow_remember_is_off"
    #: SQLAlchemy URL; None means instance/qcflow.sqlite3.
    DATABASE_URL = None
    TIMEZONE = "Asia/Shanghai"
    #: Hospital level for indicator targets: "tertiary" or "secondary".
    HOSPITAL_LEVEL = "tertiary"

    MAX_CONTENT_LENGTH = 1024 * 1024
    #: Attachments (qcflow/files): where their bytes are kept ("filesystem": under ATTACHMENT_DIR, default
    #: <instance>/attachments, outside the web root), the limits per file and per record (bytes, number of
    #: files), the most pixels an image may have, and the largest body a route that takes files accepts
    #: (every other route keeps MAX_CONTENT_LENGTH).
    #: What one request may cost (docs/decisions.md, "What one upload may cost"): an image may need at most
    #: ATTACHMENT_MAX_PIXELS decoded pixels (a JPEG is decoded at 1/2, 1/4 or 1/8 when its stored copy is smaller
    #: anyway, so a 48 MP photo costs 12 million; a PNG, GIF or WebP counts whole), is stored at most
    #: ATTACHMENT_MAX_SIDE pixels on its long side, the images of one request at most
    #: ATTACHMENT_MAX_PIXELS_PER_REQUEST decoded pixels together, and an anonymous report (with its receipt
    #: replies) at most ATTACHMENT_MAX_FILES_PER_ANONYMOUS_REPORT photos.
    ATTACHMENT_STORAGE = "filesystem"
    ATTACHMENT_DIR = None
    ATTACHMENT_MAX_BYTES = 10 * 1024 * 1024
    ATTACHMENT_MAX_BYTES_PER_RECORD = 50 * 1024 * 1024
    ATTACHMENT_MAX_FILES_PER_RECORD = 20
    ATTACHMENT_MAX_PIXELS = 25_000_000
    ATTACHMENT_MAX_SIDE = 4096
    ATTACHMENT_MAX_PIXELS_PER_REQUEST = 100_000_000
    ATTACHMENT_MAX_FILES_PER_ANONYMOUS_REPORT = 5
    UPLOAD_MAX_CONTENT_LENGTH = 41 * 1024 * 1024
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    #: SQLite: read the database through a 1 GiB memory map (core/db.py). The web workers set it
    #: (scripts/gunicorn.conf.py): their pages read scattered rows. Jobs and commands stream through
    #: large parts of the file, and mapped pages they read would count in their RSS.
    SQLITE_MMAP = False

    SESSION_COOKIE_NAME = "qcflow_session"
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False
    SESSION_IDLE_MINUTES = 30
    SESSION_ABSOLUTE_HOURS = 12
    #: Login throttling (N2, docs/decisions.md), one back-off per rule: [free failures, first wait in
    #: seconds, longest wait in seconds, window in minutes]. After the free failures within the window,
    #: each attempt waits first·2^k seconds (at most the longest) after the latest failure. "source":
    #: one account from one address, or from one known browser; "address": every account from one
    #: address; "account": one account from every address. Known browsers (a completed login of the
    #: account before) meet only their own "source" rule.
    LOGIN_THROTTLE = {"source": [5, 30, 900, 1440], "address": [30, 2, 120, 60], "account": [10, 2, 300, 1440]}
    #: Days a browser stays known to an account after a completed login (its mark is a signed cookie).
    LOGIN_KNOWN_BROWSER_DAYS = 90
    #: Request header holding the client address, set by the reverse proxy on the login routes only
    #: (deploy/nginx); None: the connection's address. Never set it without such a proxy.
    LOGIN_ADDRESS_HEADER = None
    #: Days an API token is valid unless `tokens create --days` (or the admin page) says otherwise.
    API_TOKEN_DAYS = 90
    #: Roles that must pass a second factor (TOTP) at every web login (N3): the quality office, the
    #: administrators and everyone who may export data; department heads download their department's
    #: CSV/XLSX exports (qcflow/reports/api.py). A user who has enrolled a second factor is asked for
    #: it whatever the roles.
    MFA_REQUIRED_ROLES = ("quality", "admin", "dept_head", "centre")
    #: Issuer shown next to the account in authenticator apps.
    TOTP_ISSUER = "qcflow"
    #: Minutes between a correct password and the second step before the password is asked again.
    MFA_PENDING_MINUTES = 5
    #: Per-user limits (uses, minutes) on exports (CSV/XLSX) and PDFs (Z6); at most a day's window.
    RATE_LIMITS = {"export": (30, 60), "pdf": (120, 60)}

    # CSRF is checked in one before_request hook (qcflow.core.web), not by Flask-WTF's default hook.
    WTF_CSRF_CHECK_DEFAULT = False
    WTF_CSRF_TIME_LIMIT = None

    BABEL_DEFAULT_LOCALE = "zh"
    BABEL_DEFAULT_TIMEZONE = "Asia/Shanghai"
    BABEL_TRANSLATION_DIRECTORIES = os.path.join(os.path.dirname(__file__), "translations")

    API_TITLE = "qcflow API"
    API_VERSION = "v1"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/api/v1"
    OPENAPI_JSON_PATH = "openapi.json"
    API_SPEC_OPTIONS = {"security": [{"bearerAuth": []}]}

    #: Case deadlines per grade / severity: "2h", "15d" (calendar days) or "3wd" (working days).
    EVENT_TRIAGE_DEADLINES = {"I": "2h", "II": "12h", "III": "3wd", "IV": "3wd"}
    EVENT_INVESTIGATION_DEADLINES = {"I": "30d", "II": "30d"}
    #: 《医疗质量安全事件报告暂行规定》: 特大 2 h, 重大 12 h, 一般 15 days from discovery.
    EVENT_EXTERNAL_REPORT_DEADLINES = {"extraordinary": "2h", "major": "12h", "general": "15d"}
    #: Escalation ladder after a breach: level 1 (owner) at once, level 2 (department head)
    #: and level 3 (quality office) after these many hours.
    EVENT_ESCALATION_AFTER_HOURS = {1: 0, 2: 24, 3: 72}
    #: Key for the receipt-code hash; defaults to one derived from SECRET_KEY. Changing it
    #: makes existing receipt codes unusable.
    RECEIPT_KEY = None
    #: Key of the audit chains' HMAC (QCFLOW_AUDIT_KEY; required in production). Kept outside the
    #: database, so a database administrator cannot re-hash the chain after an edit. Never change it
    #: on a running installation: entries already written stay sealed with the old key.
    AUDIT_KEY = None
    #: First main-chain entry sealed with AUDIT_KEY, on an installation whose chain began before the
    #: key was set (entries before it keep the plain hash).
    AUDIT_KEY_SINCE_SEQ = 1
    #: Append-only file the chains' heads are written to (scheduler job `audit.anchor`, `audit
    #: anchor`, `audit verify`) and that `audit verify` checks (QCFLOW_AUDIT_ANCHOR_FILE).
    AUDIT_ANCHOR_FILE = None
    #: Wrong receipt codes allowed per code prefix (its first 4 symbols) per 10 minutes, whoever
    #: sends them; then a wrong code of that prefix answers 429 (a right one never). Counted in
    #: memory under a daily rotating hash; nothing is stored.
    RECEIPT_WRONG_CODES_PER_PREFIX_10_MIN = 10
    #: Wrong receipt codes allowed per client address per 10 minutes, only where the address is
    #: known (see TRUSTED_PROXIES): behind the shipped nginx it never is, and no address is counted.
    RECEIPT_LOOKUPS_PER_10_MIN = 60
    #: Peers that are reverse proxies (gunicorn's forwarded_allow_ips default): a request from one
    #: of them has a known client address only if the proxy sent X-Forwarded-For (the shipped nginx
    #: blanks it). Any other peer is the client itself.
    TRUSTED_PROXIES = ("127.0.0.1", "::1")
    #: Hours an Idempotency-Key of an intake is remembered (a client's retries come within minutes);
    #: the housekeeping job deletes older ones.
    IDEMPOTENCY_KEY_HOURS = 24
    #: How many days back a user may date a fact recorded late (a paper report's submission, a
    #: discussion's signature, a call's completion); the quality office may go further.
    BACKDATE_MAX_DAYS = 7

    #: A pre-operative MDT must be signed at most this many days before the planned operation.
    MDT_VALIDITY_DAYS = 30
    #: MDT sign-off quorum per discussion kind ("default" for the others): at least
    #: `min_specialties` attending participants with distinct specialties from distinct
    #: departments, the `required` specialties among those attending.
    MDT_QUORUM = {
        "preop_level4": {"min_specialties": 3, "required": ["anaesthesia"]},
        "default": {"min_specialties": 2, "required": []},
    }
    #: The specialties a discussion of each kind invites, besides the operating surgeon (or, without an
    #: operation, a clinician of the discussion's department) and the quorum's required ones: what the
    #: case needs, even where signing does not require it (a cancer board without an oncologist).
    MDT_INVITED_SPECIALTIES = {
        "preop_level4": ["anaesthesia"],
        "cancer_board": ["oncology", "radiology", "pathology"],
        "perioperative_death": ["anaesthesia", "icu"],
        "death_case": ["icu"],
    }
    #: Remind the surgeon this many hours before a grade-4 operation without a signed MDT.
    MDT_REMINDER_HOURS = 72
    #: Days to hold a discussion, from the request (deaths: see DEATH_DISCUSSION_DEADLINE).
    MDT_DUE_DAYS = {"case_review": 7}
    #: The deadline of a death review (perioperative death, death case), from the death
    #: (QCFLOW_DEATH_DISCUSSION_DEADLINE): "7d" (seven days, the core-system rule) or "5wd" (by the end of
    #: the fifth working day after the day of death, Chinese calendar). The indicators count both.
    DEATH_DISCUSSION_DEADLINE = "7d"
    #: A disputed death (医疗纠纷) is discussed within this many hours of the death.
    MDT_DISPUTED_DUE_HOURS = 24
    #: A death this many calendar days (hospital time zone) after an operation, or during its
    #: admission, is perioperative: day 30 counts, day 31 does not.
    PERIOPERATIVE_DEATH_DAYS = 30
    #: Code of the department that organises perioperative death reviews (医务科); when it does
    #: not exist, the operating department does.
    MEDICAL_AFFAIRS_DEPARTMENT = "MED"

    #: Follow-up: tasks are generated this many days before they are due (at least the longest
    #: early tolerance of any protocol, so a window never opens before its task exists).
    FOLLOWUP_LOOKAHEAD_DAYS = 35
    #: A plan is lost to follow-up after this many consecutive unreachable calls.
    FOLLOWUP_LOST_AFTER_UNREACHABLE = 3
    #: Department code whose nurses follow up patients with no department on record (None: skip).
    FOLLOWUP_FALLBACK_DEPARTMENT = None
    #: Hospital level for indicator targets: "tertiary" (三级) or "secondary" (二级).
    HOSPITAL_LEVEL = "tertiary"
    #: The plan whose annex, targets and annual form the hospital reports to (QCFLOW_INDICATOR_PLAN): henan,
    #: yubei, shaoxing or guizhou (indicators/catalogue.py; docs/indicators.md, The catalogue).
    INDICATOR_PLAN = "henan"
    #: Reported indicator values of a month are due by this day of the next month (indicators.reporting.deadline).
    INDICATOR_REPORT_DEADLINE_DAY = 10
    #: Remind the reporting departments of what they still owe from this many days before that deadline.
    INDICATOR_REMINDER_DAYS = 3
    #: Days of January ("MM-DD") on which the quality office is told which of last year's values are still
    #: missing and whether the annual form was generated (job indicators.remind_annual_form).
    INDICATOR_FORM_REMINDER_DATES = ["01-05", "01-20"]
    #: The day ("MM-DD") the annual form is due at the province (Guizhou [000:117]: 31 January); reminders
    #: stop after it.
    INDICATOR_FORM_DUE = "01-31"
    #: Indicator ae_closure_on_time_rate: days from submission to close a case on time, by grade.
    EVENT_CLOSURE_DAYS = {"I": 30, "II": 30, "III": 30, "IV": 30}
    #: Hospital name on the monthly bulletin's cover.
    HOSPITAL_NAME = ""
    #: The address patients' and families' phones reach qcflow at, e.g. "https://qc.hospital.example.cn": the
    #: ward posters' QR codes open <base>/report/patient?d=<department code> (None: the address the poster page
    #: was opened at; docs/deploy.md).
    PUBLIC_REPORT_LINK_BASE = None
    #: Event analysis: counts below this are shown as "<k" below the hospital level (small cells).
    REPORT_SMALL_CELL_K = 5
    #: Under-reporting: a department with no report for this many weeks is flagged as silent.
    REPORT_SILENT_WEEKS = 4
    #: Warn the department this many hours before a day-surgery 24 h call's deadline if it is still open.
    FOLLOWUP_URGENT_WARN_HOURS = 4
    #: Patients answer their calls online (followup/invitations; docs/deploy.md §13). Nothing is sent while
    #: INVITATION_SENDERS is empty or INVITATION_LINK_BASE unset. Senders, the first one used (senders.py):
    #: {"channel": "sms", "url": …} (the SMS gateway's webhook), {"channel": "wechat", "url": …, "template_id": …}
    #: (the WeChat template-message service), {"channel": "email", "to": "{phone}@sms.example.cn"} (through SMTP_*).
    INVITATION_SENDERS = []
    #: The address of the patients' page as patients' phones reach it, e.g. "https://fu.hospital.example.cn".
    INVITATION_LINK_BASE = None
    #: Secret the gateway signs its delivery reports with (HMAC-SHA256 of the body, header X-Qcflow-Signature).
    INVITATION_REPORT_SECRET = None
    #: Reminders, hours after the invitation was sent, while nobody has answered and the window is open.
    INVITATION_REMINDER_HOURS = [48, 168]
    #: Minutes between retries of a message the gateway refused or did not answer; then the message is given up.
    INVITATION_RETRY_MINUTES = [5, 30, 120]
    #: What the patient confirms themselves with: "birth_year" or "id_last4" (the other when the record lacks it).
    INVITATION_SECOND_FACTOR = "birth_year"
    #: Wrong second factors in a row before the invitation refuses to check for INVITATION_LOCK_MINUTES.
    INVITATION_WRONG_FACTORS = 5
    INVITATION_LOCK_MINUTES = 30
    #: Wrong second factors in all after which the link is closed for good (the call goes back to the phone, the
    #: department's nurses are told).
    INVITATION_MAX_WRONG_FACTORS = 10
    #: The telephone number the patient's page gives for questions about the follow-up (the follow-up centre's or
    #: the switchboard's), e.g. "0851-12345678"; unset: the page says to call the department.
    FOLLOWUP_CONTACT_PHONE = None
    #: Minutes a patient who passed the second factor may answer before confirming again.
    INVITATION_PROOF_MINUTES = 60
    #: Links that lead nowhere, allowed per link prefix and per known client address per 10 minutes (then 429;
    #: counted in memory, as wrong receipt codes are).
    INVITATION_UNKNOWN_LINKS_PER_PREFIX_10_MIN = 10
    INVITATION_UNKNOWN_LINKS_PER_CLIENT_10_MIN = 60
    #: Minutes a nurse's follow-up phone call takes on average: the time answers online save (follow-up
    #: statistics, bulletin).
    FOLLOWUP_CALL_MINUTES = 8
    #: Plans per generator batch; each batch is one transaction (QCFLOW_GEN_BATCH).
    GEN_BATCH = 1000
    #: Generators the daily job runs side by side on PostgreSQL (QCFLOW_GEN_WORKERS); SQLite uses one.
    GEN_WORKERS = 2
    #: Queued HIS facts the trigger evaluator reads per transaction (QCFLOW_EXTRACTION_BATCH).
    EXTRACTION_BATCH = 500
    #: Test hook for the crash tests: the generator or trigger-evaluator process dies right after this many
    #: committed batches (QCFLOW_CRASH_AFTER_BATCHES). Never set it in production.
    CRASH_AFTER_BATCHES = None

    #: What this installation is (QCFLOW_INSTALLATION_ROLE): "hospital" (the default: a hospital's qcflow) or
    #: "centre" (a regional quality-control centre receiving hospitals' signed indicators; docs/region.md).
    INSTALLATION_ROLE = "hospital"
    #: The code the centre knows this hospital by (its registration code at the centre); required to send.
    HOSPITAL_CODE = None
    #: The centre this hospital sends to: its base URL (e.g. "https://qc.example.gov.cn") and its Ed25519 public
    #: key (base64, what `region keygen` printed at the centre); unset: nothing is sent.
    REGION_CENTRE_URL = None
    REGION_CENTRE_KEY = None
    #: This installation's Ed25519 private key (`flask --app wsgi qcflow region keygen` writes it; the file never
    #: leaves the server). None: instance/region-ed25519.pem.
    REGION_KEY_FILE = None
    #: First month sent to the centre ("YYYY-MM"); None: the months of the last 12 (never earlier months).
    REGION_SEND_FROM = None
    #: Minutes between attempts while the centre does not answer: the first retry after the first number, then the
    #: next; the last repeats.
    REGION_RETRY_MINUTES = [1, 5, 15, 60, 240, 720]
    REGION_TIMEOUT_SECONDS = 20
    #: Centre: hospitals that have not sent a month by this day of the next month are reminded (job
    #: region.remind_missing).
    REGION_DUE_DAY = 15

    #: Optional URL that receives a JSON POST for each notification, after commit.
    WEBHOOK_URL = None
    WEBHOOK_TIMEOUT_SECONDS = 5
    #: Optional e-mail for each notification, after commit (off while SMTP_HOST is unset).
    SMTP_HOST = None
    SMTP_PORT = 25
    SMTP_USER = None
    SMTP_PASSWORD = None
    SMTP_FROM = "qcflow@localhost"
    SMTP_STARTTLS = False
    SMTP_TIMEOUT_SECONDS = 10
    #: Users have no e-mail column yet: their address is built from the user name, e.g.
    #: "{username}@hospital.example" (None: no per-user mail).
    SMTP_RECIPIENT_TEMPLATE = None
    #: Fixed addresses that receive every notification (list, or comma-separated string).
    SMTP_TO = None
    #: Prefix that turns the notification's relative link into a full URL in the mail.
    SMTP_LINK_BASE = None

    #: How often an idle (non-leader) scheduler retries the leader lock.
    SCHEDULER_IDLE_RETRY_SECONDS = 30
