package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/vigil-ha/vigil/internal/duration"
)

// Problem is one thing wrong with a config file, located for the operator.
type Problem struct {
	File    string
	Line    int    // 0 when the problem has no single place (e.g. a missing section)
	Field   string // dotted path, e.g. nodes[1].addresses[0]
	Message string
}

func (p Problem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d: %s: %s", p.File, p.Line, p.Field, p.Message)
	}
	return fmt.Sprintf("%s: %s: %s", p.File, p.Field, p.Message)
}

// Problems is returned by Load when the file is unusable; it lists every problem found.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// maxConfigSize keeps a mistaken path (a disk image, /dev/zero) from being read whole.
const maxConfigSize = 4 << 20

// Load reads, decodes strictly, applies defaults and validates the file at path.
// On any problem it returns a Problems error and no config, so nothing starts half-configured.
func Load(path string) (*Config, error) {
	data, err := readBounded(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	if len(data) > maxConfigSize {
		return nil, Problems{{File: path, Field: "(file)", Message: fmt.Sprintf("larger than %d bytes", maxConfigSize)}}
	}
	return data, nil
}

// Parse decodes data (named file in messages) strictly, applies defaults and validates.
func Parse(file string, data []byte) (*Config, error) {
	astFile, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, Problems{yamlProblem(file, nil, err)}
	}
	var cfg Config
	if err := DecodeYAML(data, &cfg); err != nil {
		return nil, Problems{yamlProblem(file, astFile, err)}
	}
	cfg.Path = file
	cfg.applyDefaults()
	loc := locator{file: file, ast: astFile}
	if ps := cfg.validate(loc); len(ps) > 0 {
		sort.SliceStable(ps, func(i, j int) bool { return ps[i].Line < ps[j].Line })
		return nil, Problems(ps)
	}
	return &cfg, nil
}

// DecodeYAML decodes data strictly (unknown fields are errors) into v. The
// decoder (goccy/go-yaml v1.19.2) panics on some malformed input, such as a
// tag with no value where a list belongs ("nodes: ! ", found by fuzzing);
// that becomes an error, so bad input never crashes the agent or the CLI.
func DecodeYAML(data []byte, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the YAML decoder could not read this (%v): look for a tag (!...) without a value", r)
		}
	}()
	return yaml.UnmarshalWithOptions(data, v, yaml.Strict())
}

// yamlProblem turns a decoder error into file:line: field: message.
func yamlProblem(file string, astFile *ast.File, err error) Problem {
	var yerr yaml.Error
	if !errors.As(err, &yerr) {
		return valueProblem(file, astFile, err)
	}
	p := Problem{File: file, Field: "(syntax)", Message: yerr.GetMessage()}
	if tk := yerr.GetToken(); tk != nil && tk.Position != nil {
		p.Line = tk.Position.Line
		if tk.Value != "" {
			p.Field = tk.Value
		}
	}
	var unknown *yaml.UnknownFieldError
	if errors.As(err, &unknown) {
		p.Message = "unknown field (check the spelling; docs/config.md lists every field)"
	}
	var typeErr *yaml.TypeError
	if errors.As(err, &typeErr) {
		p.Message = fmt.Sprintf("expected %s", friendlyType(typeErr.DstType.String()))
	}
	return p
}

func friendlyType(t string) string {
	switch {
	case strings.HasSuffix(t, "Duration"):
		return `a duration such as "200ms" or "2s"`
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "int"):
		return "an integer"
	case strings.HasPrefix(t, "float"):
		return "a number"
	case t == "bool":
		return "true or false"
	case t == "string":
		return "a string"
	}
	return "a mapping"
}

// badValueError is returned by our own scalar decoders; the YAML library does not
// attach a position to them, so valueProblem finds the value in the document.
type badValueError = duration.BadValueError

// valueProblem locates a badValueError by searching the document for the offending
// scalar; the first mapping entry holding it gives the line and the field name.
func valueProblem(file string, astFile *ast.File, err error) Problem {
	p := Problem{File: file, Field: "(file)", Message: err.Error()}
	var bad *badValueError
	if !errors.As(err, &bad) || astFile == nil {
		return p
	}
	p.Message = bad.Msg
	finder := &scalarFinder{value: bad.Value}
	for _, doc := range astFile.Docs {
		if doc.Body != nil && finder.found == nil {
			ast.Walk(finder, doc.Body)
		}
	}
	if mv := finder.found; mv != nil {
		p.Field = mv.Key.String()
		if tk := mv.Value.GetToken(); tk != nil && tk.Position != nil {
			p.Line = tk.Position.Line
		}
	}
	return p
}

type scalarFinder struct {
	value string
	found *ast.MappingValueNode
}

func (f *scalarFinder) Visit(n ast.Node) ast.Visitor {
	if f.found != nil {
		return nil
	}
	if mv, ok := n.(*ast.MappingValueNode); ok && mv.Value != nil {
		if tk := mv.Value.GetToken(); tk != nil && tk.Value == f.value {
			f.found = mv
			return nil
		}
	}
	return f
}

// locator finds the line of a field by its path in the parsed document.
type locator struct {
	file string
	ast  *ast.File
}

// problem builds a Problem at field (a path like "nodes[1].addresses[0]").
// If the field is absent, it points at the nearest parent that exists.
func (l locator) problem(field, format string, args ...any) Problem {
	return Problem{File: l.file, Line: l.line(field), Field: field, Message: fmt.Sprintf(format, args...)}
}

func (l locator) line(field string) int {
	for f := field; f != ""; f = parent(f) {
		p, err := yaml.PathString("$." + f)
		if err != nil {
			continue
		}
		n, err := p.FilterFile(l.ast)
		if err != nil || n == nil {
			continue
		}
		if tk := n.GetToken(); tk != nil && tk.Position != nil {
			return tk.Position.Line
		}
	}
	return 0
}

func parent(field string) string {
	i := strings.LastIndexAny(field, ".[")
	if i <= 0 {
		return ""
	}
	return field[:i]
}

// Dir is the directory relative paths in the config resolve against.
func (c *Config) Dir() string { return filepath.Dir(c.Path) }

// SecretsPath resolves a file name inside the secrets directory.
func (c *Config) SecretsPath(name ...string) string {
	dir := c.Cluster.SecretsDir
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(c.Dir(), dir)
	}
	return filepath.Join(append([]string{dir}, name...)...)
}
