package pki

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// TokenPrefix marks operator tokens so that they are recognisable in a
// config file or a leaked log, and by secret scanners.
const TokenPrefix = "vgl_"

// HMACKeySize is the heartbeat key length: 32 bytes matches HMAC-SHA-256's block strength.
const HMACKeySize = 32

// NewToken returns a new operator bearer token: 32 random bytes, base64url, prefixed "vgl_".
func NewToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("pki: new token: %w", err)
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// TokenEqual compares a presented token with the expected one in constant
// time. Hashing first hides the expected token's length too. An empty
// expected token never matches, so a missing token file cannot open the API.
func TokenEqual(presented, expected string) bool {
	if expected == "" {
		return false
	}
	p := sha256.Sum256([]byte(presented))
	e := sha256.Sum256([]byte(expected))
	return subtle.ConstantTimeCompare(p[:], e[:]) == 1
}

// LoadToken reads an operator token file, ignoring surrounding whitespace.
func LoadToken(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("pki: load token: %w", err)
	}
	tok := strings.TrimSpace(string(data))
	if !strings.HasPrefix(tok, TokenPrefix) || len(tok) == len(TokenPrefix) {
		return "", fmt.Errorf("pki: load token: %s: not a vigil token (want %q followed by base64url)", path, TokenPrefix)
	}
	return tok, nil
}

// NewHMACKey returns a new random heartbeat key of HMACKeySize bytes.
func NewHMACKey() ([]byte, error) {
	key := make([]byte, HMACKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("pki: new heartbeat key: %w", err)
	}
	return key, nil
}

// EncodeHMACKey returns the file form of a heartbeat key: hex and a newline,
// so that it survives copy and paste between machines.
func EncodeHMACKey(key []byte) []byte {
	return []byte(hex.EncodeToString(key) + "\n")
}

// ParseHMACKey decodes the file form of a heartbeat key.
func ParseHMACKey(data []byte) ([]byte, error) {
	s := bytes.TrimSpace(data)
	if len(s) == 0 {
		return nil, errors.New("empty heartbeat key")
	}
	key := make([]byte, hex.DecodedLen(len(s)))
	if _, err := hex.Decode(key, s); err != nil {
		return nil, fmt.Errorf("heartbeat key is not hex: %w", err)
	}
	if len(key) < HMACKeySize {
		return nil, fmt.Errorf("heartbeat key is %d bytes, want at least %d (%d hex digits)", len(key), HMACKeySize, 2*HMACKeySize)
	}
	return key, nil
}

// LoadHMACKey reads a heartbeat key file written by `vigil init`.
func LoadHMACKey(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pki: load heartbeat key: %w", err)
	}
	key, err := ParseHMACKey(data)
	if err != nil {
		return nil, fmt.Errorf("pki: load heartbeat key %s: %w", path, err)
	}
	return key, nil
}
