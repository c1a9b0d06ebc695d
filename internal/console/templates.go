package console

import (
	"errors"
	"fmt"
	"html/template"
	"net/url"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/model"
)

var funcs = template.FuncMap{
	"dict":       dict,
	"confirm":    confirmURL,
	"nodeLevel":  nodeLevel,
	"groupLevel": groupLevel,
	"linkLevel":  linkLevel,
	"stateText":  stateText,
	"dash":       dash,
	"outage":     outage,
	"drillLevel": drillLevel,
	"duration": func(a, b time.Time) string {
		if a.IsZero() || b.IsZero() {
			return ""
		}
		return b.Sub(a).Round(time.Millisecond).String()
	},
	"join":      strings.Join,
	"keys":      sortedKeys[string],
	"checkKeys": sortedKeys[map[string]string],
	"sevLevel": func(s model.Severity) string {
		switch s {
		case model.SeverityCritical:
			return red.String()
		case model.SeverityWarning:
			return yellow.String()
		}
		return "info"
	},
	"checkLevel": func(s string) string {
		if s == "up" {
			return green.String()
		}
		return red.String()
	},
	"clock": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.Local().Format("2006-01-02 15:04:05")
	},
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return roughly(time.Since(t)) + " ago"
	},
	"heard": func(ms *int64) string {
		switch {
		case ms == nil:
			return "this node"
		case *ms < 0:
			return "never"
		}
		return roughly(time.Duration(*ms)*time.Millisecond) + " ago"
	},
	"took": func(a, b time.Time) string {
		if a.IsZero() || b.IsZero() {
			return ""
		}
		return roughly(b.Sub(a))
	},
	"others": func(all []string, except string) []string {
		var out []string
		for _, n := range all {
			if n != except {
				out = append(out, n)
			}
		}
		return out
	},
	"about": func(ev model.Event) string {
		var parts []string
		if ev.Group != "" {
			parts = append(parts, "group "+ev.Group)
		}
		if ev.Node != "" {
			parts = append(parts, "node "+ev.Node)
		}
		if ev.Resource != "" {
			parts = append(parts, ev.Resource)
		}
		if ev.Target != "" {
			parts = append(parts, "→ "+ev.Target)
		}
		if ev.Token != nil {
			parts = append(parts, "token "+ev.Token.Name)
		}
		return strings.Join(parts, ", ")
	},
}

// dict builds the map a sub-template gets: {{template "action" (dict "k" v ...)}}.
func dict(kv ...any) (map[string]any, error) {
	if len(kv)%2 != 0 {
		return nil, errors.New("dict: odd number of arguments")
	}
	m := make(map[string]any, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			return nil, fmt.Errorf("dict: key %v is not a string", kv[i])
		}
		m[k] = kv[i+1]
	}
	return m, nil
}

// confirmURL is the address of an action's dialog with its parameters.
func confirmURL(action string, kv ...string) string {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	u := "/confirm/" + url.PathEscape(action)
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// roughly prints a duration the way people read one: 850ms, 12s, 4m10s, 3h05m.
func roughly(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.0fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// parseTemplates builds one template set per page: the layout plus the page,
// which defines "main" (the whole page body) and "live" (the part live updates
// reload).
func parseTemplates() (map[string]*template.Template, error) {
	base, err := template.New("").Funcs(funcs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("console templates: %w", err)
	}
	out := map[string]*template.Template{}
	for _, p := range pageNames {
		t, err := base.Clone()
		if err != nil {
			return nil, fmt.Errorf("console templates: %w", err)
		}
		if out[p], err = t.ParseFS(templateFS, "templates/"+p+".html"); err != nil {
			return nil, fmt.Errorf("console templates: %w", err)
		}
	}
	if out["login"], err = template.New("").Funcs(funcs).ParseFS(templateFS, "templates/login.html"); err != nil {
		return nil, fmt.Errorf("console templates: %w", err)
	}
	return out, nil
}
