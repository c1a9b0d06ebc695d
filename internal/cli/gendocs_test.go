package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGenDocsWritesManPagesAndCompletions(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("SOURCE_DATE_EPOCH", "1767225600") // 2026-01-01: pages are dated by it
	code, _, errs := run(t, "gen-docs", "--man", filepath.Join(dir, "man"), "--completions", filepath.Join(dir, "compl"))
	if code != ExitOK {
		t.Fatalf("gen-docs: %d %s", code, errs)
	}
	page, err := os.ReadFile(filepath.Join(dir, "man", "vigil-config-validate.1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`.TH "VIGIL\-CONFIG\-VALIDATE" "1" "2026-01-01"`,
		".SH NAME\nvigil\\-config\\-validate \\- Report every problem",
		".SH SYNOPSIS\n.nf\n\\fBvigil config validate\\fR [FILE]",
		"\\fB\\-\\-config\\fR \\fIstring\\fR",
		"\\fBvigil\\-config\\fR(1)",
	} {
		if !strings.Contains(string(page), want) {
			t.Errorf("vigil-config-validate.1 lacks %q:\n%s", want, page)
		}
	}
	for _, f := range []string{"man/vigil.1", "man/vigil-agent.1", "compl/vigil.bash", "compl/_vigil", "compl/vigil.fish"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	// Hidden commands and cobra's help command get no page.
	for _, f := range []string{"vigil-gen-docs.1", "vigil-help.1"} {
		if _, err := os.Stat(filepath.Join(dir, "man", f)); err == nil {
			t.Errorf("%s written", f)
		}
	}
}

func TestGenDocsNeedsADirectory(t *testing.T) {
	if code, _, _ := run(t, "gen-docs"); code != ExitUsage {
		t.Fatalf("gen-docs without --man or --completions: exit %d, want %d", code, ExitUsage)
	}
}

func TestRoffTextEscapesAndKeepsIndentedLines(t *testing.T) {
	var b strings.Builder
	roffText(&b, ".hidden request\nfilled -text\n\n  vigil status --json\n'quote")
	want := "\\&.hidden request\nfilled \\-text\n.PP\n.RS\n.nf\nvigil status \\-\\-json\n.fi\n.RE\n\\&'quote\n"
	if b.String() != want {
		t.Errorf("roffText:\n%q\nwant\n%q", b.String(), want)
	}
}
