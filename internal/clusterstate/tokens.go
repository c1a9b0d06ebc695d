package clusterstate

import (
	"crypto/subtle"

	"github.com/vigil-ha/vigil/internal/model"
)

// applyToken folds token_created and token_revoked into the live tokens. The
// first creation of a name wins: two admins racing for one name on different
// nodes both reach the log, and every replica must keep the same one (the API
// tells the loser by reading its hash back).
func (s *State) applyToken(ev model.Event) {
	if ev.Token == nil || ev.Token.Name == "" {
		return
	}
	if s.Tokens == nil {
		s.Tokens = map[string]model.TokenInfo{}
	}
	switch ev.Kind {
	case model.EventTokenCreated:
		if _, taken := s.Tokens[ev.Token.Name]; taken || ev.Token.Hash == "" {
			return
		}
		t := *ev.Token
		t.Created, t.By = ev.Time, ev.By
		s.Tokens[t.Name] = t
	case model.EventTokenRevoked:
		delete(s.Tokens, ev.Token.Name)
	}
}

// TokenByHash finds the live token whose secret hashes to hash (hex SHA-256).
// It compares every entry in constant time, so how long it takes says nothing
// about which prefix matched.
func (s *State) TokenByHash(hash string) (model.TokenInfo, bool) {
	var found model.TokenInfo
	ok := false
	for _, t := range s.Tokens {
		if len(t.Hash) == len(hash) && subtle.ConstantTimeCompare([]byte(t.Hash), []byte(hash)) == 1 {
			found, ok = t, true
		}
	}
	return found, ok
}
