package drill

import (
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
)

// Schedule says when a scheduled drill is due, in the five-field cron syntax
// sysadmins already write in crontab ("0 3 * * 0": Sundays at 03:00).
type Schedule struct {
	spec string
	s    cron.Schedule
}

// ParseSchedule parses a five-field cron expression (or @daily, @weekly, ...).
func ParseSchedule(spec string) (Schedule, error) {
	s, err := cron.ParseStandard(spec)
	if err != nil {
		return Schedule{}, fmt.Errorf("schedule %q: %w", spec, err)
	}
	return Schedule{spec: spec, s: s}, nil
}

func (s Schedule) String() string { return s.spec }

// NextDue is when the next scheduled drill is due: the first slot after both
// the last scheduled drill's start and the time this coordinator took over.
// Counting from the takeover means a new coordinator never replays slots it
// did not witness (a drill moves production services: skipping one is better
// than running one at a surprising time), and counting from the last start
// means a slot already drilled is never drilled twice.
func (s Schedule) NextDue(lastStart, coordinatingSince time.Time) time.Time {
	base := coordinatingSince
	if lastStart.After(base) {
		base = lastStart
	}
	return s.s.Next(base)
}
