package notify

import (
	"time"

	"github.com/vigil-ha/vigil/internal/model"
)

// Which node sends. Every node applies every committed event, so if each one
// dispatched, a three-node cluster would page three times. Only the coordinator
// (the raft leader) dispatches. What a previous coordinator already handed to its
// spool is not in the replicated log (recording it there would cost a raft entry
// per notification), so a new coordinator cannot know exactly where its
// predecessor stopped. It knows two things:
//
//   - its own last dispatched index, from its own spool (from when it last led);
//   - that a live predecessor spools an event within moments of its commit, so only
//     events committed shortly before the election can have been missed.
//
// It therefore replays the last ReplayWindow events committed before it took
// over, but only those younger than ReplayAge, and never any it dispatched itself.
// A leader change can thus repeat a few recent notifications (at-least-once);
// receivers that care deduplicate on the event index, which is the same on every
// node (the payload's id). Events committed after the election are all dispatched.

// Resume bounds, see PlanResume.
const (
	ReplayWindow = 100
	ReplayAge    = 2 * time.Minute
)

// Resume says which committed events a node that has just become coordinator dispatches.
type Resume struct {
	// After: events with Index <= After are not dispatched.
	After uint64
	// Committed is the last index applied when the node took over; events up to it
	// were the predecessor's and are replayed only if not older than NotBefore.
	Committed uint64
	NotBefore time.Time
}

// PlanResume computes where a new coordinator starts. ownLast is the last index
// this node dispatched (its spool's), committed the last index applied after its
// election barrier, electedAt when it took over.
func PlanResume(ownLast, committed uint64, electedAt time.Time) Resume {
	if ownLast > committed {
		// Committed entries never go away, so the log was recreated (a new cluster
		// on an old data directory): this node's progress belongs to another log.
		ownLast = 0
	}
	floor := uint64(0)
	if committed > ReplayWindow {
		floor = committed - ReplayWindow
	}
	return Resume{After: max(ownLast, floor), Committed: committed, NotBefore: electedAt.Add(-ReplayAge)}
}

// Dispatch reports whether ev should be dispatched by the new coordinator.
func (r Resume) Dispatch(ev model.Event) bool {
	if ev.Index <= r.After {
		return false
	}
	if ev.Index > r.Committed {
		return true
	}
	// Event times come from the reporter's clock; ReplayAge is far above any sane skew.
	return !ev.Time.Before(r.NotBefore)
}
