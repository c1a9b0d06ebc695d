package notify

import (
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/duration"
	"github.com/vigil-ha/vigil/internal/model"
)

// Defaults for settings left out of the notifications section.
const (
	DefaultQueueSize      = 1000
	DefaultMaxAge         = time.Hour
	DefaultWebhookTimeout = 10 * time.Second
	DefaultEmailTimeout   = 30 * time.Second
	DefaultScriptTimeout  = 30 * time.Second
	DefaultSyslogTimeout  = 5 * time.Second
	DefaultSyslogTag      = "vigil"
	// LogFileName is the file a file target appends to, inside its dir.
	LogFileName = "notifications.log"
)

// Target types.
const (
	TypeWebhook = "webhook"
	TypeEmail   = "email"
	TypeScript  = "script"
	TypeSyslog  = "syslog"
	TypeFile    = "file"
)

// Config is the top-level notifications section of vigil.yaml.
//
//	notifications:
//	  routes:
//	    - name: pager
//	      kinds: [node_dead, node_fenced, fence_failed, group_*]
//	      min_severity: warning
//	      targets: [ops-hook, ops-mail]
//	  targets:
//	    - name: ops-hook
//	      type: webhook
//	      url: https://hooks.example.com/vigil
//	      secret_file: secrets/webhook.key
//	    - name: ops-mail
//	      type: email
//	      smtp: mail.example.com:587
//	      username: vigil
//	      password_file: secrets/smtp.pass
//	      from: vigil@example.com
//	      to: [ops@example.com]
type Config struct {
	Routes  []Route  `yaml:"routes"`
	Targets []Target `yaml:"targets"`
	// QueueSize bounds the undelivered notifications kept per target; when it is
	// full the oldest is dropped (and counted), so a dead receiver costs bounded space.
	QueueSize int `yaml:"queue_size"`
	// MaxAge is how long a notification is retried before it is given up.
	MaxAge duration.Duration `yaml:"max_age"`
}

// Route sends the events it matches to its targets.
type Route struct {
	Name string `yaml:"name"`
	// Kinds are event kinds or glob patterns (path.Match syntax, e.g. group_*); empty matches every kind.
	Kinds []string `yaml:"kinds"`
	// MinSeverity is the least severe event sent: info (default), warning or critical.
	MinSeverity string   `yaml:"min_severity"`
	Targets     []string `yaml:"targets"`
}

// Target is one receiver; which fields apply depends on Type (as with resources).
type Target struct {
	Name string `yaml:"name"`
	Type string `yaml:"type"` // webhook | email | script | syslog | file

	// webhook
	URL        string            `yaml:"url"`
	Secret     string            `yaml:"secret"`      // HMAC-SHA256 key for X-Vigil-Signature
	SecretFile string            `yaml:"secret_file"` // or the key in a file (read at each delivery)
	Headers    map[string]string `yaml:"headers"`

	// email
	SMTP          string   `yaml:"smtp"` // host:port
	StartTLS      *bool    `yaml:"starttls"`
	Username      string   `yaml:"username"`
	Password      string   `yaml:"password"`
	PasswordFile  string   `yaml:"password_file"`
	From          string   `yaml:"from"`
	To            []string `yaml:"to"`
	SubjectPrefix string   `yaml:"subject_prefix"`

	// webhook (https) and email: trust this CA bundle instead of the system's.
	CAFile string `yaml:"ca_file"`

	// script
	Command []string `yaml:"command"`

	// syslog
	Network string `yaml:"network"` // udp | tcp | unix | unixgram | "" (the local daemon)
	Address string `yaml:"address"`
	Tag     string `yaml:"tag"`

	// file
	Dir string `yaml:"dir"`

	// every type but file: how long one delivery attempt may take.
	Timeout duration.Duration `yaml:"timeout"`
}

// targetFields lists, per type, the type-specific fields it accepts, so that a
// field meant for another type is reported instead of silently ignored.
var targetFields = map[string][]string{
	TypeWebhook: {"url", "secret", "secret_file", "headers", "ca_file", "timeout"},
	TypeEmail:   {"smtp", "starttls", "username", "password", "password_file", "from", "to", "subject_prefix", "ca_file", "timeout"},
	TypeScript:  {"command", "timeout"},
	TypeSyslog:  {"network", "address", "tag", "timeout"},
	TypeFile:    {"dir"},
}

