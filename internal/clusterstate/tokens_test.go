package clusterstate

import (
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/model"
)

func tokenEvent(i uint64, kind model.EventKind, name string, role model.TokenRole, hash string) model.Event {
	return model.Event{Index: i, Time: time.Unix(int64(i), 0), Kind: kind, By: "operator",
		Token: &model.TokenInfo{Name: name, Role: role, Hash: hash}}
}

func TestTokensProjection(t *testing.T) {
	s := New()
	s.Apply(tokenEvent(1, model.EventTokenCreated, "ro", model.TokenViewer, "aa"))
	s.Apply(tokenEvent(2, model.EventTokenCreated, "ops", model.TokenOperator, "bb"))
	// The first creation of a name wins; a racing second one changes nothing.
	s.Apply(tokenEvent(3, model.EventTokenCreated, "ro", model.TokenAdmin, "cc"))
	if got, ok := s.TokenByHash("aa"); !ok || got.Name != "ro" || got.Role != model.TokenViewer || got.By != "operator" || !got.Created.Equal(time.Unix(1, 0)) {
		t.Fatalf("ro: %+v %v", got, ok)
	}
	if _, ok := s.TokenByHash("cc"); ok {
		t.Fatal("the loser of a name race is live")
	}
	c := s.Clone()
	s.Apply(tokenEvent(4, model.EventTokenRevoked, "ro", "", ""))
	if _, ok := s.TokenByHash("aa"); ok {
		t.Fatal("revoked token still live")
	}
	if _, ok := c.TokenByHash("aa"); !ok {
		t.Fatal("a clone changed with the original")
	}
	if len(s.Tokens) != 1 || s.Tokens["ops"].Hash != "bb" {
		t.Fatalf("tokens: %+v", s.Tokens)
	}
	// Malformed events are ignored on every replica alike.
	s.Apply(model.Event{Index: 5, Kind: model.EventTokenCreated})
	s.Apply(tokenEvent(6, model.EventTokenCreated, "nohash", model.TokenViewer, ""))
	if len(s.Tokens) != 1 {
		t.Fatalf("malformed events changed the tokens: %+v", s.Tokens)
	}
	// A name revoked may be created again.
	s.Apply(tokenEvent(7, model.EventTokenCreated, "ro", model.TokenViewer, "dd"))
	if got, ok := s.TokenByHash("dd"); !ok || got.Name != "ro" {
		t.Fatalf("recreated: %+v %v", got, ok)
	}
}
