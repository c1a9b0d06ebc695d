package hbimport

import (
	"net/netip"
	"strings"
)

// ResourceLine is one logical line of haresources: a resource group, with the
// node that prefers it and its resources in start order.
type ResourceLine struct {
	Line      int    // the first physical line
	Node      string // lower-cased, as Heartbeat compares node names
	Resources []ResourceSpec
}

// ResourceSpec is one resource of a haresources line, NAME::ARG1::ARG2.
type ResourceSpec struct {
	Line int    // the physical line it is on (continuation lines have their own)
	Text string // as written
	Name string // the resource script: IPaddr, Filesystem, httpd, ...
	Args []string
	// Implicit is set for a bare address, which Heartbeat runs as IPaddr::ADDRESS.
	Implicit bool
}

// ParseHaresources reads haresources. Lines ending in a backslash continue on
// the next one; a word starting with '#' starts a comment. Nothing in the file's
// syntax can be refused, so it returns no error: what cannot be translated is
// reported by the translation.
func ParseHaresources(data []byte) []ResourceLine {
	var out []ResourceLine
	var cur *ResourceLine
	for i, phys := range strings.Split(string(data), "\n") {
		lineNo := i + 1
		phys = stripComment(phys)
		phys = strings.TrimRight(phys, " \t\r\f\v")
		cont := strings.HasSuffix(phys, `\`)
		if cont {
			phys = strings.TrimSuffix(phys, `\`)
		}
		for _, word := range strings.Fields(phys) {
			if cur == nil {
				cur = &ResourceLine{Line: lineNo, Node: strings.ToLower(word)}
				continue
			}
			cur.Resources = append(cur.Resources, parseResource(lineNo, word))
		}
		if !cont && cur != nil {
			out = append(out, *cur)
			cur = nil
		}
	}
	if cur != nil {
		out = append(out, *cur)
	}
	return out
}

// stripComment removes a comment: '#' at the start of a word, so that a '#'
// inside an argument (a password, a URL fragment) is kept.
func stripComment(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t') {
			return s[:i]
		}
	}
	return s
}

func parseResource(line int, word string) ResourceSpec {
	parts := strings.Split(word, "::")
	r := ResourceSpec{Line: line, Text: word, Name: parts[0], Args: parts[1:]}
	// ResourceManager treats a word that starts with an IPv4 address as IPaddr::WORD.
	if base, _, _ := strings.Cut(r.Name, "/"); base != "" && base[0] >= '0' && base[0] <= '9' {
		if a, err := netip.ParseAddr(base); err == nil && a.Is4() {
			r.Args = append([]string{r.Name}, r.Args...)
			r.Name = "IPaddr"
			r.Implicit = true
		}
	}
	return r
}
