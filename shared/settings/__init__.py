"""keyward's app settings: one typed, frozen object, validated once at start.

Every setting is listed once in ``SPECS`` (name, default, meaning); the README table and
``local.settings.example.json`` are checked against it by tests. A bad value fails start-up
with a ``SettingError`` that names the setting and says what is expected, rather than
failing later inside an SDK call.

No secrets live in settings. Production authenticates with managed identity through
``DefaultAzureCredential`` (``AZURE_CLIENT_ID`` picks a user-assigned identity), so:

* storage is reached through ``KEYWARD_STORAGE_ACCOUNT_URL`` or an identity-based connection
  (``<connection>__accountName`` or ``__blobServiceUri``/``__queueServiceUri``/
  ``__tableServiceUri``); a connection string holding ``AccountKey=`` or
  ``SharedAccessSignature=`` is refused, except for Azurite's published development account
  (``UseDevelopmentStorage=true`` or ``AccountName=devstoreaccount1``), whose key is public;
* any ``KEYWARD_*`` value that looks like a credential is refused outright;
* ARM and Event Grid endpoints must be Azure hosts (or loopback, for the local emulator), so a
  typo cannot send the identity's bearer token elsewhere.

``Ncrontab`` reads timer schedules (``KEYWARD_SWEEP_SCHEDULE``) the way Azure Functions does;
the local Functions host in ``devtools`` fires timers with it too.
"""

from shared.settings._ncrontab import Ncrontab
from shared.settings._settings import DependentScope, Settings, envelope_from_env
from shared.settings._specs import (
    FLEX_DEPRECATED_SETTINGS,
    HOST_SETTINGS,
    LOCAL_ONLY_HOST_SETTINGS,
    SECRET_SETTINGS,
    SPEC_BY_NAME,
    SPECS,
    TELEMETRY_CONNECTION_SETTING,
    WORKER_TELEMETRY_DEFAULTS,
    WORKER_TELEMETRY_SETTING,
    SettingSpec,
    render_settings_table,
)
from shared.settings._storage import StorageTarget
from shared.settings._values import PUBLIC_ARM_ENDPOINT, PUBLIC_LOGIN_AUTHORITY

__all__ = [
    "envelope_from_env",
    "HOST_SETTINGS",
    "SECRET_SETTINGS",
    "TELEMETRY_CONNECTION_SETTING",
    "WORKER_TELEMETRY_DEFAULTS",
    "WORKER_TELEMETRY_SETTING",
    "LOCAL_ONLY_HOST_SETTINGS",
    "FLEX_DEPRECATED_SETTINGS",
    "PUBLIC_ARM_ENDPOINT",
    "PUBLIC_LOGIN_AUTHORITY",
    "Ncrontab",
    "SPECS",
    "SPEC_BY_NAME",
    "DependentScope",
    "SettingSpec",
    "Settings",
    "StorageTarget",
    "render_settings_table",
]