func (t Target) setFields() []string {
	var set []string
	add := func(name string, ok bool) {
		if ok {
			set = append(set, name)
		}
	}
	add("url", t.URL != "")
	add("secret", t.Secret != "")
	add("secret_file", t.SecretFile != "")
	add("headers", len(t.Headers) > 0)
	add("smtp", t.SMTP != "")
	add("starttls", t.StartTLS != nil)
	add("username", t.Username != "")
	add("password", t.Password != "")
	add("password_file", t.PasswordFile != "")
	add("from", t.From != "")
	add("to", len(t.To) > 0)
	add("subject_prefix", t.SubjectPrefix != "")
	add("ca_file", t.CAFile != "")
	add("command", len(t.Command) > 0)
	add("network", t.Network != "")
	add("address", t.Address != "")
	add("tag", t.Tag != "")
	add("dir", t.Dir != "")
	add("timeout", t.Timeout != 0)
	return set
}

// Problem is one invalid setting, named by its path from the top of the file
// (e.g. notifications.targets[1].url) so the config loader can find its line.
type Problem struct {
	Field   string
	Message string
}

func (p Problem) String() string { return p.Field + ": " + p.Message }

var targetNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$`)

// headerNameRE is RFC 7230's token, the characters a header name may hold.
var headerNameRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// reservedHeaders are set by the webhook sender itself; a configured value would
// break the request or forge the signature the receiver checks.
var reservedHeaders = map[string]bool{"host": true, "content-length": true, "content-type": true, "transfer-encoding": true}

// Validate reports every problem in the section; prefix is the section's own path ("notifications").
func (c Config) Validate(prefix string) []Problem {
	var ps []Problem
	add := func(field, format string, args ...any) {
		ps = append(ps, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	if c.QueueSize < 0 {
		add(prefix+".queue_size", "must be 0 (default %d) or more", DefaultQueueSize)
	}
	if c.MaxAge < 0 {
		add(prefix+".max_age", "must be positive")
	}
	names := map[string]int{}
	for i, t := range c.Targets {
		f := fmt.Sprintf("%s.targets[%d]", prefix, i)
		switch {
		case t.Name == "":
			add(f+".name", "required")
		case !targetNameRE.MatchString(t.Name):
			add(f+".name", "%q: use lower-case letters, digits, '-' and '_', at most 63", t.Name)
		default:
			if j, dup := names[t.Name]; dup {
				add(f+".name", "%q is already the name of targets[%d]", t.Name, j)
			}
			names[t.Name] = i
		}
		ps = append(ps, validateTarget(f, t)...)
	}
	routeNames := map[string]int{}
	for i, r := range c.Routes {
		f := fmt.Sprintf("%s.routes[%d]", prefix, i)
		if r.Name == "" {
			add(f+".name", "required")
		} else if j, dup := routeNames[r.Name]; dup {
			add(f+".name", "%q is already the name of routes[%d]", r.Name, j)
		} else {
			routeNames[r.Name] = i
		}
		for k, pat := range r.Kinds {
			if _, err := path.Match(pat, ""); err != nil || pat == "" {
				add(fmt.Sprintf("%s.kinds[%d]", f, k), "%q is not an event kind or glob pattern (e.g. node_dead, group_*)", pat)
			}
		}
		if _, ok := severityRank(r.MinSeverity); !ok {
			add(f+".min_severity", "%q: use info, warning or critical", r.MinSeverity)
		}
		if len(r.Targets) == 0 {
			add(f+".targets", "list the targets this route sends to")
		}
		for k, tn := range r.Targets {
			if _, ok := names[tn]; !ok {
				add(fmt.Sprintf("%s.targets[%d]", f, k), "%q is not a target (targets: %v)", tn, c.targetNames())
			}
		}
	}
	return ps
}

func (c Config) targetNames() []string {
	out := make([]string, 0, len(c.Targets))
	for _, t := range c.Targets {
		out = append(out, t.Name)
	}
	return out
}

func validateTarget(f string, t Target) []Problem {
	var ps []Problem
	add := func(field, format string, args ...any) {
		ps = append(ps, Problem{Field: f + "." + field, Message: fmt.Sprintf(format, args...)})
	}
	allowed, ok := targetFields[t.Type]
	if !ok {
		add("type", "%q: use one of webhook, email, script, syslog, file", t.Type)
		return ps
	}
	for _, set := range t.setFields() {
		if !contains(allowed, set) {
			add(set, "does not apply to type %s (it takes: %s)", t.Type, strings.Join(allowed, ", "))
		}
	}
	if t.Timeout < 0 {
		add("timeout", "must be positive")
	}
	switch t.Type {
	case TypeWebhook:
		u, err := url.Parse(t.URL)
		switch {
		case t.URL == "":
			add("url", "required for type webhook")
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			add("url", "%q is not an http:// or https:// URL", t.URL)
		case t.CAFile != "" && u.Scheme != "https":
			add("ca_file", "only applies to an https:// url")
		}
		if t.Secret != "" && t.SecretFile != "" {
			add("secret_file", "set secret or secret_file, not both")
		}
		for name, v := range t.Headers {
			switch {
			case !headerNameRE.MatchString(name):
				add("headers", "%q is not a header name", name)
			case reservedHeaders[strings.ToLower(name)] || strings.HasPrefix(strings.ToLower(name), "x-vigil-"):
				add("headers", "%s is set by vigil itself", name)
			case strings.ContainsAny(v, "\r\n"):
				add("headers", "the value of %s spans lines", name)
			}
		}
	case TypeEmail:
		ps = append(ps, validateEmail(f, t)...)
	case TypeScript:
		if len(t.Command) == 0 {
			add("command", "required for type script: the program and its arguments")
		} else if !filepath.IsAbs(t.Command[0]) {
			add("command", "%q: use an absolute path (the agent's PATH is not yours)", t.Command[0])
		}
	case TypeSyslog:
		switch t.Network {
		case "":
			if t.Address != "" {
				add("address", "set network (udp, tcp, unix or unixgram) to send to an address; without it messages go to the local daemon")
			}
		case "udp", "tcp":
			if err := hostPort(t.Address); err != nil {
				add("address", "%q: %v", t.Address, err)
			}
		case "unix", "unixgram":
			if !filepath.IsAbs(t.Address) {
				add("address", "%q: the absolute path of the syslog socket", t.Address)
			}
		default:
			add("network", "%q: use udp, tcp, unix, unixgram or leave it out for the local daemon", t.Network)
		}
	case TypeFile:
		if t.Dir == "" {
			add("dir", "required for type file: the directory that receives %s", LogFileName)
		}
	}
	return ps
}

func validateEmail(f string, t Target) []Problem {
	var ps []Problem
	add := func(field, format string, args ...any) {
		ps = append(ps, Problem{Field: f + "." + field, Message: fmt.Sprintf(format, args...)})
	}
	if t.SMTP == "" {
		add("smtp", "required for type email: the relay's host:port, e.g. mail.example.com:587")
	} else if err := hostPort(t.SMTP); err != nil {
		add("smtp", "%q: %v", t.SMTP, err)
	}
	if t.From == "" {
		add("from", "required for type email")
	} else if _, err := mail.ParseAddress(t.From); err != nil {
		add("from", "%q is not an e-mail address", t.From)
	}
	if len(t.To) == 0 {
		add("to", "list at least one recipient")
	}
	for i, to := range t.To {
		if _, err := mail.ParseAddress(to); err != nil {
			add(fmt.Sprintf("to[%d]", i), "%q is not an e-mail address", to)
		}
	}
	if strings.ContainsAny(t.SubjectPrefix, "\r\n") {
		add("subject_prefix", "must be one line")
	}
	switch {
	case t.Password != "" && t.PasswordFile != "":
		add("password_file", "set password or password_file, not both")
	case t.Username != "" && t.Password == "" && t.PasswordFile == "":
		add("username", "needs password or password_file")
	case t.Username == "" && (t.Password != "" || t.PasswordFile != ""):
		add("username", "required with a password")
	}
	if t.Username != "" && !t.startTLS() {
		host, _, _ := net.SplitHostPort(t.SMTP)
		if !isLoopbackHost(host) {
			add("starttls", "false would send the password in clear; only a relay on this machine may do without")
		}
	}
	return ps
}

// startTLS is on unless switched off: a password or an alert in clear on the wire is the wrong default.
func (t Target) startTLS() bool { return t.StartTLS == nil || *t.StartTLS }

func hostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return fmt.Errorf("use host:port")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q is not a port number", port)
	}
	return nil
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// severityRank orders severities; "" counts as info (events from older agents may lack one).
func severityRank(s string) (int, bool) {
	switch model.Severity(s) {
	case "", model.SeverityInfo:
		return 0, true
	case model.SeverityWarning:
		return 1, true
	case model.SeverityCritical:
		return 2, true
	}
	return 0, false
}
