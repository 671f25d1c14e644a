"""keyward's Azure Functions app: creates the app and registers the blueprints. Nothing else."""

import azure.functions as func

from functions.admin_http import bp as admin_bp
from functions.dependents_sweep import bp as dependents_sweep_bp
from functions.health import bp as health_bp
from functions.key_events import bp as key_events_bp
from functions.retention import bp as retention_bp
from functions.rewrap_worker import bp as rewrap_worker_bp
from functions.sweep import bp as sweep_bp

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
for blueprint in (
    key_events_bp,
    rewrap_worker_bp,
    sweep_bp,
    dependents_sweep_bp,
    admin_bp,
    health_bp,
    retention_bp,
):
    app.register_functions(blueprint)
