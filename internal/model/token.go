package model

import "time"

// Token life cycle. The log keeps the SHA-256 of a token's secret, never the
// secret: whoever reads the log (every viewer) cannot act with it.
const (
	EventTokenCreated EventKind = "token_created"
	EventTokenRevoked EventKind = "token_revoked"
)

// TokenRole is what an API token may do. Each role may do what the ones before
// it may: a viewer reads, an operator also acts (move, failback, flags,
// maintenance, workflows), an admin also manages tokens.
type TokenRole string

const (
	TokenViewer   TokenRole = "viewer"
	TokenOperator TokenRole = "operator"
	TokenAdmin    TokenRole = "admin"
)

// Rank orders roles (0 for an unknown one), so "at least operator" is a comparison.
func (r TokenRole) Rank() int {
	switch r {
	case TokenViewer:
		return 1
	case TokenOperator:
		return 2
	case TokenAdmin:
		return 3
	}
	return 0
}

// BootstrapTokenName names the operator.token written by vigil init: always an
// admin, never stored in the log, so no replicated token may take the name.
const BootstrapTokenName = "operator"

// TokenInfo describes one API token: in token events (with Hash) and in
// GET /v1/tokens (without).
type TokenInfo struct {
	Name string    `json:"name"`
	Role TokenRole `json:"role"`
	// Hash is the hex SHA-256 of the secret.
	Hash    string    `json:"hash,omitempty"`
	Created time.Time `json:"created,omitzero"`
	// By names the token that created this one.
	By string `json:"by,omitempty"`
}

// TokenCreateRequest is the body of POST /v1/tokens.
type TokenCreateRequest struct {
	Name string    `json:"name"`
	Role TokenRole `json:"role"`
}

// TokenCreated answers POST /v1/tokens: the only time the secret is shown.
type TokenCreated struct {
	TokenInfo
	Token string `json:"token"`
}

// Identity answers GET /v1/whoami: the token's name and role, or the node that
// presented its certificate (Node true; nodes may read and act, not manage tokens).
type Identity struct {
	Name string    `json:"name"`
	Role TokenRole `json:"role,omitempty"`
	Node bool      `json:"node,omitempty"`
}
