"""Built-in features written as plugins, registered by :func:`profscope.plugins.get_plugin_manager`
before any third-party plugin (see ``DEFAULT_PLUGINS``)."""
