"""BPMN diagrams: safe loading, validation, the expression sandbox, the spec cache, workflow state as JSON."""
