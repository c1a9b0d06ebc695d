package console

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options configure a console.
type Options struct {
	// API is this node's /v1 handler; the console serves it under /v1/ and calls
	// it in process for every page and action.
	API    http.Handler
	Logger *slog.Logger
	// IdleTimeout ends a session nobody used for this long (default 30 min);
	// MaxAge ends any session this long after login (default 12 h).
	IdleTimeout time.Duration
	MaxAge      time.Duration
	// MaxSessions bounds the sessions kept in memory (default 1000).
	MaxSessions int
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
	// SLA is each group's availability target in percent for the availability
	// page (missing or zero: availability.DefaultSLA).
	SLA map[string]float64
}

// Console serves the web console at / and the API at /v1/.
type Console struct {
	api      http.Handler
	ui       http.Handler
	log      *slog.Logger
	sessions *sessions
	pages    map[string]*template.Template
	now      func() time.Time
	sla      map[string]float64

	// ctx ends with Close: live streams stop with it, so shutting the server down
	// does not wait for browsers to hang up.
	ctx    context.Context
	cancel context.CancelFunc
}

// pageNames are the templates that each become a page with the layout.
var pageNames = []string{"overview", "groups", "events", "workflows", "run", "tokens", "error", "confirm", "notifications", "availability", "drills"}

// New builds the console. It starts no goroutine: sessions expire when next
// looked at, and streams live in their requests.
func New(opt Options) (*Console, error) {
	if opt.API == nil {
		return nil, errors.New("console: no API handler")
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.IdleTimeout <= 0 {
		opt.IdleTimeout = 30 * time.Minute
	}
	if opt.MaxAge <= 0 {
		opt.MaxAge = 12 * time.Hour
	}
	if opt.MaxSessions <= 0 {
		opt.MaxSessions = 1000
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	c := &Console{api: opt.API, log: opt.Logger, sessions: newSessions(opt.IdleTimeout, opt.MaxAge, opt.MaxSessions, opt.Now)}
	c.now, c.sla = opt.Now, opt.SLA
	c.ctx, c.cancel = context.WithCancel(context.Background())
	var err error
	if c.pages, err = parseTemplates(); err != nil {
		return nil, err
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static/", staticHandler(static)))
	mux.HandleFunc("GET /login", c.loginPage)
	mux.HandleFunc("POST /login", c.login)
	mux.HandleFunc("POST /logout", c.logout)
	mux.Handle("GET /{$}", c.withSession(c.overview))
	mux.Handle("GET /groups", c.withSession(c.groups))
	mux.Handle("GET /events", c.withSession(c.events))
	mux.Handle("GET /workflows", c.withSession(c.workflows))
	mux.Handle("GET /runs/{id}", c.withSession(c.run))
	mux.Handle("GET /tokens", c.withSession(c.tokens))
	mux.Handle("GET /notifications", c.withSession(c.notifications))
	mux.Handle("GET /availability", c.withSession(c.availabilityPage))
	mux.Handle("GET /drills", c.withSession(c.drills))
	mux.Handle("GET /confirm/{action}", c.withSession(c.confirm))
	mux.Handle("POST /actions/{action}", c.withSession(c.act))
	mux.Handle("GET /ui/stream", c.withSession(c.stream))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "404 page not found: the console has no "+r.URL.Path, http.StatusNotFound)
	})
	// Cross-origin browser POSTs are refused before anything else (this also
	// covers the login form, which has no session and so no CSRF token yet).
	c.ui = http.NewCrossOriginProtection().Handler(securityHeaders(mux))
	return c, nil
}

// ServeHTTP sends /v1/ to the API and everything else to the console.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/v1" || strings.HasPrefix(r.URL.Path, "/v1/") {
		c.api.ServeHTTP(w, r)
		return
	}
	c.ui.ServeHTTP(w, r)
}

// Close ends every session and live stream. Register it with
// http.Server.RegisterOnShutdown: Shutdown does not cancel running requests.
func (c *Console) Close() {
	c.cancel()
	c.sessions.removeAll()
}

// securityHeaders: everything the console loads comes from this node, so the
// policy allows nothing else and no inline script or style.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Strict-Transport-Security", "max-age=31536000")
		h.ServeHTTP(w, r)
	})
}

// staticHandler serves the embedded files. They change only with the binary,
// and browsers revalidate them (embed.FS has no modification times to compare).
func staticHandler(static fs.FS) http.Handler {
	files := http.FileServerFS(static)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}

type sessionHandler func(w http.ResponseWriter, r *http.Request, s *session)

// withSession admits requests with a live session; others go to the login page.
func (c *Console) withSession(h sessionHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := c.sessions.get(sessionID(r))
		if !ok {
			c.toLogin(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		h(w, r, s)
	})
}

// toLogin sends the browser to the login page, remembering where it was going
// (htmx follows HX-Redirect instead of swapping a login page into a fragment).
func (c *Console) toLogin(w http.ResponseWriter, r *http.Request) {
	target := "/login"
	if r.Method == http.MethodGet && r.URL.Path != "/" && !strings.HasPrefix(r.URL.Path, "/ui/") && !isHX(r) {
		target += "?next=" + url.QueryEscape(r.URL.RequestURI())
	}
	if isHX(r) {
		w.Header().Set("HX-Redirect", target)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if r.Method != http.MethodGet {
		http.Error(w, "401 not logged in (or the session expired): log in again", http.StatusUnauthorized)
		return
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

func isHX(r *http.Request) bool { return r.Header.Get("HX-Request") == "true" }

// localPath accepts only a path on this site as a place to go back to.
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") || strings.ContainsAny(p, "\r\n") {
		return "/"
	}
	return p
}

// view is what every page template gets.
type view struct {
	Title   string
	Nav     string
	Self    string // the URL the live region reloads from
	Cluster string
	Node    string
	User    string
	Role    string
	CanAct  bool
	IsAdmin bool
	CSRF    string
	Health  health
	Data    any
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, code int, page string, v *view) {
	t, ok := c.pages[page]
	if !ok {
		http.Error(w, "no template "+page, http.StatusInternalServerError)
		return
	}
	name := "layout"
	switch {
	case isHX(r) && r.Header.Get("HX-Target") == "live":
		name = "live-fragment"
	case page == "confirm" && isHX(r):
		name = "dialog"
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, name, v); err != nil {
		c.log.Error("console template", "page", page, "err", err)
		http.Error(w, "the console could not render this page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = buf.WriteTo(w)
}

// fail shows an API error. A 401 means the token was revoked since login: the
// session ends.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, s *session, err error) {
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
		c.sessions.remove(sessionID(r))
		clearSessionCookie(w)
		c.toLogin(w, r)
		return
	}
	code := http.StatusBadGateway
	if ae != nil {
		code = ae.Status
	}
	v := c.baseView(r, s, "Error", "")
	v.Data = err.Error()
	c.render(w, r, code, "error", v)
}

func (c *Console) baseView(r *http.Request, s *session, title, nav string) *view {
	return &view{Title: title, Nav: nav, Self: r.URL.RequestURI(), User: s.name, Role: string(s.role),
		CanAct: s.canAct(), IsAdmin: s.isAdmin(), CSRF: s.csrf}
}
