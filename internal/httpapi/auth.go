package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"

	"github.com/vigil-ha/vigil/internal/model"
	"github.com/vigil-ha/vigil/internal/pki"
)

type handler func(w http.ResponseWriter, r *http.Request, who string) (any, error)

// identity is who made a request: a token (bootstrap or replicated) with its
// role, or a node by its certificate.
type identity struct {
	Name string
	Role model.TokenRole // tokens only
	Node bool
}

// may says whether the identity may call a route that needs the given role. A
// node may read and act as an operator may (remote steps, forwarding) and call
// the internal endpoints; tokens never reach those, and nodes never manage tokens.
func (id identity) may(need role) bool {
	if id.Node {
		return need == roleViewer || need == roleOperator || need == roleNode
	}
	switch need {
	case roleViewer:
		return id.Role.Rank() >= model.TokenViewer.Rank()
	case roleOperator:
		return id.Role.Rank() >= model.TokenOperator.Rank()
	case roleAdmin:
		return id.Role.Rank() >= model.TokenAdmin.Rank()
	}
	return false
}

func (r role) String() string {
	switch r {
	case roleViewer:
		return string(model.TokenViewer)
	case roleOperator:
		return string(model.TokenOperator)
	case roleAdmin:
		return string(model.TokenAdmin)
	case roleNode:
		return "node"
	}
	return "none"
}

type identityKey struct{}

// identityOf is the identity auth admitted for this request (zero outside auth).
func identityOf(r *http.Request) identity {
	id, _ := r.Context().Value(identityKey{}).(identity)
	return id
}

// authHandler is a route behind auth; routes.go reads need for the API description.
type authHandler struct {
	need role
	http.HandlerFunc
}

// auth admits tokens by role and nodes by certificate. No or unknown
// credentials (a revoked token included) are 401; known credentials without the
// role the route needs are 403.
func (s *server) auth(need role, h handler) http.Handler {
	return authHandler{need: need, HandlerFunc: func(w http.ResponseWriter, r *http.Request) {
		id, ok := s.identify(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="vigil"`)
			writeError(w, &Error{Code: http.StatusUnauthorized, Message: "missing or invalid credentials: send 'Authorization: Bearer <token>'"})
			return
		}
		if !id.may(need) {
			writeError(w, forbidden(id, need))
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), identityKey{}, id))
		v, err := h(w, r, id.Name)
		if err != nil {
			writeError(w, err)
			return
		}
		if v != nil {
			writeJSON(w, http.StatusOK, v)
		}
	}}
}

func forbidden(id identity, need role) *Error {
	switch {
	case need == roleNode:
		return &Error{Code: http.StatusForbidden, Message: "only cluster nodes may call this endpoint"}
	case id.Node:
		return &Error{Code: http.StatusForbidden, Message: fmt.Sprintf("node %s may not call this endpoint: it needs an %s token", id.Name, need)}
	}
	return &Error{Code: http.StatusForbidden, Message: fmt.Sprintf("token %s has role %s; this needs %s", id.Name, id.Role, need)}
}

// identify finds who sent the request: a node certificate first (peers send no
// token), then the bootstrap operator token, then the replicated tokens.
func (s *server) identify(r *http.Request) (identity, bool) {
	if r.TLS != nil {
		if name, ok := pki.PeerName(*r.TLS); ok && s.b.IsNode(name) {
			return identity{Name: name, Node: true}, true
		}
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return identity{}, false
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return identity{}, false
	}
	if pki.TokenEqual(tok, s.token) {
		return identity{Name: model.BootstrapTokenName, Role: model.TokenAdmin}, true
	}
	if t, ok := s.b.TokenByHash(TokenHash(tok)); ok && t.Role.Rank() > 0 {
		return identity{Name: t.Name, Role: t.Role}, true
	}
	return identity{}, false
}

// TokenHash is what the log keeps of a token: the hex SHA-256 of its secret. The
// secrets are 256 random bits, so a plain hash cannot be reversed by guessing.
func TokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
