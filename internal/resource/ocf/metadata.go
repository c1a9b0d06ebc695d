package ocf

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Meta is what an agent's meta-data action describes.
type Meta struct {
	Name       string
	Version    string
	ShortDesc  string
	LongDesc   string
	Parameters []Parameter
	Actions    []Action
}

// Parameter is one instance parameter (OCF_RESKEY_<Name>).
type Parameter struct {
	Name       string
	Required   bool
	Unique     bool
	Deprecated bool
	ShortDesc  string
	LongDesc   string
	Type       string // content type: string, integer, boolean, ...
	Default    string
}

// Action is one action the agent supports, with its advertised defaults.
type Action struct {
	Name     string
	Timeout  time.Duration // 0 when absent or unreadable
	Interval time.Duration
	Depth    int
	Role     string
}

// Param returns the parameter called name.
func (m *Meta) Param(name string) (Parameter, bool) {
	for _, p := range m.Parameters {
		if p.Name == name {
			return p, true
		}
	}
	return Parameter{}, false
}

// Action returns the action called name. For monitor, which agents may list
// once per role or depth, the plain one (no role, depth 0) wins.
func (m *Meta) Action(name string) (Action, bool) {
	var found Action
	ok := false
	for _, a := range m.Actions {
		if a.Name != name {
			continue
		}
		if !ok || (a.Role == "" && a.Depth == 0 && (found.Role != "" || found.Depth != 0)) {
			found, ok = a, true
		}
	}
	return found, ok
}

// metaDataTimeout bounds meta-data when the caller gave no deadline; agents
// advertise 5s for it, and it only prints text.
const metaDataTimeout = 30 * time.Second

// MetaData runs the agent's meta-data action ("provider/type" under
// ocfRoot; "" means DefaultOCFRoot) and parses it.
func MetaData(ctx context.Context, ocfRoot, agent string) (*Meta, error) {
	a, err := newAgentPath(ocfRoot, agent)
	if err != nil {
		return nil, err
	}
	return a.metaData(ctx)
}

// ParseMetaData parses the XML an agent prints for meta-data. Agents may log
// to stderr around it (the output is captured as one stream), so only the
// <resource-agent> element is read.
func ParseMetaData(out []byte) (*Meta, error) {
	start := bytes.Index(out, []byte("<resource-agent"))
	end := bytes.LastIndex(out, []byte("</resource-agent>"))
	if start < 0 || end < start {
		return nil, fmt.Errorf("parse meta-data: no <resource-agent> element in %q", clip(strings.TrimSpace(string(out))))
	}
	doc := out[start : end+len("</resource-agent>")]
	var x xmlAgent
	err := decode(doc, &x, true)
	if err != nil {
		// Some agents put a bare & or < in their descriptions; a lenient
		// parse still gets the parameters and actions right.
		if err2 := decode(doc, &x, false); err2 != nil {
			return nil, fmt.Errorf("parse meta-data: %w", err)
		}
	}
	m := &Meta{
		Name:      x.Name,
		Version:   strings.TrimSpace(x.Version),
		ShortDesc: pickLang(x.ShortDesc),
		LongDesc:  pickLang(x.LongDesc),
	}
	if m.Version == "" {
		m.Version = x.VersionAttr
	}
	for _, p := range x.Parameters {
		if p.Name == "" {
			continue
		}
		m.Parameters = append(m.Parameters, Parameter{
			Name:       p.Name,
			Required:   isTrue(p.Required),
			Unique:     isTrue(p.Unique),
			Deprecated: p.Deprecated != nil,
			ShortDesc:  pickLang(p.ShortDesc),
			LongDesc:   pickLang(p.LongDesc),
			Type:       p.Content.Type,
			Default:    p.Content.Default,
		})
	}
	for _, a := range x.Actions {
		if a.Name == "" {
			continue
		}
		depth, _ := strconv.Atoi(a.Depth)
		// An unreadable timeout (a shell expression left unexpanded, say) is
		// ignored rather than fatal: the caller falls back to its defaults.
		to, _ := ParseDuration(a.Timeout)
		iv, _ := ParseDuration(a.Interval)
		m.Actions = append(m.Actions, Action{Name: a.Name, Timeout: to, Interval: iv, Depth: depth, Role: a.Role})
	}
	return m, nil
}

