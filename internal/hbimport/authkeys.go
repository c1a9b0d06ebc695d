package hbimport

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Authkeys is what the importer takes from authkeys: which method signed
// Heartbeat's packets. The key itself is never kept, so that it cannot end up in
// a report or a log.
type Authkeys struct {
	File     string
	AuthLine int
	ID       int
	Method   string // crc, sha1 or md5
	// MethodLine is the line defining the method used; Others are the other key lines.
	MethodLine int
	Others     []int
}

// ParseAuthkeys reads authkeys: one "auth N" line and "N METHOD [KEY]" lines.
// It refuses what Heartbeat refuses: no auth line, an auth id without a key
// line, an unknown method, sha1 or md5 without a key.
func ParseAuthkeys(file string, data []byte) (*Authkeys, error) {
	a := &Authkeys{File: file}
	var errs InputErrors
	bad := func(line int, directive, format string, args ...any) {
		errs = append(errs, InputError{File: file, Line: line, Directive: directive, Msg: fmt.Sprintf(format, args...)})
	}
	methods := map[int]struct {
		line   int
		method string
	}{}
	for _, d := range lex(data) {
		if strings.EqualFold(d.Name, "auth") {
			if a.AuthLine != 0 {
				bad(d.Line, "auth", "a second auth line (the first is line %d)", a.AuthLine)
				continue
			}
			id, err := strconv.Atoi(firstArg(d))
			if err != nil || len(d.Args) != 1 || id < 1 || id > 15 {
				// Heartbeat keeps at most 16 methods, numbered from 1.
				bad(d.Line, "auth", "want auth N, N the number of a key line (1 to 15)")
				continue
			}
			a.AuthLine, a.ID = d.Line, id
			continue
		}
		id, err := strconv.Atoi(d.Name)
		if err != nil || id < 1 || id > 15 {
			bad(d.Line, d.Name, "want auth N, or a key line N METHOD KEY")
			continue
		}
		method := strings.ToLower(firstArg(d))
		switch {
		case method != "crc" && method != "sha1" && method != "md5":
			bad(d.Line, d.Name, "method %q: want crc, sha1 or md5", firstArg(d))
			continue
		case method != "crc" && len(d.Args) < 2:
			bad(d.Line, d.Name, "method %s needs a key", method)
			continue
		}
		if prev, dup := methods[id]; dup {
			bad(d.Line, d.Name, "key %d is already defined on line %d", id, prev.line)
			continue
		}
		methods[id] = struct {
			line   int
			method string
		}{d.Line, method}
	}
	if a.AuthLine == 0 && len(errs) == 0 {
		bad(0, "auth", "no auth line: Heartbeat needs one to know which key signs its packets")
	}
	if a.AuthLine != 0 {
		m, ok := methods[a.ID]
		if !ok {
			bad(a.AuthLine, "auth", "key %d is not defined", a.ID)
		}
		a.Method, a.MethodLine = m.method, m.line
		for id, o := range methods {
			if id != a.ID {
				a.Others = append(a.Others, o.line)
			}
		}
		sort.Ints(a.Others)
	}
	if len(errs) > 0 {
		return a, errs
	}
	return a, nil
}
