"""Azure Functions blueprints: parse the binding, call a service in ``shared``, return."""