func decode(doc []byte, v *xmlAgent, strict bool) error {
	*v = xmlAgent{}
	d := xml.NewDecoder(bytes.NewReader(doc))
	d.Strict = strict
	if !strict {
		d.AutoClose = xml.HTMLAutoClose
		d.Entity = xml.HTMLEntity
	}
	d.CharsetReader = charsetReader
	return d.Decode(v)
}

// charsetReader accepts the few declarations seen in agents besides UTF-8.
func charsetReader(charset string, in io.Reader) (io.Reader, error) {
	switch strings.ToLower(charset) {
	case "us-ascii", "ascii", "utf8":
		return in, nil
	case "iso-8859-1", "latin1", "latin-1":
		b, err := io.ReadAll(in)
		if err != nil {
			return nil, err
		}
		var out []byte
		for _, c := range b {
			out = utf8.AppendRune(out, rune(c))
		}
		return bytes.NewReader(out), nil
	}
	return nil, fmt.Errorf("unsupported charset %q", charset)
}

type xmlAgent struct {
	XMLName     xml.Name    `xml:"resource-agent"`
	Name        string      `xml:"name,attr"`
	VersionAttr string      `xml:"version,attr"`
	Version     string      `xml:"version"`
	ShortDesc   []xmlText   `xml:"shortdesc"`
	LongDesc    []xmlText   `xml:"longdesc"`
	Parameters  []xmlParam  `xml:"parameters>parameter"`
	Actions     []xmlAction `xml:"actions>action"`
}

type xmlText struct {
	Lang string `xml:"lang,attr"`
	Text string `xml:",chardata"`
}

type xmlParam struct {
	Name       string    `xml:"name,attr"`
	Required   string    `xml:"required,attr"`
	Unique     string    `xml:"unique,attr"`
	ShortDesc  []xmlText `xml:"shortdesc"`
	LongDesc   []xmlText `xml:"longdesc"`
	Deprecated *struct{} `xml:"deprecated"`
	Content    struct {
		Type    string `xml:"type,attr"`
		Default string `xml:"default,attr"`
	} `xml:"content"`
}

type xmlAction struct {
	Name     string `xml:"name,attr"`
	Timeout  string `xml:"timeout,attr"`
	Interval string `xml:"interval,attr"`
	Depth    string `xml:"depth,attr"`
	Role     string `xml:"role,attr"`
}

func pickLang(ts []xmlText) string {
	for _, t := range ts {
		if t.Lang == "" || strings.HasPrefix(t.Lang, "en") {
			return strings.TrimSpace(t.Text)
		}
	}
	if len(ts) > 0 {
		return strings.TrimSpace(ts[0].Text)
	}
	return ""
}

func isTrue(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "true", "yes", "on", "y":
		return true
	}
	return false
}

// ParseDuration reads an OCF/Pacemaker time value: a bare number is seconds
// ("20"), and the units Pacemaker accepts may follow ("20s", "500ms", "2min",
// "1h").
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty duration")
	}
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	num, unit := s[:i], strings.ToLower(strings.TrimSpace(s[i:]))
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || num == "" {
		return 0, fmt.Errorf("duration %q: not a number", s)
	}
	var mult time.Duration
	switch unit {
	case "", "s", "sec", "secs", "second", "seconds":
		mult = time.Second
	case "ms", "msec", "msecs":
		mult = time.Millisecond
	case "us", "usec", "usecs":
		mult = time.Microsecond
	case "m", "min", "mins", "minute", "minutes":
		mult = time.Minute
	case "h", "hr", "hrs", "hour", "hours":
		mult = time.Hour
	default:
		return 0, fmt.Errorf("duration %q: unknown unit %q", s, unit)
	}
	return time.Duration(v * float64(mult)), nil
}
