"""civicflow's engine: persisted BPMN procedures, with no web code below this line."""
