"""Tools around experiments: `doclab report`, `doclab sweep`, `doclab deps`."""
