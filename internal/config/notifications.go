package config

// validateNotifications places the notifications section's problems (its rules
// live in package notify, next to the code that relies on them) at their lines.
func (c *Config) validateNotifications(l locator) []Problem {
	var ps []Problem
	for _, p := range c.Notifications.Validate("notifications") {
		ps = append(ps, l.problem(p.Field, "%s", p.Message))
	}
	return ps
}
