"""Time: the one clock, business days, deadlines, timers, reminders and escalations, the scheduler."""
