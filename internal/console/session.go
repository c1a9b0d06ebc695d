package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/internal/model"
)

// cookieName has the __Host- prefix: browsers only accept it with Secure,
// Path=/ and no Domain, so no other host and no plain-HTTP page can plant one.
const cookieName = "__Host-vigil-session"

// session is one login. It is kept in this node's memory only: the token never
// goes back to the browser, which holds an opaque random id.
type session struct {
	csrf    string
	token   string
	name    string
	role    model.TokenRole
	created time.Time
	expires time.Time // absolute: a session never outlives this

	// ctx ends when the session does (logout, expiry): its live streams stop.
	ctx    context.Context
	cancel context.CancelFunc

	seen time.Time // guarded by sessions.mu
}

func (s *session) canAct() bool  { return s.role.Rank() >= model.TokenOperator.Rank() }
func (s *session) isAdmin() bool { return s.role.Rank() >= model.TokenAdmin.Rank() }

// sessions maps the SHA-256 of session ids to sessions, so that lookups take
// the same time whichever prefix of an id a guess gets right.
type sessions struct {
	mu    sync.Mutex
	m     map[[32]byte]*session // guarded by mu
	idle  time.Duration
	max   time.Duration
	limit int
	now   func() time.Time
}

var errTooManySessions = errors.New("too many sessions on this node: log out elsewhere or wait for idle ones to expire")

func newSessions(idle, maxAge time.Duration, limit int, now func() time.Time) *sessions {
	return &sessions{m: map[[32]byte]*session{}, idle: idle, max: maxAge, limit: limit, now: now}
}

func randomString() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// create starts a session for a token the API accepted and returns its id.
func (ss *sessions) create(token string, id model.Identity) (string, *session, error) {
	sid, err := randomString()
	if err != nil {
		return "", nil, err
	}
	csrf, err := randomString()
	if err != nil {
		return "", nil, err
	}
	now := ss.now()
	s := &session{csrf: csrf, token: token, name: id.Name, role: id.Role, created: now, expires: now.Add(ss.max), seen: now}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.sweepLocked(now)
	if len(ss.m) >= ss.limit {
		s.cancel()
		return "", nil, errTooManySessions
	}
	ss.m[sha256.Sum256([]byte(sid))] = s
	return sid, s, nil
}

// get returns the live session with this id and marks it used.
func (ss *sessions) get(sid string) (*session, bool) {
	if sid == "" {
		return nil, false
	}
	key := sha256.Sum256([]byte(sid))
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.m[key]
	if !ok {
		return nil, false
	}
	if ss.expiredLocked(s, now) {
		delete(ss.m, key)
		s.cancel()
		return nil, false
	}
	s.seen = now
	return s, true
}

func (ss *sessions) expiredLocked(s *session, now time.Time) bool {
	return !now.Before(s.expires) || now.Sub(s.seen) >= ss.idle
}

// sweepLocked drops expired sessions; creating one is the only time the map
// grows, so sweeping there bounds it without a timer goroutine.
func (ss *sessions) sweepLocked(now time.Time) {
	for k, s := range ss.m {
		if ss.expiredLocked(s, now) {
			delete(ss.m, k)
			s.cancel()
		}
	}
}

func (ss *sessions) remove(sid string) {
	key := sha256.Sum256([]byte(sid))
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if s, ok := ss.m[key]; ok {
		delete(ss.m, key)
		s.cancel()
	}
}

// removeAll ends every session (the console is closing).
func (ss *sessions) removeAll() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for k, s := range ss.m {
		delete(ss.m, k)
		s.cancel()
	}
}

func (ss *sessions) count() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return len(ss.m)
}

// checkCSRF accepts a state-changing request only with the session's CSRF token,
// from the X-CSRF-Token header (htmx) or the csrf form field (plain forms).
func (s *session) checkCSRF(r *http.Request) bool {
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		got = r.PostFormValue("csrf")
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) == 1
}

func setSessionCookie(w http.ResponseWriter, sid string) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: sid, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

func clearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

func sessionID(r *http.Request) string {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return ""
	}
	return c.Value
}
