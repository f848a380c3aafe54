"""Report renderers, one module per format, registered through ``rempart.reports``."""
