package finding

// Problem is one thing wrong (or, with Warning, suspicious) in a definition.
// Field is a path the config loader can locate, e.g. groups[0].checks[1].url
// or workflows[0].steps[2].on.3.
type Problem struct {
	Field   string
	Message string
	// Warning marks definitions that work but probably not as meant; the
	// config loader reports them and still loads.
	Warning bool
}

func (p Problem) Error() string {
	if p.Warning {
		return p.Field + ": warning: " + p.Message
	}
	return p.Field + ": " + p.Message
}

// Errors keeps the problems that are not warnings.
func Errors(ps []Problem) []Problem {
	var out []Problem
	for _, p := range ps {
		if !p.Warning {
			out = append(out, p)
		}
	}
	return out
}
