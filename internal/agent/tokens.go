package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/vigil-ha/vigil/internal/httpapi"
	"github.com/vigil-ha/vigil/internal/model"
)

// TokenByHash finds a live replicated token in this node's copy of the log
// (httpapi.TokenBackend). A token created or revoked elsewhere counts here once
// the event is applied here, a few milliseconds later.
func (a *Agent) TokenByHash(hash string) (model.TokenInfo, bool) {
	return a.store.ClusterState().TokenByHash(hash)
}

// Tokens lists the live replicated tokens (httpapi.TokenBackend).
func (a *Agent) Tokens() []model.TokenInfo {
	st := a.store.ClusterState()
	out := make([]model.TokenInfo, 0, len(st.Tokens))
	for _, t := range st.Tokens {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// tokenApplyWait bounds how long a token request waits for its event to be
// applied on this node, so that the caller may use the answer at once.
const tokenApplyWait = 5 * time.Second

// CreateToken records a token_created event (httpapi.TokenBackend). The state
// keeps the first creation of a name, so after shipping it waits to see its own
// hash under the name: another admin may have won a race for it.
func (a *Agent) CreateToken(ctx context.Context, by string, t model.TokenInfo) (model.Event, error) {
	if _, taken := a.store.ClusterState().Tokens[t.Name]; taken {
		return model.Event{}, &httpapi.Error{Code: http.StatusConflict, Message: fmt.Sprintf("a token named %s exists: revoke it first", t.Name), Field: "name"}
	}
	ev := model.Event{Time: time.Now(), Kind: model.EventTokenCreated, Severity: model.SeverityWarning, Reporter: a.self.Name,
		By: by, Reason: fmt.Sprintf("token %s created with role %s", t.Name, t.Role), Token: &t}
	err := a.recordToken(ctx, ev, func(live map[string]model.TokenInfo) (bool, error) {
		got, ok := live[t.Name]
		switch {
		case !ok:
			return false, nil
		case got.Hash != t.Hash:
			return true, &httpapi.Error{Code: http.StatusConflict, Message: fmt.Sprintf("a token named %s was created meanwhile", t.Name), Field: "name"}
		}
		return true, nil
	})
	return ev, err
}

// RevokeToken records a token_revoked event (httpapi.TokenBackend) and returns
// once this node refuses the token.
func (a *Agent) RevokeToken(ctx context.Context, by, name, reason string) (model.Event, error) {
	t, ok := a.store.ClusterState().Tokens[name]
	if !ok {
		return model.Event{}, &httpapi.Error{Code: http.StatusNotFound, Message: fmt.Sprintf("no token named %s", name), Field: "name"}
	}
	if reason == "" {
		reason = "revoked"
	}
	ev := model.Event{Time: time.Now(), Kind: model.EventTokenRevoked, Severity: model.SeverityWarning, Reporter: a.self.Name,
		By: by, Reason: reason, Token: &model.TokenInfo{Name: name, Role: t.Role, Hash: t.Hash}}
	err := a.recordToken(ctx, ev, func(live map[string]model.TokenInfo) (bool, error) {
		cur, ok := live[name]
		return !ok || cur.Hash != t.Hash, nil
	})
	return ev, err
}

// recordToken ships ev and polls this node's state until done says it took effect.
func (a *Agent) recordToken(ctx context.Context, ev model.Event, done func(map[string]model.TokenInfo) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, tokenApplyWait)
	defer cancel()
	if err := a.ship(ctx, []model.Event{ev}); err != nil {
		return &httpapi.Error{Code: http.StatusServiceUnavailable, Message: "not recorded (no coordinator reachable?): " + err.Error()}
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if ok, err := done(a.store.ClusterState().Tokens); ok {
			return err
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return &httpapi.Error{Code: http.StatusServiceUnavailable, Message: "recorded, but not yet applied on this node; check with GET /v1/tokens"}
			}
			return fmt.Errorf("token: %w", ctx.Err())
		case <-tick.C:
		}
	}
}
