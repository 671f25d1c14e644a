"""keyward's Azure Functions app: creates the app and registers the blueprints. Nothing else."""

import azure.functions as func

from functions.health import bp as health_bp

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(health_bp)
