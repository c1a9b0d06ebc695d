package apiclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/vigil-ha/vigil/internal/model"
)

// WhoAmI names the token (and its role) this client authenticates with.
func (c *Client) WhoAmI(ctx context.Context) (model.Identity, error) {
	var id model.Identity
	return id, c.getJSON(ctx, "/v1/whoami", &id)
}

// Tokens lists the API tokens, the bootstrap one first (admin).
func (c *Client) Tokens(ctx context.Context) ([]model.TokenInfo, error) {
	var ts []model.TokenInfo
	return ts, c.getJSON(ctx, "/v1/tokens", &ts)
}

// CreateToken creates a token; the answer holds its secret, shown nowhere else (admin).
func (c *Client) CreateToken(ctx context.Context, name string, role model.TokenRole) (model.TokenCreated, error) {
	var out model.TokenCreated
	return out, c.postJSON(ctx, "/v1/tokens", model.TokenCreateRequest{Name: name, Role: role}, &out)
}

// RevokeToken revokes the named token and returns the recorded event (admin).
func (c *Client) RevokeToken(ctx context.Context, name, reason string) (model.Event, error) {
	var ev model.Event
	return ev, c.sendJSON(ctx, http.MethodDelete, "/v1/tokens/"+url.PathEscape(name), map[string]string{"reason": reason}, &ev)
}

// sendJSON is postJSON for any method.
func (c *Client) sendJSON(ctx context.Context, method, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("%s %s: encode: %w", method, path, err)
	}
	resp, err := c.do(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode: %w", method, path, err)
	}
	return nil
}
