"""Workflow spec: pydantic models, YAML loading with source positions, references, templates."""
