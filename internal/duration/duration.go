package duration

import (
	"fmt"
	"time"
)

// Duration is a time.Duration written as "200ms", "2s". It lives in its own package
// so that packages the config embeds (workflow definitions) can use it without
// importing the config.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// BadValueError is returned for a value that does not parse. The YAML library does
// not attach a position to errors from text unmarshalers, so it carries the
// offending text for the config loader to find in the document.
type BadValueError struct {
	Value string
	Msg   string
}

func (e *BadValueError) Error() string { return e.Msg }

// UnmarshalText accepts Go duration strings; bare numbers are refused because
// Heartbeat's ha.cf meant seconds and YAML users might mean milliseconds.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return &BadValueError{Value: string(b), Msg: fmt.Sprintf(`invalid duration %q: use a unit, e.g. "200ms" or "2s"`, string(b))}
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration back in Go's notation.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }
