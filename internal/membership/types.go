package membership

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/model"
)

// Epoch identifies one lease tenure of a node: its boot incarnation and a generation
// that grows every time the node loses or gives up its lease. A node never serves
// under an epoch again once it has left it, so "epoch E is over" is a permanent fact.
type Epoch struct {
	Incarnation uint64
	Gen         uint64
}

// Less orders epochs: incarnation first, then generation.
func (e Epoch) Less(o Epoch) bool {
	if e.Incarnation != o.Incarnation {
		return e.Incarnation < o.Incarnation
	}
	return e.Gen < o.Gen
}

// String is "incarnation.generation", the form events and the API use.
func (e Epoch) String() string {
	return strconv.FormatUint(e.Incarnation, 10) + "." + strconv.FormatUint(e.Gen, 10)
}

// ParseEpoch reads the String form.
func ParseEpoch(s string) (Epoch, error) {
	inc, gen, ok := strings.Cut(s, ".")
	if !ok {
		return Epoch{}, fmt.Errorf("epoch %q: want incarnation.generation", s)
	}
	i, err1 := strconv.ParseUint(inc, 10, 64)
	g, err2 := strconv.ParseUint(gen, 10, 64)
	if err1 != nil || err2 != nil {
		return Epoch{}, fmt.Errorf("epoch %q: want two unsigned integers", s)
	}
	return Epoch{Incarnation: i, Gen: g}, nil
}

// Member describes one voter (a witness is a voter that runs no groups).
type Member struct {
	Name    string
	Witness bool
	Links   int // number of addresses; link i pairs with the peer's link i
}

// Config is everything the engine needs; durations are on the local monotonic clock.
type Config struct {
	Self        string
	Incarnation uint64 // persisted boot counter, strictly greater at every start
	Members     []Member
	Keepalive   time.Duration
	Warntime    time.Duration
	Deadtime    time.Duration
	Initdead    time.Duration
	Lease       time.Duration // how long one quorum of acknowledgements keeps the lease
	// Refused restores the epochs this node had refused before a restart: a refusal is a
	// promise to the coordinator and must outlive the process (see docs/safety.md).
	Refused map[string]Epoch
}

// Input is an event fed to Engine.Step.
type Input interface{ isInput() }

// Tick tells the engine that time has passed; the shell sends it at NextWake.
type Tick struct{}

// Release makes the node give up its lease at once (e.g. it lost its public network).
type Release struct{ Reason string }

// Heartbeat is a validated heartbeat from a peer, received on a local link.
type Heartbeat struct {
	From        string
	Link        int
	Incarnation uint64
	Seq         uint64
	Lease       Epoch
	LeaseHeld   bool
	Peers       []PeerReport
}

func (Tick) isInput()      {}
func (Release) isInput()   {}
func (Heartbeat) isInput() {}

// PeerReport is what a sender says about one peer of its own: the last heartbeat it
// heard from it (the acknowledgement that renews that peer's lease) and its grant.
type PeerReport struct {
	Name           string
	AckIncarnation uint64
	AckSeq         uint64
	Grant          Epoch // the epoch granted (Granting) or refused (!Granting)
	Granting       bool
	State          model.NodeState
	LinksUp        uint8
}

// Action is something the shell must do, in order.
type Action interface{ isAction() }

// Send asks the shell to send this heartbeat to every peer over every link.
type Send struct {
	Incarnation uint64
	Seq         uint64
	Lease       Epoch
	LeaseHeld   bool
	Peers       []PeerReport
}

// Emit asks the shell to record an event in the cluster log. The shell stamps the
// wall-clock time and, when Link >= 0, names the link by Node's address on it.
type Emit struct {
	Event model.Event
	Link  int
}

// LeaseChanged reports the node's own lease after any change of its expiry.
// Until is on the local monotonic clock and is meaningful only when Held.
type LeaseChanged struct {
	Held  bool
	Epoch Epoch
	Until time.Duration
}

// PersistRefusals must be made durable before any later Send goes out.
type PersistRefusals struct{ Refused map[string]Epoch }

func (Send) isAction()            {}
func (Emit) isAction()            {}
func (LeaseChanged) isAction()    {}
func (PersistRefusals) isAction() {}
