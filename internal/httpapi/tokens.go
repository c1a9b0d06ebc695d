package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"sort"

	"github.com/vigil-ha/vigil/internal/model"
	"github.com/vigil-ha/vigil/internal/pki"
)

// TokenBackend keeps the replicated API tokens. It only ever sees a token's hash:
// the secret is made here and shown once, in the answer to its creation.
type TokenBackend interface {
	// TokenByHash finds a live replicated token by the hex SHA-256 of its secret.
	TokenByHash(hash string) (model.TokenInfo, bool)
	// Tokens lists the live replicated tokens.
	Tokens() []model.TokenInfo
	// CreateToken records a token_created event for t (name, role, hash) and
	// returns once this node applied it; a name already live is an *Error (409).
	CreateToken(ctx context.Context, by string, t model.TokenInfo) (model.Event, error)
	// RevokeToken records a token_revoked event; an unknown name is an *Error (404).
	RevokeToken(ctx context.Context, by, name, reason string) (model.Event, error)
}

// TokenRevokeRequest is the optional body of DELETE /v1/tokens/{name}.
type TokenRevokeRequest struct {
	Reason string `json:"reason,omitempty"`
}

const maxTokenName = 64

func (s *server) tokenRoutes(mux *routeMux) {
	mux.Handle("GET /v1/whoami", s.auth(roleViewer, s.whoami))
	mux.Handle("GET /v1/tokens", s.auth(roleAdmin, s.listTokens))
	mux.Handle("POST /v1/tokens", s.auth(roleAdmin, s.createToken))
	mux.Handle("DELETE /v1/tokens/{name}", s.auth(roleAdmin, s.revokeToken))
}

func (s *server) whoami(w http.ResponseWriter, r *http.Request, _ string) (any, error) {
	id := identityOf(r)
	return model.Identity{Name: id.Name, Role: id.Role, Node: id.Node}, nil
}

func (s *server) listTokens(w http.ResponseWriter, r *http.Request, _ string) (any, error) {
	out := []model.TokenInfo{{Name: model.BootstrapTokenName, Role: model.TokenAdmin, By: "vigil init (operator.token)"}}
	ts := s.b.Tokens()
	sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
	for _, t := range ts {
		t.Hash = "" // not secret, but nobody needs it to manage tokens
		out = append(out, t)
	}
	return out, nil
}

// validTokenName keeps names short and printable in a shell, a log line and a
// URL path: letters, digits and . _ - @, starting with a letter or digit.
func validTokenName(name string) bool {
	if name == "" || len(name) > maxTokenName {
		return false
	}
	for i, c := range name {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-' && c != '@') {
			return false
		}
	}
	return true
}

func (s *server) createToken(w http.ResponseWriter, r *http.Request, who string) (any, error) {
	var req model.TokenCreateRequest
	if err := decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	switch {
	case !validTokenName(req.Name):
		return nil, &Error{Code: http.StatusBadRequest, Field: "name",
			Message: fmt.Sprintf("name: 1 to %d letters, digits, '.', '_', '-' or '@', starting with a letter or digit", maxTokenName)}
	case req.Name == model.BootstrapTokenName:
		return nil, &Error{Code: http.StatusConflict, Field: "name", Message: "operator is the bootstrap token (operator.token); choose another name"}
	case s.b.IsNode(req.Name):
		// Events name nodes and tokens in the same fields (reporter, by): keep them apart.
		return nil, &Error{Code: http.StatusBadRequest, Field: "name", Message: fmt.Sprintf("%s is a node's name; choose another", req.Name)}
	case req.Role.Rank() == 0:
		return nil, &Error{Code: http.StatusBadRequest, Field: "role", Message: "role: viewer, operator or admin"}
	}
	secret, err := pki.NewToken()
	if err != nil {
		return nil, fmt.Errorf("new token: %w", err)
	}
	info := model.TokenInfo{Name: req.Name, Role: req.Role, Hash: TokenHash(secret)}
	ev, err := s.b.CreateToken(r.Context(), who, info)
	if err != nil {
		return nil, err
	}
	info.Hash, info.Created, info.By = "", ev.Time, who
	writeJSON(w, http.StatusCreated, model.TokenCreated{TokenInfo: info, Token: secret})
	return nil, nil
}

func (s *server) revokeToken(w http.ResponseWriter, r *http.Request, who string) (any, error) {
	var req TokenRevokeRequest
	if err := decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	name := r.PathValue("name")
	if name == model.BootstrapTokenName {
		return nil, &Error{Code: http.StatusConflict, Field: "name",
			Message: "operator is the bootstrap token: replace operator.token on every node to change it"}
	}
	return s.b.RevokeToken(r.Context(), who, name, req.Reason)
}
